//! netpulse's active probers: ICMP echo (ping socket or raw), TCP connect, UDP, DNS, and the one
//! scheduler that drives them all. Sources only: results leave as `ProbeResult` records.

pub mod dns;
pub mod engine;
pub mod error;
pub mod resolve;
mod sys;
pub mod wire;

pub use engine::{
    late_threshold, Engine, EngineConfig, EngineHandle, IcmpMode, PreparedTarget, ProbePlan,
    RunReport, StopHandle, TargetReport, MAX_TARGETS,
};
pub use error::{ProbeError, ResolveError};
pub use resolve::{resolve, Family};
