//! What reading the process's own figures costs: the `procfs` crate (what `/metrics` uses)
//! beside the parser netpulse had written by hand, on the same work.
//!
//!     cargo run --release -p netpulse-web --example process_bench [READS]

use netpulse_web::process::{read, ProcessFigures};
use std::time::Instant;

/// The parser netpulse had before it used the crate (kept here to measure it).
fn hand_written() -> Option<ProcessFigures> {
    use nix::unistd::{sysconf, SysconfVar};
    let ticks = sysconf(SysconfVar::CLK_TCK).ok()??.max(1) as f64;
    let page = sysconf(SysconfVar::PAGE_SIZE).ok()??.max(1) as u64;
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let resident_pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After ')': state is field 3, so utime (14) is index 11, stime 12, starttime (22) 19.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let start_ticks: u64 = fields.get(19)?.parse().ok()?;
    let boot: u64 = std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessFigures {
        resident_bytes: resident_pages * page,
        cpu_seconds: (utime + stime) as f64 / ticks,
        start_time_s: boot + (start_ticks as f64 / ticks) as u64,
    })
}

fn main() {
    let reads: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let time = |name: &str, f: &dyn Fn() -> Option<ProcessFigures>| {
        let mut best = f64::MAX;
        let mut resident = 0;
        for _ in 0..3 {
            let t = Instant::now();
            for _ in 0..reads {
                resident = f().map_or(0, |p| p.resident_bytes);
            }
            best = best.min(t.elapsed().as_secs_f64());
        }
        println!(
            "{name:<12} {:.2} µs a read (best of 3 × {reads}; RSS {resident} B)",
            best * 1e6 / f64::from(reads)
        );
    };
    time("procfs", &read);
    time("hand-written", &hand_written);
}
