//! Sustained recording benchmark, run by hand:
//!
//!     cargo run --release -p netpulse-store --example store_bench [TARGETS] [SECONDS] [KEEP_1S]
//!
//! Feeds TARGETS × 1 probe/s for SECONDS of *fake* time (default 1000 × 600) through the real
//! recorder into a real SQLite file, committing once per fake second as the recorder thread does,
//! and prints rows/s, CPU, RSS over the run (it must stay flat) and the database size per target
//! per day. KEEP_1S (seconds) shortens the retention of per-second rows, so a long run reaches
//! the steady state where pruning keeps the file from growing.

use netpulse_core::record::{Detail, Outcome, ProbeResult};
use netpulse_core::rollup::Resolution;
use netpulse_store::{RecordTarget, RecorderConfig, Recording, SessionInfo, Store};
use std::time::{Duration, Instant, UNIX_EPOCH};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_secs() -> f64 {
    // utime + stime, fields 14 and 15 of /proc/self/stat, in clock ticks (100 Hz on Linux)
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let targets: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(600);
    let keep_seconds: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let dir = std::env::temp_dir().join(format!("netpulse-store-bench-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("bench.db");
    let t0 = 1_700_000_000u64 - 1_700_000_000 % 3600;
    let store = Store::open(&path).expect("open database");
    let session = SessionInfo {
        started_at: UNIX_EPOCH + Duration::from_secs(t0),
        host: "bench".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        command: "store_bench".into(),
        config: "{}".into(),
    };
    let list: Vec<RecordTarget> = (0..targets)
        .map(|i| RecordTarget {
            label: format!("10.{}.{}.{}", i >> 16 & 255, i >> 8 & 255, i & 255),
            kind: "icmp".into(),
            address: format!("10.0.0.{}", i & 255),
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
        })
        .collect();
    let mut cfg = RecorderConfig::default();
    if let Some(k) = keep_seconds {
        cfg.retention.seconds = Some(Duration::from_secs(k));
    }
    let mut rec = Recording::new(store, &session, &list, cfg).expect("recording");
    let rss_start = rss_kib();
    let cpu_start = cpu_secs();
    let wall = Instant::now();
    let mut rng: u64 = 0x9e3779b97f4a7c15;
    let mut rss_samples = Vec::new();
    for s in 0..seconds {
        for t in 0..targets {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let lost = rng.is_multiple_of(100);
            let r = ProbeResult {
                target: t,
                seq: s + 1,
                sent_at: UNIX_EPOCH
                    + Duration::from_secs(t0 + s)
                    + Duration::from_millis((t as u64 * 997) % 1000),
                rtt: (!lost).then(|| Duration::from_micros(20_000 + rng % 5_000)),
                outcome: if lost { Outcome::Timeout } else { Outcome::Ok },
                detail: Detail::None,
                send_delay: std::time::Duration::ZERO,
                late: false,
            };
            rec.record(&r);
        }
        rec.commit(UNIX_EPOCH + Duration::from_secs(t0 + s + 1), false);
        if s % 60 == 59 {
            // as the recorder thread does once a minute
            rec.prune(UNIX_EPOCH + Duration::from_secs(t0 + s + 1));
            rss_samples.push((s + 1, rss_kib()));
        }
    }
    let report = rec.finish(UNIX_EPOCH + Duration::from_secs(t0 + seconds + 2));
    let elapsed = wall.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu_start;
    let probes = targets as u64 * seconds;
    let store = Store::open_read(&path).expect("reopen");
    let rows: Vec<(Resolution, i64)> = Resolution::ALL
        .iter()
        .map(|&r| (r, store.count_rows(r).expect("count")))
        .collect();
    drop(store);
    let size: u64 = ["bench.db", "bench.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len())
        .sum();
    let row_total: i64 = rows.iter().map(|(_, n)| n).sum();
    let bytes_per_row = size as f64 / row_total.max(1) as f64;
    // a steady day per target: 86 400 second rows, 1 440 minute rows, 24 hour rows
    let per_target_day = bytes_per_row * (86_400.0 + 1_440.0 + 24.0);
    println!("store benchmark: {targets} targets × 1 probe/s × {seconds} s of fake time");
    println!(
        "  probes recorded          {probes}  (dropped {}, late {}, failed commits {})",
        report.dropped, report.late, report.failed_commits
    );
    println!("  rows in database         {rows:?}");
    println!(
        "  rows written (upserts)   {}  = {:.0} rows/s of wall time",
        report.rows_written,
        report.rows_written as f64 / elapsed
    );
    println!(
        "  wall time                {elapsed:.2} s  ({:.0} fake seconds per wall second)",
        seconds as f64 / elapsed
    );
    println!("  CPU time                 {cpu:.2} s  = {:.2} µs per probe, {:.2} % of one core at 1 probe/s/target", cpu / probes as f64 * 1e6, cpu / seconds as f64 * 100.0);
    println!(
        "  RSS start → end          {rss_start} KiB → {} KiB",
        rss_kib()
    );
    println!(
        "  RSS per minute           {}",
        rss_samples
            .iter()
            .map(|(s, k)| format!("{}m:{k}", s / 60))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  database size            {:.1} MiB, {bytes_per_row:.0} bytes per row",
        size as f64 / 1048576.0
    );
    println!("  per target per day       {:.1} MiB (86 400 × 1 s + 1 440 × 1 m + 24 × 1 h rows; 1 s rows kept 48 h)", per_target_day / 1048576.0);
    let _ = std::fs::remove_dir_all(&dir);
}
