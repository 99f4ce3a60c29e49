//! netpulse's history: an embedded SQLite database (no server), written by one recorder thread
//! in batches once a second, kept like an RRD (seconds 48 h, minutes 30 days, hours forever by
//! default), and read back by `netpulse report`. The schema is documented in `docs/schema.md`.

mod alerts;
mod capture;
mod db;
mod http;
mod recorder;
mod recover;
mod schema;
mod traffic;

pub use alerts::AlertRecord;
pub use capture::CaptureRow;
pub use db::{
    default_db_path, GapRecord, OutageRecord, RollupRecord, SessionInfo, SessionRow, Store,
    StoreError, TargetRow,
};
pub use http::{HttpMinute, PHASE_NAMES as HTTP_PHASE_NAMES};
pub use recorder::{
    AlertTraceRecord, CaptureSecond, DeliveryRecord, FlowRow, RecordSink, RecordTarget, Recorder,
    RecorderConfig, RecorderReport, Recording, Retention, RetentionParseError,
};
pub use recover::Recovered;
#[doc(hidden)]
pub use schema::MIGRATIONS;
pub use schema::SCHEMA_VERSION;
pub use traffic::{Calendar, PeriodTraffic, TrafficRecord};
