//! `--record`: opens the history database and starts the recorder for a probe run.

use crate::cli::ProbeArgs;
use anyhow::{bail, Context};
use netpulse_core::outage::OutageConfig;
use netpulse_core::parse_duration;
use netpulse_probe::ProbePlan;
use netpulse_store::{
    default_db_path, RecordTarget, Recorder, RecorderConfig, Retention, SessionInfo, Store,
};
use std::path::PathBuf;
use std::time::SystemTime;

/// The outage detector's settings from the command line.
pub fn outage_config(args: &ProbeArgs) -> anyhow::Result<OutageConfig> {
    if !(0.0..1.0).contains(&args.outage_loss) {
        bail!(
            "bad --outage-loss {}: a fraction from 0 to below 1",
            args.outage_loss
        );
    }
    let window = parse_duration(&args.outage_window).context("bad --outage-window")?;
    if window.is_zero() {
        bail!("bad --outage-window: must be more than 0");
    }
    Ok(OutageConfig {
        window,
        loss_threshold: args.outage_loss,
        consecutive: args.outage_after,
        min_probes: args.outage_min_probes,
    })
}

/// The file `--record` names, or the default.
pub fn db_path(arg: &std::path::Path) -> PathBuf {
    if arg.as_os_str().is_empty() {
        default_db_path()
    } else {
        arg.to_path_buf()
    }
}

/// This machine's name, for sessions and alerts.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Says, at the end of a recording to `path`, what did not go as it should: results dropped
/// (`what` they were), failed writes, rows lost, interruptions.
pub fn say_recording_end(report: &netpulse_store::RecorderReport, what: &str) {
    if report.dropped > 0 {
        eprintln!(
            "netpulse: the recorder fell behind (slow disk?): {} {what} were not recorded",
            report.dropped
        );
    }
    if report.failed_commits > 0 {
        eprintln!(
            "netpulse: {} writes failed ({} interruption{} of the recording, {} rows lost); first error: {}",
            report.failed_commits,
            report.interruptions,
            if report.interruptions == 1 { "" } else { "s" },
            report.rows_lost,
            report.first_error.as_deref().unwrap_or("?")
        );
    } else if let Some(e) = &report.first_error {
        eprintln!("netpulse: recording: {e}");
    }
}

/// Says which sessions opening `store` found dead and rebuilt (their process was killed).
pub fn say_recovered(store: &Store) {
    for r in store.recovered() {
        eprintln!(
            "netpulse: session {} did not end (its process was killed or crashed): rebuilt {} \
             minute and {} hour rows of {} from its seconds",
            r.session_id,
            r.minutes,
            r.hours,
            store.path().display()
        );
    }
}

/// Opens the database (failing now, with a clear message, if it cannot be written) and starts
/// recording `plans`.
pub fn start(
    args: &ProbeArgs,
    path: &std::path::Path,
    plans: &[ProbePlan],
) -> anyhow::Result<Recorder> {
    let retention = args.retention;
    let outage = outage_config(args)?;
    let store = Store::open(path)?;
    say_recovered(&store);
    let config = serde_json::json!({
        "interval_ms": plans.first().map(|p| p.interval.as_secs_f64() * 1000.0),
        "timeout_ms": plans.first().map(|p| p.timeout.as_secs_f64() * 1000.0),
        "count": args.count,
        "payload_size": args.size,
        "targets": plans.iter().map(|p| p.label.clone()).collect::<Vec<_>>(),
        "retention": args.retention.to_string(),
        "outage": {"window": args.outage_window, "loss": args.outage_loss, "after": args.outage_after, "min_probes": args.outage_min_probes},
    });
    let session = session_info(&config);
    let targets: Vec<RecordTarget> = plans
        .iter()
        .map(|p| RecordTarget {
            label: p.label.clone(),
            kind: p.kind.name().to_string(),
            address: p.addr.to_string(),
            interval: p.interval,
            timeout: p.timeout,
        })
        .collect();
    let cfg = RecorderConfig {
        retention,
        outage,
        ..RecorderConfig::default()
    };
    Ok(Recorder::start(store, &session, &targets, cfg)?)
}

fn session_info(config: &serde_json::Value) -> SessionInfo {
    SessionInfo {
        started_at: SystemTime::now(),
        host: host_name(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        config: config.to_string(),
    }
}

/// Opens the database (failing now if it cannot be written) and starts a recording with no
/// probe targets, for interface traffic. Targets the caller adds later have their outages
/// handed over by the caller (the monitor's model detects them; one detector per target, not two).
pub fn start_traffic(
    path: &std::path::Path,
    retention: Retention,
    config: serde_json::Value,
) -> anyhow::Result<Recorder> {
    let store = Store::open(path)?;
    say_recovered(&store);
    let cfg = RecorderConfig {
        retention,
        // The monitor hands results over in batches (one message per ~50 ms), so a short queue
        // still holds minutes of them; a long one would only cost memory.
        queue: 1 << 12,
        outages_from_caller: true,
        ..RecorderConfig::default()
    };
    Ok(Recorder::start(store, &session_info(&config), &[], cfg)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retention_specs() {
        let r: Retention = "1s=1h,1h=forever".parse().expect("valid");
        assert_eq!(r.seconds, Some(Duration::from_secs(3600)));
        assert_eq!(r.minutes, Retention::default().minutes);
        assert_eq!(r.hours, None);
        assert!("5s=1h".parse::<Retention>().is_err());
        assert!("1s".parse::<Retention>().is_err());
        assert!("1s=soon".parse::<Retention>().is_err());
        // The default is written once, and reads back as itself.
        let d = Retention::default();
        assert_eq!(d.to_string(), "1s=48h,1m=30d,1h=forever");
        assert_eq!(d.to_string().parse::<Retention>(), Ok(d));
    }
}
