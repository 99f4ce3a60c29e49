//! The engine with targets added and removed while it runs, over real loopback sockets.

use netpulse_core::record::{Outcome, ProbeResult};
use netpulse_core::target::TargetKind;
use netpulse_probe::{Engine, EngineConfig, EngineHandle, ProbeError, ProbePlan};
use std::collections::HashMap;
use std::net::{IpAddr, TcpListener};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

const INTERVAL: Duration = Duration::from_millis(20);

fn plan(kind: TargetKind, addr: &str) -> ProbePlan {
    ProbePlan {
        label: addr.to_string(),
        kind,
        addr: addr.parse::<IpAddr>().expect("address"),
        interval: INTERVAL,
        timeout: Duration::from_millis(500),
        count: None,
        payload_size: None,
        http: None,
    }
}

/// A loopback TCP port nobody listens on (bound, then closed): connects are refused at once.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    drop(l);
    port
}

fn tcp(port: u16) -> TargetKind {
    TargetKind::Tcp { port }
}

struct Running {
    handle: EngineHandle,
    results: mpsc::Receiver<ProbeResult>,
    thread: JoinHandle<netpulse_probe::RunReport>,
    seen: HashMap<usize, Vec<u64>>,
}

impl Running {
    fn start(initial: Vec<(usize, ProbePlan)>) -> Result<Running, ProbeError> {
        let engine = Engine::with_ids(
            initial,
            EngineConfig {
                until_stopped: true,
                ..EngineConfig::default()
            },
        )?;
        let handle = engine.handle();
        let (tx, results) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            engine.run(&mut |r: &ProbeResult| {
                let _ = tx.send(r.clone());
            })
        });
        Ok(Running {
            handle,
            results,
            thread,
            seen: HashMap::new(),
        })
    }

    /// Takes results until `done` holds (each result is an event; no sleeping).
    fn until(&mut self, what: &str, done: impl Fn(&HashMap<usize, Vec<u64>>) -> bool) {
        while !done(&self.seen) {
            let r = self
                .results
                .recv_timeout(Duration::from_secs(10))
                .unwrap_or_else(|_| {
                    panic!("no result for 10 s waiting for {what}: {:?}", self.seen)
                });
            assert!(
                r.outcome.is_reply(),
                "loopback probe of target {} failed: {:?}",
                r.target,
                r.outcome
            );
            self.seen.entry(r.target).or_default().push(r.seq);
        }
    }
}

fn count(seen: &HashMap<usize, Vec<u64>>, id: usize) -> usize {
    seen.get(&id).map_or(0, Vec::len)
}

/// Sequences a target answered, in order: 1, 2, 3 … with no gap, no restart.
fn assert_continuous(seen: &HashMap<usize, Vec<u64>>, id: usize) {
    let mut seqs = seen.get(&id).cloned().unwrap_or_default();
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "target {id} kept its sequence");
}

fn add_remove_scenario(kind_a: TargetKind, kind_b: TargetKind, kind_c: TargetKind) {
    let mut run = Running::start(vec![
        (10, plan(kind_a, "127.0.0.1")),
        (20, plan(kind_b, "127.0.0.2")),
    ])
    .expect("engine");
    run.until("both initial targets", |s| {
        count(s, 10) >= 5 && count(s, 20) >= 5
    });
    let b_before = run
        .seen
        .get(&20)
        .and_then(|v| v.iter().max().copied())
        .unwrap_or(0);
    run.handle.remove(20);
    run.handle
        .add(30, plan(kind_c, "127.0.0.3"))
        .expect("add while running");
    let a_before = count(&run.seen, 10);
    run.until("the added target and more of the kept one", |s| {
        count(s, 30) >= 10 && count(s, 10) >= a_before + 10
    });
    // Removed: at most the probes already sent (or due) when the removal was taken, which is
    // within one interval; ten intervals later nothing more.
    let b_after = run
        .seen
        .get(&20)
        .and_then(|v| v.iter().max().copied())
        .unwrap_or(0);
    assert!(
        b_after <= b_before + 2,
        "removed target went on: seq {b_before} at removal, {b_after} later"
    );
    assert_continuous(&run.seen, 10);
    assert_continuous(&run.seen, 30);
    run.handle.stop();
    let report = run.thread.join().expect("engine thread");
    // The report lists the targets still there (by id), not the removed one.
    assert!(report.targets.len() > 30);
    assert!(report.targets[10].late_or_duplicate_replies == 0);
    assert_eq!(
        report.targets[20].stats.sent, 0,
        "removed targets leave the report"
    );
}

#[test]
fn tcp_targets_are_added_and_removed_while_running() {
    let port = closed_port();
    add_remove_scenario(tcp(port), tcp(port), tcp(port));
}

#[test]
fn icmp_targets_share_one_socket_through_adds_and_removes() {
    match Running::start(vec![(1, plan(TargetKind::Icmp, "127.0.0.1"))]) {
        Err(ProbeError::IcmpPermission { .. }) => {
            let reason = "no ICMP socket permission here (ping_group_range or CAP_NET_RAW)";
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI must run this test: {reason}"
            );
            eprintln!("SKIPPED: {reason}");
            return;
        }
        Err(e) => panic!("engine: {e}"),
        Ok(r) => {
            r.handle.stop();
            let _ = r.thread.join();
        }
    }
    add_remove_scenario(TargetKind::Icmp, TargetKind::Icmp, TargetKind::Icmp);
}

#[test]
fn an_added_target_that_cannot_be_probed_is_refused_to_the_caller() {
    let run = Running::start(Vec::new()).expect("engine");
    let mut bad = plan(
        TargetKind::Dns {
            name: "x".repeat(300),
            qtype: "A".into(),
            port: 53,
        },
        "127.0.0.1",
    );
    bad.label = "bad".into();
    let e = run
        .handle
        .add(1, bad)
        .expect_err("a 300-byte name cannot be queried");
    assert!(e.to_string().contains("bad"), "{e}");
    run.handle.stop();
    let report = run.thread.join().expect("engine thread");
    assert!(report.targets.is_empty());
}

#[test]
fn a_refused_port_is_an_answer() {
    let port = closed_port();
    let mut run = Running::start(vec![(0, plan(tcp(port), "127.0.0.1"))]).expect("engine");
    let r = run
        .results
        .recv_timeout(Duration::from_secs(10))
        .expect("a result");
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.rtt.is_some());
    run.seen.clear();
    run.handle.stop();
    let _ = run.thread.join();
}
