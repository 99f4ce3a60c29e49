//! The database: opening (with checks that never touch a file that is not ours), migrations,
//! writes in one transaction per batch, retention, and the queries `report` needs.

use crate::schema::{MIGRATIONS, SCHEMA_VERSION};
use netpulse_core::outage::Outage;
use netpulse_core::rollup::Resolution;
use netpulse_core::sketch::LatencySketch;
use netpulse_core::stats::{Jitter, ProbeStats, RttParts, RttStats};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Everything that can go wrong with the history database; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file exists but SQLite does not take it for a database (not SQLite, or its header
    /// is damaged).
    #[error(
        "{path} is not a netpulse database (SQLite does not read it as a database: another \
         kind of file, or a damaged header); it was left untouched"
    )]
    NotADatabase {
        /// The file.
        path: PathBuf,
    },
    /// The file is SQLite but cannot be read.
    #[error("{path} is damaged or not readable as a netpulse database ({source}); it was left untouched")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// SQLite reads the file, but its own check finds damage inside (in data pages, where
    /// reading the header and the schema does not look).
    #[error(
        "{path} is damaged: SQLite's integrity check says \"{detail}\"; it was left untouched \
         (`sqlite3 {path} .recover` copies out what is readable; record to another file)"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// The first problem SQLite found.
        detail: String,
    },
    /// Written by a newer netpulse.
    #[error("{path} has schema version {found}, newer than this netpulse understands ({supported}); use a newer netpulse")]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its version.
        found: u32,
        /// Ours.
        supported: u32,
    },
    /// Cannot be created or opened for writing.
    #[error("cannot open {path} for recording: {reason}")]
    Unwritable {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The file does not exist (for reading).
    #[error("no database at {path} (`netpulse monitor` records by default; `netpulse probe --record` and `netpulse capture --record` record too)")]
    Missing {
        /// The file.
        path: PathBuf,
    },
    /// A statement failed.
    #[error("database {path}: {op}: {source}")]
    Sql {
        /// The file.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// What SQLite said.
        source: rusqlite::Error,
    },
}

/// The default database: `$XDG_DATA_HOME/netpulse/netpulse.db`, else
/// `~/.local/share/netpulse/netpulse.db`, else `./netpulse.db`.
pub fn default_db_path() -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/share"))
        });
    match base {
        Some(b) => b.join("netpulse").join("netpulse.db"),
        None => PathBuf::from("netpulse.db"),
    }
}

/// What describes a recording session.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Start, wall clock.
    pub started_at: SystemTime,
    /// Host name of the machine.
    pub host: String,
    /// netpulse version.
    pub version: String,
    /// The command line.
    pub command: String,
    /// The effective configuration, as JSON.
    pub config: String,
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    /// Id.
    pub id: i64,
    /// Start, unix ms.
    pub started_at_ms: i64,
    /// End, unix ms (`None`: still running, or the process died).
    pub ended_at_ms: Option<i64>,
    /// Host name.
    pub host: String,
    /// netpulse version.
    pub version: String,
    /// Command line.
    pub command: String,
    /// Targets recorded.
    pub targets: i64,
}

/// A target as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetRow {
    /// Id.
    pub id: i64,
    /// Label (`10.77.0.2`, `tcp://host:443`, ...).
    pub label: String,
    /// Kind (`icmp`, `tcp`, ...).
    pub kind: String,
}

/// One stored rollup.
#[derive(Debug, Clone)]
pub struct RollupRecord {
    /// Session it belongs to.
    pub session_id: i64,
    /// Target label.
    pub target: String,
    /// Bucket start, unix seconds.
    pub ts: i64,
    /// Statistics.
    pub stats: ProbeStats,
}

/// One stored outage.
#[derive(Debug, Clone, PartialEq)]
pub struct OutageRecord {
    /// Session it belongs to.
    pub session_id: i64,
    /// Target label.
    pub target: String,
    /// Start, unix ms.
    pub start_ms: i64,
    /// End, unix ms.
    pub end_ms: i64,
    /// Probes sent during it.
    pub sent: i64,
    /// Of those, answered.
    pub received: i64,
    /// True if the run stopped during it.
    pub ongoing: bool,
}

impl OutageRecord {
    /// Duration in ms.
    pub fn duration_ms(&self) -> i64 {
        self.end_ms - self.start_ms
    }
    /// Loss fraction.
    pub fn loss(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            1.0 - self.received as f64 / self.sent as f64
        }
    }
}

