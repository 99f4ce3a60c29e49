//! netpulse's pure core: the records every source produces, the statistics computed from them,
//! and the small parsers shared by the CLI and the config. No I/O, no threads, no clock reads:
//! time is always passed in, so everything here is tested with exact, hand-computed vectors.

pub mod alert;
pub mod civil;
pub mod clock;
pub mod duration;
pub mod iface;
pub mod live;
pub mod monitor;
pub mod outage;
pub mod record;
pub mod rollup;
pub mod seconds;
pub mod sketch;
pub mod stats;
pub mod target;
pub mod text;
pub mod traffic;
pub mod units;
pub mod window;

pub use clock::{Clock, FakeClock, SystemClock};
pub use duration::{parse_duration, saturating_nanos, DurationParseError};
pub use record::{Detail, IcmpError, Outcome, ProbeResult, TargetId};
pub use stats::{Jitter, ProbeStats, RttStats, RttSummary};
pub use target::{parse_port_list, parse_target, TargetKind, TargetParseError, TargetSpec};
pub use window::{WindowReport, WindowStats};
