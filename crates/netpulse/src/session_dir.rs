//! `--session-dir DIR` (probe and monitor): seed 002's session folder, written *live* from the
//! recording. Every refresh (10 s by default: seed 002's `FILE_WRITE_INTERVAL`) `summary.txt` (a
//! configuration header, then what `report` says), `summary.json` and the outage log
//! (`outages.txt`, `outages.json`) are rewritten, and `per_second.csv`, `per_minute.csv` and
//! `per_hour.csv` get the rows of the buckets that closed since — appended, so a refresh costs
//! what is new, not the whole session. When the run ends, the folder is written once more in
//! full, exactly as `report --out` writes it (with the JSON twins of the series). Every file
//! is replaced atomically. `--connection-log` adds `connections.log`, one line per probe.

use crate::report_cmd::{gather, write_csv_rows, Scope};
use anyhow::Context;
use netpulse_core::record::ProbeResult;
use netpulse_core::rollup::Resolution;
use netpulse_store::Store;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often the folder is brought up to date by default (seed 002's `FILE_WRITE_INTERVAL`).
pub const REFRESH: &str = "10s";

/// The folder being kept up to date.
pub struct SessionDir {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<anyhow::Result<()>>,
    dir: PathBuf,
    db: PathBuf,
    session: i64,
}

/// The folder's live writer (its own thread, its own read connection to the database).
struct Writer {
    dir: PathBuf,
    db: PathBuf,
    session: i64,
    header: String,
    store: Option<Store>,
    /// Per resolution: rows before this bucket (unix seconds) are in the CSV already.
    written_until: [Option<i64>; 3],
    /// A bucket counts as closed this long after its end: a late answer (up to the longest
    /// timeout) may still change it until then.
    settle_s: i64,
}

const SERIES: [(Resolution, &str); 3] = [
    (Resolution::Second, "per_second"),
    (Resolution::Minute, "per_minute"),
    (Resolution::Hour, "per_hour"),
];

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Writer {
    /// Opens the read connection if it is not open.
    fn open(&mut self) -> anyhow::Result<()> {
        if self.store.is_none() {
            self.store = Some(Store::open_read_unchecked(&self.db)?);
        }
        Ok(())
    }

    fn scope(store: &Store, session: i64) -> anyhow::Result<Scope> {
        let row = store
            .session(session)?
            .with_context(|| format!("session {session} is not in the database"))?;
        let to = match row.ended_at_ms {
            Some(e) => e,
            None => store.session_last_ms(session)?.unwrap_or(row.started_at_ms),
        };
        Ok(Scope {
            from_ms: row.started_at_ms,
            to_ms: to.max(row.started_at_ms),
            session: Some(row),
            target: None,
        })
    }

    /// One live refresh: the summary and outages rewritten, closed buckets appended.
    fn refresh(&mut self) -> anyhow::Result<()> {
        let session = self.session;
        self.open()?;
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let sc = Self::scope(store, session)?;
        let report = gather(store, &sc)?;
        let settled = now_s() - self.settle_s;
        let mut appended: Vec<(usize, Vec<netpulse_store::RollupRecord>)> = Vec::new();
        for (i, (res, _)) in SERIES.iter().enumerate() {
            // A bucket starting at b is closed once b + its length ≤ `settled`.
            let closed_before = res.bucket(settled - res.seconds()) + res.seconds();
            let from = self.written_until[i].unwrap_or(res.bucket(sc.from_ms.div_euclid(1000)));
            if closed_before <= from {
                continue;
            }
            let rows: Vec<_> = store
                .merged_rollups(
                    *res,
                    from * 1000,
                    closed_before * 1000 - 1,
                    Some(session),
                    None,
                )?
                .into_iter()
                .filter(|r| r.ts >= from && r.ts < closed_before)
                .collect();
            appended.push((i, rows));
            self.written_until[i] = Some(closed_before);
        }
        crate::report_cmd::write_summaries(&self.dir, &report, &self.header)?;
        for (i, rows) in appended {
            let path = self.dir.join(format!("{}.csv", SERIES[i].1));
            let new = !path.exists();
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("cannot write {}", path.display()))?;
            write_csv_rows(std::io::BufWriter::new(file), &rows, new)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// The run ended (the recording finished): the whole folder as `report --out` writes it.
    fn finish(&mut self) -> anyhow::Result<()> {
        let session = self.session;
        // A fresh connection sees the session's end and its last rows.
        self.store = None;
        self.open()?;
        let Some(store) = self.store.as_ref() else {
            return Ok(());
        };
        let sc = Self::scope(store, session)?;
        let report = gather(store, &sc)?;
        crate::report_cmd::write_folder(&self.dir, store, &sc, &report, &self.header)
    }
}

impl SessionDir {
    /// Creates `dir` now (a folder that cannot be made fails the start) and starts keeping it
    /// up to date, every `every`, from session `session` of database `db`. `header` opens
    /// `summary.txt`; `longest_timeout` is how late an answer can change a bucket.
    pub fn start(
        dir: &Path,
        db: &Path,
        session: i64,
        header: String,
        every: Duration,
        longest_timeout: Duration,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the session folder {}", dir.display()))?;
        // Files of an earlier run in the same folder would be appended to: start clean.
        for (_, stem) in SERIES {
            let _ = std::fs::remove_file(dir.join(format!("{stem}.csv")));
        }
        let (stop, stopped) = mpsc::channel::<()>();
        let mut writer = Writer {
            dir: dir.to_path_buf(),
            db: db.to_path_buf(),
            session,
            header,
            store: None,
            written_until: [None; 3],
            settle_s: longest_timeout.as_secs() as i64 + 2,
        };
        let thread = std::thread::Builder::new()
            .name("session-dir".into())
            .spawn(move || -> anyhow::Result<()> {
                let mut said = false;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // A failed refresh (database busy, disk full) is said once and tried again.
                    match writer.refresh() {
                        Ok(()) => said = false,
                        Err(e) if !said => {
                            eprintln!(
                                "netpulse: session folder {}: {e:#} (trying again in {})",
                                writer.dir.display(),
                                humantime::format_duration(every)
                            );
                            said = true;
                        }
                        Err(_) => {}
                    }
                }
                Ok(())
            })
            .context("cannot start the session folder thread")?;
        Ok(Self {
            stop,
            thread,
            dir: dir.to_path_buf(),
            db: db.to_path_buf(),
            session,
        })
    }

    /// After the recording finished: the folder written in full, once more.
    pub fn finish(self, header: String) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        let _ = self.thread.join();
        let mut writer = Writer {
            dir: self.dir.clone(),
            db: self.db,
            session: self.session,
            header,
            store: None,
            written_until: [None; 3],
            settle_s: 0,
        };
        writer.finish()?;
        eprintln!("netpulse: session folder written to {}", self.dir.display());
        Ok(())
    }
}

/// `--connection-log`: one line per probe, appended as results arrive.
pub struct ConnectionLog {
    out: std::io::BufWriter<std::fs::File>,
    path: PathBuf,
}

impl ConnectionLog {
    /// Opens `DIR/connections.log` (a new file each run).
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("connections.log");
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self {
            out: std::io::BufWriter::new(file),
            path,
        })
    }

    /// One probe: send time, target, outcome, RTT.
    pub fn probe(&mut self, label: &str, r: &ProbeResult) -> anyhow::Result<()> {
        let rtt = r
            .rtt
            .map(|d| format!("{:.3} ms", d.as_secs_f64() * 1000.0))
            .unwrap_or_else(|| "-".into());
        writeln!(
            self.out,
            "{} {label} seq={} {} {rtt}",
            humantime::format_rfc3339_micros(r.sent_at),
            r.seq,
            r.outcome.name()
        )
        .with_context(|| format!("cannot write {}", self.path.display()))
    }

    /// Writes what is buffered (the log is read live).
    pub fn flush(&mut self) -> anyhow::Result<()> {
        self.out
            .flush()
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}
