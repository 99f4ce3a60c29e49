//! Versioned migrations. `PRAGMA user_version` holds the number applied; opening an older file
//! upgrades it in one transaction, a newer one is refused. Append new migrations, never edit one.

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// The columns every rollup table has (see docs/schema.md).
macro_rules! rollup_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    target_id INTEGER NOT NULL REFERENCES targets(id),
    ts INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    received INTEGER NOT NULL,
    refused INTEGER NOT NULL,
    timeouts INTEGER NOT NULL,
    icmp_errors INTEGER NOT NULL,
    local_errors INTEGER NOT NULL,
    loss REAL NOT NULL,
    rtt_count INTEGER NOT NULL,
    rtt_sum_ns INTEGER NOT NULL,
    rtt_sum_sq_ns2 REAL NOT NULL,
    rtt_min_ms REAL,
    rtt_avg_ms REAL,
    rtt_max_ms REAL,
    rtt_mdev_ms REAL,
    rtt_p50_ms REAL,
    rtt_p95_ms REAL,
    rtt_p99_ms REAL,
    jitter_ms REAL,
    jitter_sum_abs_ns REAL NOT NULL,
    jitter_deltas INTEGER NOT NULL,
    hist BLOB NOT NULL,
    complete INTEGER NOT NULL,
    PRIMARY KEY (target_id, ts, session_id)
) WITHOUT ROWID;
CREATE INDEX ",
            $name,
            "_ts ON ",
            $name,
            " (ts);
"
        )
    };
}

const V1: &str = concat!(
    "CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    started_at_ms INTEGER NOT NULL,
    ended_at_ms INTEGER,
    host TEXT NOT NULL,
    version TEXT NOT NULL,
    command TEXT NOT NULL,
    config TEXT NOT NULL
);
CREATE TABLE targets (
    id INTEGER PRIMARY KEY,
    label TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL
);
CREATE TABLE session_targets (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    target_id INTEGER NOT NULL REFERENCES targets(id),
    address TEXT NOT NULL,
    interval_ms REAL NOT NULL,
    timeout_ms REAL NOT NULL,
    PRIMARY KEY (session_id, target_id)
);
",
    rollup_table!("probe_1s"),
    rollup_table!("probe_1m"),
    rollup_table!("probe_1h"),
    "CREATE TABLE outages (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    target_id INTEGER NOT NULL REFERENCES targets(id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    received INTEGER NOT NULL,
    loss REAL NOT NULL,
    ongoing INTEGER NOT NULL
);
CREATE INDEX outages_start ON outages (start_ms);
"
);
