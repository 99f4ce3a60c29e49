//! netpulse's active probers: ICMP echo (ping socket or raw), TCP connect, UDP, DNS, HTTP(S),
//! and the one scheduler that drives them all. Sources only: results leave as `ProbeResult` records.

pub mod dns;
pub mod engine;
pub mod error;
mod http;
pub mod resolve;
mod sys;
pub mod trace;
pub mod wire;

pub use engine::{
    late_threshold, Engine, EngineConfig, EngineHandle, HttpReport, IcmpMode, PreparedTarget,
    ProbePlan, RunReport, StopHandle, TargetReport, MAX_TARGETS,
};
pub use error::{ProbeError, ResolveError};
pub use resolve::{resolve, Family};

/// Raises this process's soft limit of open files to its hard limit (at most 1 M): every probe
/// in flight holds a socket, and a monitor's web clients must never exhaust them. Returns the
/// soft limit in force afterwards.
pub fn raise_open_file_limit() -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let want = hard.min(1 << 20);
    if soft < want && setrlimit(Resource::RLIMIT_NOFILE, want, hard).is_ok() {
        return Some(want);
    }
    Some(soft)
}
