//! Versioned migrations. `PRAGMA user_version` holds the number applied; opening an older file
//! upgrades it in one transaction, a newer one is refused. Append new migrations, never edit one.

/// Migrations in order; migration `i` brings the schema from version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

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

/// The columns every interface traffic table has (see docs/schema.md).
macro_rules! traffic_table {
    ($name:literal) => {
        concat!(
            "CREATE TABLE ",
            $name,
            " (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    iface_id INTEGER NOT NULL REFERENCES ifaces(id),
    ts INTEGER NOT NULL,
    covered_ms INTEGER NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    rx_bytes INTEGER NOT NULL,
    tx_bytes INTEGER NOT NULL,
    rx_packets INTEGER NOT NULL,
    tx_packets INTEGER NOT NULL,
    rx_errors INTEGER NOT NULL,
    tx_errors INTEGER NOT NULL,
    rx_dropped INTEGER NOT NULL,
    tx_dropped INTEGER NOT NULL,
    multicast INTEGER NOT NULL,
    rx_rate_avg REAL,
    tx_rate_avg REAL,
    rx_rate_max REAL NOT NULL,
    tx_rate_max REAL NOT NULL,
    complete INTEGER NOT NULL,
    PRIMARY KEY (iface_id, ts, session_id)
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

/// Version 2: interface traffic rollups.
const V2: &str = concat!(
    "CREATE TABLE ifaces (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
",
    traffic_table!("iface_1s"),
    traffic_table!("iface_1m"),
    traffic_table!("iface_1h"),
);

/// Version 3: alerts and every delivery attempt.
const V3: &str = "CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    rule TEXT NOT NULL,
    subject TEXT NOT NULL,
    metric TEXT NOT NULL,
    status TEXT NOT NULL,
    value REAL NOT NULL,
    op TEXT NOT NULL,
    threshold REAL NOT NULL,
    severity TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    since_ms INTEGER NOT NULL
);
CREATE INDEX alerts_at ON alerts (at_ms);
CREATE TABLE alert_deliveries (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    notifier TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    detail TEXT NOT NULL,
    at_ms INTEGER NOT NULL,
    final INTEGER NOT NULL
);
CREATE INDEX alert_deliveries_alert ON alert_deliveries (alert_id);
";

/// Version 4: packet capture per-second protocol counts and flows.
const V4: &str = "CREATE TABLE capture_1s (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    ts INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    packets INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    PRIMARY KEY (session_id, ts, protocol)
) WITHOUT ROWID;
CREATE INDEX capture_1s_ts ON capture_1s (ts);
CREATE TABLE capture_flows (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    proto TEXT NOT NULL,
    a TEXT NOT NULL,
    b TEXT NOT NULL,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    packets_a_to_b INTEGER NOT NULL,
    bytes_a_to_b INTEGER NOT NULL,
    packets_b_to_a INTEGER NOT NULL,
    bytes_b_to_a INTEGER NOT NULL,
    syn_to_synack_us REAL,
    synack_to_ack_us REAL,
    fin INTEGER NOT NULL,
    rst INTEGER NOT NULL
);
CREATE INDEX capture_flows_first ON capture_flows (first_ms);
";

/// Version 5: the scheduler's own lateness in every probe rollup (sends that left later than
/// their schedule allows, and the latest any left).
const V5: &str = "ALTER TABLE probe_1s ADD COLUMN late_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE probe_1s ADD COLUMN max_send_delay_ms REAL NOT NULL DEFAULT 0;
ALTER TABLE probe_1m ADD COLUMN late_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE probe_1m ADD COLUMN max_send_delay_ms REAL NOT NULL DEFAULT 0;
ALTER TABLE probe_1h ADD COLUMN late_sends INTEGER NOT NULL DEFAULT 0;
ALTER TABLE probe_1h ADD COLUMN max_send_delay_ms REAL NOT NULL DEFAULT 0;
";

/// Version 6: which process records a session (so the next open can tell a session whose
/// process died from one still running), and when a dead session's minutes and hours were
/// rebuilt from its seconds.
const V6: &str = "ALTER TABLE sessions ADD COLUMN pid INTEGER;
ALTER TABLE sessions ADD COLUMN pid_start INTEGER;
ALTER TABLE sessions ADD COLUMN recovered_at_ms INTEGER;
";

/// Version 7: stretches of time the database could not be written (disk full, I/O errors),
/// and what of them was lost.
const V7: &str = "CREATE TABLE recording_gaps (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    error TEXT NOT NULL,
    rows_lost INTEGER NOT NULL,
    lost_from_ms INTEGER,
    lost_to_ms INTEGER
);
CREATE INDEX recording_gaps_start ON recording_gaps (start_ms);
";

/// Version 8: HTTP(S) targets' phases per minute (each phase's times, the total's, and the
/// sketch so minutes merge exactly into any range), their results (status codes and failure
/// names) and the certificate expiry they saw.
const V8: &str = "CREATE TABLE http_phase_1m (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    target_id INTEGER NOT NULL REFERENCES targets(id),
    ts INTEGER NOT NULL,
    phase TEXT NOT NULL,
    count INTEGER NOT NULL,
    sum_ns INTEGER NOT NULL,
    sum_sq_ns2 REAL NOT NULL,
    min_ms REAL,
    avg_ms REAL,
    p50_ms REAL,
    p95_ms REAL,
    max_ms REAL,
    hist BLOB NOT NULL,
    PRIMARY KEY (target_id, ts, session_id, phase)
) WITHOUT ROWID;
CREATE INDEX http_phase_1m_ts ON http_phase_1m (ts);
CREATE TABLE http_result_1m (
    session_id INTEGER NOT NULL REFERENCES sessions(id),
    target_id INTEGER NOT NULL REFERENCES targets(id),
    ts INTEGER NOT NULL,
    result TEXT NOT NULL,
    count INTEGER NOT NULL,
    cert_not_after INTEGER,
    PRIMARY KEY (target_id, ts, session_id, result)
) WITHOUT ROWID;
CREATE INDEX http_result_1m_ts ON http_result_1m (ts);
";

/// Version 9: the path traced when an alert fired (`trace` is the JSON of `netpulse trace
/// --json`'s summary).
const V9: &str = "CREATE TABLE alert_traces (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL REFERENCES alerts(id),
    at_ms INTEGER NOT NULL,
    subject TEXT NOT NULL,
    trace TEXT NOT NULL
);
CREATE INDEX alert_traces_alert ON alert_traces (alert_id);
";
