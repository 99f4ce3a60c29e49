//! Cost of one poll of every interface, three ways, plus `ip -s -j link` for comparison.
//! Run by `bench/iface_bench.sh` in a namespace with 200 veth interfaces:
//! `iface_bench [POLLS]` prints µs and allocations per poll and the CPU share of the full
//! pipeline (poll + rates + rollups) at 1 Hz.

use netpulse_core::iface::RateTracker;
use netpulse_core::traffic::TrafficRollups;
use netpulse_iface::{IfaceSource, PollMode};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

struct Counting;
static ALLOCS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting calls.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn cpu_time() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("process CPU clock");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

fn measure(name: &str, polls: u32, mut f: impl FnMut() -> usize) {
    let n = f(); // warm up
    let (a0, c0, w0) = (ALLOCS.load(Ordering::Relaxed), cpu_time(), Instant::now());
    for _ in 0..polls {
        f();
    }
    let (cpu, wall) = (cpu_time() - c0, w0.elapsed());
    let allocs = ALLOCS.load(Ordering::Relaxed) - a0;
    println!(
        "{name:<34} {n:>4} ifaces  {:>8.1} µs CPU/poll  {:>8.1} µs wall/poll  {:>7.1} allocs/poll",
        cpu.as_secs_f64() * 1e6 / polls as f64,
        wall.as_secs_f64() * 1e6 / polls as f64,
        allocs as f64 / polls as f64
    );
}

/// `/proc/net/dev` read and parsed into (name, rx_bytes, tx_bytes) — what a procfs source would do.
fn proc_net_dev(buf: &mut String, out: &mut Vec<(String, u64, u64)>) -> usize {
    use std::io::Read;
    buf.clear();
    out.clear();
    if let Ok(mut f) = std::fs::File::open("/proc/net/dev") {
        let _ = f.read_to_string(buf);
    }
    for line in buf.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let mut it = rest
            .split_ascii_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let rx = it.next().unwrap_or(0);
        let tx = it.nth(7).unwrap_or(0);
        out.push((name.trim().to_string(), rx, tx));
    }
    out.len()
}

fn main() {
    let polls: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3600);
    let mut samples = Vec::new();

    let mut stats = IfaceSource::with_mode(PollMode::Stats).expect("rtnetlink");
    measure("netlink RTM_GETSTATS (netpulse)", polls, || {
        stats.poll(&mut samples).expect("poll");
        samples.len()
    });
    let mut links = IfaceSource::with_mode(PollMode::Links).expect("rtnetlink");
    measure("netlink RTM_GETLINK dump", polls, || {
        links.poll(&mut samples).expect("poll");
        samples.len()
    });
    let (mut text, mut parsed) = (String::new(), Vec::new());
    measure("/proc/net/dev read + parse", polls, || {
        proc_net_dev(&mut text, &mut parsed)
    });
    let spawn_polls = (polls / 20).max(5);
    measure("`ip -s -j link` (spawned)", spawn_polls, || {
        let out = std::process::Command::new("ip")
            .args(["-s", "-j", "link"])
            .output()
            .expect("run ip");
        out.stdout.len().min(1) * stats.links().len()
    });
    println!("  (the `ip` row counts this process only; the child's own CPU follows)");
    let (c0, w0) = (children_cpu(), Instant::now());
    for _ in 0..spawn_polls {
        let _ = std::process::Command::new("ip")
            .args(["-s", "-j", "link"])
            .output();
    }
    println!(
        "{:<34}              {:>8.1} µs CPU/poll in `ip` itself ({:.1} µs wall)",
        "`ip -s -j link` child CPU",
        (children_cpu() - c0).as_secs_f64() * 1e6 / spawn_polls as f64,
        w0.elapsed().as_secs_f64() * 1e6 / spawn_polls as f64
    );

    // The whole pipeline of `netpulse ifaces --record` at 1 Hz, an hour's worth of ticks.
    let mut tracker = RateTracker::new();
    let mut rollups = TrafficRollups::new();
    let (mut rates, mut gone, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    let t0 = SystemTime::now();
    let mut tick = 0u64;
    let c0 = cpu_time();
    for _ in 0..polls {
        tick += 1;
        stats.poll(&mut samples).expect("poll");
        rates.clear();
        gone.clear();
        tracker.update(Duration::from_secs(tick), &samples, &mut rates, &mut gone);
        let at = t0 + Duration::from_secs(tick);
        rollups.record(at, &rates);
        rows.clear();
        rollups.flush(at, false, &mut rows);
    }
    let cpu = cpu_time() - c0;
    println!(
        "pipeline (poll + rates + rollups): {:.1} µs CPU per tick → {:.4} % of one core at 1 Hz \
         ({polls} ticks = {:.2} s CPU per {:.1} h at 1 Hz)",
        cpu.as_secs_f64() * 1e6 / polls as f64,
        cpu.as_secs_f64() / polls as f64 * 100.0,
        cpu.as_secs_f64(),
        polls as f64 / 3600.0
    );
    println!("link re-reads during the run: {}", stats.refreshes());
}

fn children_cpu() -> Duration {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .expect("getrusage");
    let tv =
        |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    tv(u.user_time()) + tv(u.system_time())
}
