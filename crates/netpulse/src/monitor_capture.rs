//! The monitor's live capture (`[capture] interface = …`): packets analysed on a thread of their
//! own; every second the protocol counts go to `/metrics` and the totals and top talkers to the
//! live view.

use crate::console::say;
use crate::worker::Worker;
use netpulse_capture::live::Live;
use netpulse_capture::stats::{AnalyzerConfig, Interval, Protocol};
use netpulse_capture::{Analyzer, PacketSource};
use netpulse_core::live::CaptureLive;
use netpulse_web::Shared;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// The monitor's capture.
pub struct MonitorCapture;

impl MonitorCapture {
    /// Opens `iface` (with `filter`) and starts analysing until the returned worker is stopped;
    /// the error says what to do (e.g. the setcap line) when the interface or the privilege is
    /// missing.
    pub fn start(iface: &str, filter: Option<&str>, shared: Arc<Shared>) -> anyhow::Result<Worker> {
        // 8 MiB of ring: ~50 ms of a saturated gigabit link; resident all the time.
        let mut source = PacketSource::Live {
            live: Live::open_with_ring(iface, filter, 8 << 20)?,
            iface: iface.to_string(),
        };
        let name = iface.to_string();
        Worker::spawn("capture", move |flag| {
            let cfg = AnalyzerConfig {
                interval: Some(Duration::from_secs(1)),
                // Runs for months on traffic whose senders choose the tables' keys.
                keyed_hash: true,
                // The monitor shows ten top talkers: a smaller table holds them.
                max_talkers: 20_000,
                // ~400 bytes a flow: 8 MB at most; the stalest go first beyond.
                max_flows: 20_000,
                ..AnalyzerConfig::default()
            };
            let mut analyzer = Analyzer::new(cfg, 10);
            let mut on_flow = |_: &netpulse_capture::stats::FlowRecord| {};
            let mut batch = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                // What the ring holds now; empty after ~100 ms of nothing (the flag is looked
                // at again).
                if let Err(e) = source.next_batch(&mut batch) {
                    say!("netpulse monitor: {e}; the capture stopped");
                    break;
                }
                let mut closed = None;
                for p in &batch {
                    analyzer.summary(
                        p,
                        &mut |i: &Interval| closed = Some(i.clone()),
                        &mut on_flow,
                    );
                }
                if let Some(i) = closed {
                    for p in Protocol::ALL {
                        let c = i.protocols[p as usize];
                        if c.packets > 0 {
                            shared.metrics.captured(p.name(), c.packets, c.bytes);
                        }
                    }
                    let dropped = source.live_stats().map_or(0, |s| u64::from(s.dropped));
                    let top = analyzer.top_hosts(10);
                    let view = CaptureLive {
                        interface: name.clone(),
                        packets: analyzer.total().packets,
                        bytes: analyzer.total().bytes,
                        bits_per_sec: i.total.bytes as f64 * 8.0 / i.length.as_secs_f64().max(1e-9),
                        protocols: Protocol::ALL
                            .iter()
                            .map(|&p| {
                                let c = i.protocols[p as usize];
                                (p.name().to_string(), c.packets, c.bytes)
                            })
                            .filter(|c| c.1 > 0)
                            .collect(),
                        top_hosts: top.into_iter().map(|(ip, b)| (ip.to_string(), b)).collect(),
                        dropped,
                    };
                    let mut lv = shared.live();
                    lv.capture = Some(view);
                    lv.version += 1;
                }
            }
        })
        .map_err(Into::into)
    }
}