/// A stretch of time the database could not be written (disk full, I/O error).
#[derive(Debug, Clone, PartialEq)]
pub struct GapRecord {
    /// Session it belongs to.
    pub session_id: i64,
    /// First failed write, unix ms.
    pub start_ms: i64,
    /// The write that worked again, unix ms.
    pub end_ms: i64,
    /// What SQLite said.
    pub error: String,
    /// Final rows lost (more than memory kept); 0: everything was written late.
    pub rows_lost: i64,
    /// The time the lost rows covered, unix ms.
    pub lost: Option<(i64, i64)>,
}

/// The history database.
pub struct Store {
    pub(crate) conn: Connection,
    path: PathBuf,
    /// Sessions whose process died, rebuilt when this store was opened.
    recovered: Vec<crate::recover::Recovered>,
}

/// SQLite could not open the file (or its `-shm`/`-wal` beside it) at all.
fn cannot_open(e: &StoreError) -> bool {
    match e {
        StoreError::Corrupt { source, .. } => {
            source.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen)
        }
        _ => false,
    }
}

/// `path` as the path of a `file:` URI: absolute, with every byte outside the unreserved set
/// percent-encoded (a `?` or `#` in a directory name must not end the path).
fn uri_path(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut out = String::new();
    for &b in absolute.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub(crate) fn unix_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn table(res: Resolution) -> &'static str {
    match res {
        Resolution::Second => "probe_1s",
        Resolution::Minute => "probe_1m",
        Resolution::Hour => "probe_1h",
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Store {
    /// Opens (creating it and its directory if needed) the database for recording; upgrades an
    /// older schema. A file that is not ours, damaged or newer is refused and left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let unwritable = |reason: String| StoreError::Unwritable {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| unwritable(format!("cannot create {}: {e}", dir.display())))?;
        }
        // No header check of our own: opening the file with anything but SQLite and closing it
        // would drop every POSIX lock this process holds on it (SQLite's "How To Corrupt", 2.2),
        // and an outside reader would then delete the WAL under the recording. SQLite refuses a
        // file that is not a database itself, before writing anything.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| unwritable(e.to_string()))?;
        let mut store = Store::on(conn, path);
        let version = store.validate()?;
        store.check_integrity()?;
        store.pragma("journal_mode", "WAL")?;
        // NORMAL in WAL mode: a commit survives a process crash (kill -9); only a power loss
        // can take back the last commits.
        store.pragma("synchronous", "NORMAL")?;
        store.migrate(version)?;
        store.recovered = store.recover_dead_sessions()?;
        Ok(store)
    }

    /// Opens an existing database for reading (reports), checking it is not damaged; never
    /// creates or upgrades a file.
    pub fn open_read(path: &Path) -> Result<Store, StoreError> {
        let mut store = Store::open_read_unchecked(path)?;
        store.check_integrity()?;
        // A session whose process died is rebuilt by the first open that can write (a report
        // reads the rebuilt rows); where nothing can be written, it is read as it is.
        let dead = store.dead_sessions()?;
        if !dead.is_empty() {
            if let Ok(conn) = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            ) {
                let mut writer = Store::on(conn, path);
                if let Ok(done) = writer.recover_sessions(&dead) {
                    store.recovered = done;
                }
            }
        }
        Ok(store)
    }

    /// As [`Store::open_read`], without the integrity check (which reads the whole file): for a
    /// reader that opens the file per request (the web API) — the recording checked it when it
    /// opened it, and damage found by a query is still an error naming the file.
    pub fn open_read_unchecked(path: &Path) -> Result<Store, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing {
                path: path.to_path_buf(),
            });
        }
        let opened = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        })
        .map(|conn| Store::on(conn, path))
        .and_then(|store| store.validate().map(|v| (store, v)));
        let (store, version) = match opened {
            Ok(done) => done,
            // A WAL database needs its `-shm` file to be read; on a read-only filesystem that
            // cannot be created, and nothing can be writing it either: read it as immutable.
            Err(e) if cannot_open(&e) => Store::open_immutable(path)?,
            Err(e) => return Err(e),
        };
        if version < SCHEMA_VERSION {
            return Err(StoreError::Sql {
                path: path.to_path_buf(),
                op: "read an older schema (record to it once to upgrade it)",
                source: rusqlite::Error::InvalidQuery,
            });
        }
        Ok(store)
    }

    /// Opens a database on a read-only filesystem (nothing can change it) without the WAL
    /// index SQLite would otherwise create beside it.
    fn open_immutable(path: &Path) -> Result<(Store, u32), StoreError> {
        let wal = PathBuf::from(format!("{}-wal", path.display()));
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            return Err(StoreError::Unwritable {
                path: path.to_path_buf(),
                reason: format!(
                    "it cannot be read here: its write-ahead log {} holds commits not yet in the \
                     file, and reading them needs a writable directory (copy both files to one)",
                    wal.display()
                ),
            });
        }
        let uri = format!("file:{}?immutable=1", uri_path(path));
        let conn = Connection::open_with_flags(
            uri,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_URI
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|source| StoreError::Corrupt {
            path: path.to_path_buf(),
            source,
        })?;
        let store = Store::on(conn, path);
        let version = store.validate()?;
        Ok((store, version))
    }

    /// A store on an open connection to `path` (nothing checked yet).
    fn on(conn: Connection, path: &Path) -> Store {
        Store {
            conn,
            path: path.to_path_buf(),
            recovered: Vec::new(),
        }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Sessions whose process died (killed, crashed), whose minutes and hours this open
    /// rebuilt from their seconds.
    pub fn recovered(&self) -> &[crate::recover::Recovered] {
        &self.recovered
    }

    /// Reads the schema version and the table list: both fail on a damaged file, before any write.
    fn validate(&self) -> Result<u32, StoreError> {
        let corrupt = |source: rusqlite::Error| {
            if source.sqlite_error_code() == Some(rusqlite::ErrorCode::NotADatabase) {
                StoreError::NotADatabase {
                    path: self.path.clone(),
                }
            } else {
                StoreError::Corrupt {
                    path: self.path.clone(),
                    source,
                }
            }
        };
        let version: u32 = self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(corrupt)?;
        let _tables: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(corrupt)?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                path: self.path.clone(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version > 0 {
            // Our own file: its tables must read back.
            self.conn
                .query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0))
                .map_err(corrupt)?;
        }
        Ok(version)
    }

    /// SQLite's `quick_check` (every page and record, not the index contents): damage in data
    /// pages is found before anything is written or reported. ~0.2 s for 200 MB here.
    fn check_integrity(&self) -> Result<(), StoreError> {
        let first: String = self
            .conn
            .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
            .map_err(|source| StoreError::Corrupt {
                path: self.path.clone(),
                source,
            })?;
        if first == "ok" {
            Ok(())
        } else {
            Err(StoreError::Damaged {
                path: self.path.clone(),
                detail: first,
            })
        }
    }

    fn pragma(&self, name: &'static str, value: &str) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, name, value)
            .map_err(|source| StoreError::Sql {
                path: self.path.clone(),
                op: name,
                source,
            })
    }

    pub(crate) fn sql_err(&self, op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
        move |source| StoreError::Sql {
            path: self.path.clone(),
            op,
            source,
        }
    }

    fn migrate(&mut self, from: u32) -> Result<(), StoreError> {
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
            let path = self.path.clone();
            let err = |source| StoreError::Sql {
                path: path.clone(),
                op: "upgrade the schema",
                source,
            };
            let tx = self.conn.transaction().map_err(err)?;
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    /// Records the start of a session; returns its id.
    pub fn begin_session(&mut self, info: &SessionInfo) -> Result<i64, StoreError> {
        let (pid, pid_start) = crate::recover::this_process();
        self.conn
            .execute(
                "INSERT INTO sessions (started_at_ms, host, version, command, config, pid, pid_start)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    unix_ms(info.started_at),
                    info.host,
                    info.version,
                    info.command,
                    info.config,
                    pid,
                    pid_start
                ],
            )
            .map_err(self.sql_err("start a session"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the end of a session.
    pub fn end_session(&mut self, id: i64, ended_at: SystemTime) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE sessions SET ended_at_ms = ?1 WHERE id = ?2",
                params![unix_ms(ended_at), id],
            )
            .map_err(self.sql_err("end the session"))?;
        Ok(())
    }

    /// The id of target `label` (created if new), linked to `session`, and whether `session`
    /// had it already (a reload removed and re-added it: its rows of this session exist).
    pub fn register_target(
        &mut self,
        session: i64,
        label: &str,
        kind: &str,
        address: &str,
        interval: Duration,
        timeout: Duration,
    ) -> Result<(i64, bool), StoreError> {
        let err = self.sql_err("add a target");
        self.conn
            .execute(
                "INSERT INTO targets (label, kind) VALUES (?1, ?2) ON CONFLICT(label) DO NOTHING",
                params![label, kind],
            )
            .map_err(&err)?;
        let id: i64 = self
            .conn
            .query_row("SELECT id FROM targets WHERE label = ?1", [label], |r| {
                r.get(0)
            })
            .map_err(&err)?;
        let had = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM session_targets WHERE session_id = ?1 AND target_id = ?2",
            )
            .and_then(|mut st| st.exists(params![session, id]))
            .map_err(&err)?;
        self.conn
            .execute(
                "INSERT OR REPLACE INTO session_targets (session_id, target_id, address, interval_ms, timeout_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session, id, address, ms(interval), ms(timeout)],
            )
            .map_err(&err)?;
        Ok((id, had))
    }

    /// The latest minute and hour rows of `target` in `session`, as stored: what a series
    /// re-added by a reload merges into instead of replacing.
    pub fn latest_rows(
        &self,
        session: i64,
        target: i64,
    ) -> Result<Vec<(Resolution, i64, ProbeStats)>, StoreError> {
        let err = self.sql_err("read the stored rows of a re-added target");
        let mut out = Vec::new();
        for res in [Resolution::Minute, Resolution::Hour] {
            let sql = format!(
                "SELECT {ROLLUP_COLUMNS} FROM {} p WHERE p.session_id = ?1 AND p.target_id = ?2
                 ORDER BY p.ts DESC LIMIT 1",
                table(res)
            );
            let row = self
                .conn
                .query_row(&sql, params![session, target], |r| {
                    Ok((r.get::<_, i64>(0)?, read_stats(r, 1)?))
                })
                .optional()
                .map_err(&err)?;
            if let Some((ts, stats)) = row {
                out.push((res, ts, stats));
            }
        }
        Ok(out)
    }

    /// Starts a write transaction.
    pub(crate) fn transaction(&mut self) -> Result<Transaction<'_>, StoreError> {
        let path = self.path.clone();
        self.conn.transaction().map_err(|source| StoreError::Sql {
            path,
            op: "begin a write",
            source,
        })
    }

    /// Deletes up to `limit` rows of `res` older than `before` (unix s) from the probe and the
    /// traffic tables each; returns how many.
    pub fn prune(
        &mut self,
        res: Resolution,
        before: i64,
        limit: usize,
    ) -> Result<usize, StoreError> {
        let mut removed = 0;
        for (t, key) in [
            (table(res), "target_id"),
            (crate::traffic::traffic_table(res), "iface_id"),
        ] {
            let sql = format!(
                "DELETE FROM {t} WHERE ({key}, ts, session_id) IN \
                 (SELECT {key}, ts, session_id FROM {t} WHERE ts < ?1 LIMIT ?2)"
            );
            removed += self
                .conn
                .execute(&sql, params![before, limit as i64])
                .map_err(self.sql_err("prune old rows"))?;
        }
        // Capture seconds go with the per-second retention; capture flows and HTTP phases
        // and results with the per-minute one.
        let extra: &[&str] = match res {
            Resolution::Second => &["DELETE FROM capture_1s WHERE (session_id, ts, protocol) IN \
                 (SELECT session_id, ts, protocol FROM capture_1s WHERE ts < ?1 LIMIT ?2)"],
            Resolution::Minute => &[
                "DELETE FROM capture_flows WHERE id IN \
                 (SELECT id FROM capture_flows WHERE first_ms < ?1 * 1000 LIMIT ?2)",
                "DELETE FROM http_phase_1m WHERE (target_id, ts, session_id, phase) IN \
                 (SELECT target_id, ts, session_id, phase FROM http_phase_1m WHERE ts < ?1 LIMIT ?2)",
                "DELETE FROM http_result_1m WHERE (target_id, ts, session_id, result) IN \
                 (SELECT target_id, ts, session_id, result FROM http_result_1m WHERE ts < ?1 LIMIT ?2)",
            ],
            Resolution::Hour => &[],
        };
        for sql in extra {
            removed += self
                .conn
                .execute(sql, params![before, limit as i64])
                .map_err(self.sql_err("prune old rows"))?;
        }
        Ok(removed)
    }

    /// All sessions, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let err = self.sql_err("list sessions");
        let mut st = self
            .conn
            .prepare(
                "SELECT s.id, s.started_at_ms, s.ended_at_ms, s.host, s.version, s.command,
                        (SELECT count(*) FROM session_targets t WHERE t.session_id = s.id)
                 FROM sessions s ORDER BY s.id",
            )
            .map_err(&err)?;
        let rows = st
            .query_map([], |r| {
                Ok(SessionRow {
                    id: r.get(0)?,
                    started_at_ms: r.get(1)?,
                    ended_at_ms: r.get(2)?,
                    host: r.get(3)?,
                    version: r.get(4)?,
                    command: r.get(5)?,
                    targets: r.get(6)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// The session with `id`.
    pub fn session(&self, id: i64) -> Result<Option<SessionRow>, StoreError> {
        Ok(self.sessions()?.into_iter().find(|s| s.id == id))
    }

    /// The last moment a session has data for (its end, or its last rollup if it never ended).
    pub fn session_last_ms(&self, id: i64) -> Result<Option<i64>, StoreError> {
        self.conn
            .query_row(
                "SELECT max(t) * 1000 + 1000 FROM (SELECT max(ts) AS t FROM probe_1s WHERE session_id = ?1
                 UNION ALL SELECT max(ts) FROM iface_1s WHERE session_id = ?1)",
                [id],
                |r| r.get::<_, Option<i64>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(self.sql_err("find the session's last data"))
    }

    /// Targets recorded in the given sessions (all, if empty).
    pub fn targets(&self, sessions: &[i64]) -> Result<Vec<TargetRow>, StoreError> {
        let err = self.sql_err("list targets");
        let mut st = self
            .conn
            .prepare(
                "SELECT DISTINCT t.id, t.label, t.kind FROM targets t
                 JOIN session_targets st ON st.target_id = t.id ORDER BY t.id",
            )
            .map_err(&err)?;
        let mut out = Vec::new();
        let ids: Vec<i64> = sessions.to_vec();
        let rows = st
            .query_map([], |r| {
                Ok(TargetRow {
                    id: r.get(0)?,
                    label: r.get(1)?,
                    kind: r.get(2)?,
                })
            })
            .map_err(&err)?;
        for row in rows {
            let row = row.map_err(&err)?;
            if ids.is_empty() || self.target_in_sessions(row.id, &ids)? {
                out.push(row);
            }
        }
        Ok(out)
    }

    fn target_in_sessions(&self, target: i64, sessions: &[i64]) -> Result<bool, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT 1 FROM session_targets WHERE target_id = ?1 AND session_id = ?2",
            )
            .map_err(self.sql_err("list targets"))?;
        for s in sessions {
            if st
                .exists(params![target, s])
                .map_err(self.sql_err("list targets"))?
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Rollups of `res` with `from ≤ ts < to` (unix s), optionally of one session and one target,
    /// ordered by target and time.
    pub fn rollups(
        &self,
        res: Resolution,
        from: i64,
        to: i64,
        session: Option<i64>,
        target: Option<&str>,
    ) -> Result<Vec<RollupRecord>, StoreError> {
        let err = self.sql_err("read rollups");
        let sql = format!(
            "SELECT p.session_id, t.label, {ROLLUP_COLUMNS}
             FROM {} p JOIN targets t ON t.id = p.target_id
             WHERE p.ts >= ?1 AND p.ts < ?2 AND (?3 IS NULL OR p.session_id = ?3)
                   AND (?4 IS NULL OR t.label = ?4)
             ORDER BY t.id, p.ts, p.session_id",
            table(res)
        );
        let mut st = self.conn.prepare(&sql).map_err(&err)?;
        let rows = st
            .query_map(params![from, to, session, target], |r| {
                Ok(RollupRecord {
                    session_id: r.get(0)?,
                    target: r.get(1)?,
                    ts: r.get(2)?,
                    stats: read_stats(r, 3)?,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Rollups of `res` covering `[from_ms, to_ms]` (from the bucket holding `from_ms`), one
    /// row per target and bucket: rows of overlapping sessions (two recordings at once) are
    /// merged, as a report shows them.
    pub fn merged_rollups(
        &self,
        res: Resolution,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        target: Option<&str>,
    ) -> Result<Vec<RollupRecord>, StoreError> {
        let from = res.bucket(from_ms.div_euclid(1000));
        let to = to_ms.div_euclid(1000) + 1;
        let rows = self.rollups(res, from, to, session, target)?;
        let mut merged: Vec<RollupRecord> = Vec::with_capacity(rows.len());
        for r in rows {
            match merged.last_mut() {
                Some(last) if last.target == r.target && last.ts == r.ts => {
                    last.stats.merge(&r.stats)
                }
                _ => merged.push(r),
            }
        }
        Ok(merged)
    }

    /// Per-target totals over `[from_ms, to_ms]` from the resolution that has the most of them:
    /// coarser rows outlive pruned seconds, finer rows hold the last seconds before a minute
    /// closed. Returns that resolution too (a report says which it used).
    pub fn totals(
        &self,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        target: Option<&str>,
    ) -> Result<(Resolution, std::collections::BTreeMap<String, ProbeStats>), StoreError> {
        let mut best: Option<(
            u64,
            Resolution,
            std::collections::BTreeMap<String, ProbeStats>,
        )> = None;
        for res in Resolution::ALL {
            let mut per: std::collections::BTreeMap<String, ProbeStats> = Default::default();
            for r in self.merged_rollups(res, from_ms, to_ms, session, target)? {
                per.entry(r.target).or_default().merge(&r.stats);
            }
            let sent: u64 = per.values().map(|s| s.sent).sum();
            if best.as_ref().is_none_or(|(b, _, _)| sent > *b) {
                best = Some((sent, res, per));
            }
        }
        let (_, res, per) = best.unwrap_or((0, Resolution::Second, Default::default()));
        Ok((res, per))
    }

    /// Outages starting in `[from_ms, to_ms)`, optionally of one session and one target.
    pub fn outages(
        &self,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
        target: Option<&str>,
    ) -> Result<Vec<OutageRecord>, StoreError> {
        let err = self.sql_err("read outages");
        let mut st = self
            .conn
            .prepare(
                "SELECT o.session_id, t.label, o.start_ms, o.end_ms, o.sent, o.received, o.ongoing
                 FROM outages o JOIN targets t ON t.id = o.target_id
                 WHERE o.start_ms >= ?1 AND o.start_ms < ?2 AND (?3 IS NULL OR o.session_id = ?3)
                       AND (?4 IS NULL OR t.label = ?4)
                 ORDER BY o.start_ms",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![from_ms, to_ms, session, target], |r| {
                Ok(OutageRecord {
                    session_id: r.get(0)?,
                    target: r.get(1)?,
                    start_ms: r.get(2)?,
                    end_ms: r.get(3)?,
                    sent: r.get(4)?,
                    received: r.get(5)?,
                    ongoing: r.get::<_, i64>(6)? != 0,
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Stretches of time the database could not be written, overlapping `[from_ms, to_ms)`,
    /// optionally of one session.
    pub fn gaps(
        &self,
        from_ms: i64,
        to_ms: i64,
        session: Option<i64>,
    ) -> Result<Vec<GapRecord>, StoreError> {
        let err = self.sql_err("read recording gaps");
        let mut st = self
            .conn
            .prepare(
                "SELECT session_id, start_ms, end_ms, error, rows_lost, lost_from_ms, lost_to_ms
                 FROM recording_gaps WHERE end_ms >= ?1 AND start_ms < ?2
                       AND (?3 IS NULL OR session_id = ?3) ORDER BY start_ms",
            )
            .map_err(&err)?;
        let rows = st
            .query_map(params![from_ms, to_ms, session], |r| {
                let lost_from: Option<i64> = r.get(5)?;
                let lost_to: Option<i64> = r.get(6)?;
                Ok(GapRecord {
                    session_id: r.get(0)?,
                    start_ms: r.get(1)?,
                    end_ms: r.get(2)?,
                    error: r.get(3)?,
                    rows_lost: r.get(4)?,
                    lost: lost_from.zip(lost_to),
                })
            })
            .map_err(&err)?;
        rows.collect::<Result<_, _>>().map_err(err)
    }

    /// Rows in a table (for tests and the benchmark).
    pub fn count_rows(&self, res: Resolution) -> Result<i64, StoreError> {
        self.conn
            .query_row(&format!("SELECT count(*) FROM {}", table(res)), [], |r| {
                r.get(0)
            })
            .map_err(self.sql_err("count rows"))
    }
}

/// The columns of a rollup row that [`read_stats`] reads, after `p.ts`.
pub(crate) const ROLLUP_COLUMNS: &str =
    "p.ts, p.sent, p.received, p.refused, p.timeouts, p.icmp_errors,
    p.local_errors, p.rtt_count, p.rtt_sum_ns, p.rtt_sum_sq_ns2, p.rtt_min_ms, p.rtt_max_ms,
    p.jitter_ms, p.jitter_sum_abs_ns, p.jitter_deltas, p.hist, p.late_sends, p.max_send_delay_ms";

/// The statistics of a row selected with [`ROLLUP_COLUMNS`] whose `p.sent` is column `at`.
pub(crate) fn read_stats(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<ProbeStats> {
    let hist: Vec<u8> = r.get(at + 14)?;
    let hist = LatencySketch::from_bytes(&hist).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(at + 14, rusqlite::types::Type::Blob, Box::new(e))
    })?;
    let ms_to = |v: Option<f64>| Duration::from_secs_f64(v.unwrap_or(0.0).max(0.0) / 1000.0);
    let rtt = RttStats::from_parts(RttParts {
        count: r.get::<_, i64>(at + 6)? as u64,
        sum_ns: r.get::<_, i64>(at + 7)?.max(0) as u128,
        sum_sq_ns: r.get::<_, f64>(at + 8)?.max(0.0) as u128,
        min: ms_to(r.get(at + 9)?),
        max: ms_to(r.get(at + 10)?),
        hist,
    });
    let jitter_ms: Option<f64> = r.get(at + 11)?;
    Ok(ProbeStats {
        sent: r.get::<_, i64>(at)? as u64,
        received: r.get::<_, i64>(at + 1)? as u64,
        refused: r.get::<_, i64>(at + 2)? as u64,
        timeouts: r.get::<_, i64>(at + 3)? as u64,
        icmp_errors: r.get::<_, i64>(at + 4)? as u64,
        local_errors: r.get::<_, i64>(at + 5)? as u64,
        rtt,
        jitter: Jitter::from_parts(
            jitter_ms.unwrap_or(0.0) * 1e6,
            r.get(at + 12)?,
            r.get::<_, i64>(at + 13)? as u64,
        ),
        late_sends: r.get::<_, i64>(at + 15)?.max(0) as u64,
        max_send_delay: ms_to(r.get(at + 16)?),
    })
}

/// Marks a row written provisionally, whose figures did not change since, as final: one
/// integer column by primary key instead of rewriting every figure. False when there is no
/// such row (its provisional write was in a commit that failed): the caller writes it whole.
pub(crate) fn mark_complete(
    tx: &Transaction<'_>,
    res: Resolution,
    session: i64,
    target: i64,
    ts: i64,
) -> rusqlite::Result<bool> {
    let sql = match res {
        Resolution::Second => {
            "UPDATE probe_1s SET complete = 1 WHERE target_id = ?1 AND ts = ?2 AND session_id = ?3"
        }
        Resolution::Minute => {
            "UPDATE probe_1m SET complete = 1 WHERE target_id = ?1 AND ts = ?2 AND session_id = ?3"
        }
        Resolution::Hour => {
            "UPDATE probe_1h SET complete = 1 WHERE target_id = ?1 AND ts = ?2 AND session_id = ?3"
        }
    };
    Ok(tx
        .prepare_cached(sql)?
        .execute(params![target, ts, session])?
        == 1)
}

/// Adds a complete minute (`part`, starting at unix second `minute`) into its stored hour,
/// inside a write transaction; the hour stays provisional until its series marks it closed.
/// Figures survive the round trip exactly (durations as ms: checked for every ns up to 100 s),
/// so an hour read back and written 60 times is the merge of its minutes.
pub(crate) fn add_to_hour(
    tx: &Transaction<'_>,
    session: i64,
    target: i64,
    minute: i64,
    part: &ProbeStats,
) -> rusqlite::Result<()> {
    let hour = Resolution::Hour.bucket(minute);
    let sql = format!(
        "SELECT {} FROM probe_1h p WHERE p.session_id = ?1 AND p.target_id = ?2 AND p.ts = ?3",
        &ROLLUP_COLUMNS["p.ts, ".len()..]
    );
    let stored = tx
        .prepare_cached(&sql)?
        .query_row(params![session, target, hour], |r| read_stats(r, 0))
        .optional()?;
    let mut total = stored.unwrap_or_default();
    total.merge(part);
    put_rollup(tx, Resolution::Hour, session, target, hour, &total, false)
}

/// Upserts one rollup row inside a write transaction.
pub(crate) fn put_rollup(
    tx: &Transaction<'_>,
    res: Resolution,
    session: i64,
    target: i64,
    ts: i64,
    s: &ProbeStats,
    complete: bool,
) -> rusqlite::Result<()> {
    let sql = format!(
        "INSERT INTO {} (session_id, target_id, ts, sent, received, refused, timeouts, icmp_errors,
            local_errors, loss, rtt_count, rtt_sum_ns, rtt_sum_sq_ns2, rtt_min_ms, rtt_avg_ms,
            rtt_max_ms, rtt_mdev_ms, rtt_p50_ms, rtt_p95_ms, rtt_p99_ms, jitter_ms,
            jitter_sum_abs_ns, jitter_deltas, hist, complete, late_sends, max_send_delay_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
                 ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)
         ON CONFLICT (target_id, ts, session_id) DO UPDATE SET
            sent = excluded.sent, received = excluded.received, refused = excluded.refused,
            timeouts = excluded.timeouts, icmp_errors = excluded.icmp_errors,
            local_errors = excluded.local_errors, loss = excluded.loss,
            rtt_count = excluded.rtt_count, rtt_sum_ns = excluded.rtt_sum_ns,
            rtt_sum_sq_ns2 = excluded.rtt_sum_sq_ns2, rtt_min_ms = excluded.rtt_min_ms,
            rtt_avg_ms = excluded.rtt_avg_ms, rtt_max_ms = excluded.rtt_max_ms,
            rtt_mdev_ms = excluded.rtt_mdev_ms, rtt_p50_ms = excluded.rtt_p50_ms,
            rtt_p95_ms = excluded.rtt_p95_ms, rtt_p99_ms = excluded.rtt_p99_ms,
            jitter_ms = excluded.jitter_ms, jitter_sum_abs_ns = excluded.jitter_sum_abs_ns,
            jitter_deltas = excluded.jitter_deltas, hist = excluded.hist,
            complete = excluded.complete, late_sends = excluded.late_sends,
            max_send_delay_ms = excluded.max_send_delay_ms",
        table(res)
    );
    let p = s.rtt.parts();
    let sum = s.rtt.summary();
    let (est, sum_abs, deltas) = s.jitter.parts();
    let opt = |f: fn(&netpulse_core::stats::RttSummary) -> Duration| sum.as_ref().map(|x| ms(f(x)));
    let mut st = tx.prepare_cached(&sql)?;
    st.execute(params![
        session,
        target,
        ts,
        s.sent as i64,
        s.received as i64,
        s.refused as i64,
        s.timeouts as i64,
        s.icmp_errors as i64,
        s.local_errors as i64,
        s.loss(),
        p.count as i64,
        i64::try_from(p.sum_ns).unwrap_or(i64::MAX),
        p.sum_sq_ns as f64,
        opt(|x| x.min),
        opt(|x| x.avg),
        opt(|x| x.max),
        opt(|x| x.mdev),
        opt(|x| x.median),
        opt(|x| x.p95),
        opt(|x| x.p99),
        (deltas > 0).then_some(est / 1e6),
        sum_abs,
        deltas as i64,
        p.hist.to_bytes(),
        complete,
        s.late_sends as i64,
        ms(s.max_send_delay),
    ])?;
    Ok(())
}

/// Inserts one outage inside a write transaction.
pub(crate) fn put_outage(
    tx: &Transaction<'_>,
    session: i64,
    target: i64,
    o: &Outage,
) -> rusqlite::Result<()> {
    let mut st = tx.prepare_cached(
        "INSERT INTO outages (session_id, target_id, start_ms, end_ms, duration_ms, sent, received, loss, ongoing)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    st.execute(params![
        session,
        target,
        unix_ms(o.start),
        unix_ms(o.end),
        o.duration().as_millis() as i64,
        o.sent as i64,
        o.received as i64,
        o.loss(),
        o.ongoing,
    ])?;
    Ok(())
}
