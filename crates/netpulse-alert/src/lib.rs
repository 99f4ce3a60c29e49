//! netpulse's alert delivery. Each notifier runs on its own worker thread behind a bounded
//! queue, so a slow or dead receiver never delays monitoring; every attempt's outcome comes back
//! on a channel for the caller to record. Retries back off 1 s, 2 s, 4 s …

mod notifiers;

pub use notifiers::{
    ConsoleNotifier, EmailNotifier, EmailSecurity, EmailSecurityParseError, ExecNotifier,
    WebhookNotifier,
};

use netpulse_core::alert::AlertEvent;
use netpulse_core::clock::{Clock, SystemClock};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// An alert to deliver: the event, an id for matching delivery results, and the host it is from.
#[derive(Debug, Clone)]
pub struct Alert {
    /// Caller's id.
    pub id: u64,
    /// What happened.
    pub event: AlertEvent,
    /// The machine netpulse runs on.
    pub host: String,
    /// The path to the subject, traced when the alert fired: set on the follow-up notice
    /// that carries it (status `trace`), sent once the trace is done.
    pub trace: Option<Arc<PathTrace>>,
}

/// A path traced for an alert: the table people read and the JSON webhooks receive.
#[derive(Debug, Clone, PartialEq)]
pub struct PathTrace {
    /// mtr's table.
    pub text: String,
    /// `{target, address, reached, hops: [...], path_changes}`.
    pub json: Value,
}

impl Alert {
    /// The JSON body webhooks receive (documented in the README).
    pub fn to_json(&self) -> Value {
        let e = &self.event;
        let time = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
        let mut v = json!({
            "version": 1,
            "status": if self.trace.is_some() { "trace" } else { e.kind.name() },
            "rule": e.rule,
            "subject": e.subject,
            "metric": e.metric.name(),
            "value": e.value,
            "op": e.op.symbol(),
            "threshold": e.threshold,
            "severity": e.severity.name(),
            "at": time(e.at),
            "since": time(e.since),
            "host": self.host,
            "summary": e.to_string(),
        });
        if let Some(t) = &self.trace {
            v["trace"] = t.json.clone();
        }
        v
    }

    /// What the notice says in words: the event, or for a trace the path under it.
    pub fn text(&self) -> String {
        match &self.trace {
            Some(t) => format!(
                "TRACE {} {}: the path when it fired\n{}",
                self.event.rule, self.event.subject, t.text
            ),
            None => self.event.to_string(),
        }
    }
}

/// One way of delivering alerts.
pub trait Notifier: Send {
    /// Its name (as rules refer to it).
    fn name(&self) -> &str;
    /// Attempts after the first failure.
    fn retries(&self) -> u32;
    /// Delivers once: `Ok(detail)` or `Err(reason)`.
    fn deliver(&mut self, alert: &Alert) -> Result<String, String>;
}

/// The outcome of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The alert's id.
    pub alert_id: u64,
    /// Notifier name.
    pub notifier: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Delivered.
    pub ok: bool,
    /// What the receiver said, or why it failed.
    pub detail: String,
    /// When the attempt ended.
    pub at: SystemTime,
    /// No further attempt follows.
    pub last: bool,
}

struct Worker {
    name: String,
    tx: SyncSender<Arc<Alert>>,
    /// `Err`: its thread could not be started (why), so every alert for it is a failed
    /// delivery, recorded, not one waiting forever.
    handle: Result<JoinHandle<()>, String>,
}

/// Alerts waiting per notifier before new ones are refused (and reported as failed).
const QUEUE: usize = 256;

/// The wait between delivery attempts: `first`, doubling each time, at most `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Before the second attempt.
    pub first: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s … at most 60 s.
    fn default() -> Self {
        Backoff {
            first: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The wait after failed attempt `attempt` (1-based).
    pub fn after(&self, attempt: u32) -> Duration {
        let doubled = self
            .first
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
        doubled.min(self.max)
    }
}

/// Delivers alerts through a set of notifiers, each on its own thread.
pub struct Dispatcher {
    workers: Vec<Worker>,
    results: Sender<Delivery>,
    stop: Arc<AtomicBool>,
    clock: SharedClock,
}

/// The clock the dispatcher stamps deliveries with and times its retries on.
pub type SharedClock = Arc<dyn Clock + Send + Sync>;

impl Dispatcher {
    /// Starts one worker per notifier; results of every attempt go to `results`.
    pub fn start(notifiers: Vec<Box<dyn Notifier>>, results: Sender<Delivery>) -> Dispatcher {
        Dispatcher::start_with(notifiers, results, Backoff::default())
    }

    /// [`Dispatcher::start`] with another wait between attempts (tests need no real seconds).
    pub fn start_with(
        notifiers: Vec<Box<dyn Notifier>>,
        results: Sender<Delivery>,
        backoff: Backoff,
    ) -> Dispatcher {
        Dispatcher::start_with_clock(
            notifiers,
            results,
            backoff,
            Arc::new(SystemClock::default()),
        )
    }

    /// [`Dispatcher::start_with`] on `clock`: deliveries are stamped with its wall time and the
    /// waits between attempts run on its monotonic time (a fake clock in tests).
    pub fn start_with_clock(
        notifiers: Vec<Box<dyn Notifier>>,
        results: Sender<Delivery>,
        backoff: Backoff,
        clock: SharedClock,
    ) -> Dispatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let workers = notifiers
            .into_iter()
            .map(|n| {
                let (tx, rx) = mpsc::sync_channel(QUEUE);
                let name = n.name().to_string();
                let (results, stop) = (results.clone(), Arc::clone(&stop));
                let clock = Arc::clone(&clock);
                let handle = std::thread::Builder::new()
                    .name(format!("notify-{name}"))
                    .spawn(move || work(n, rx, results, stop, backoff, clock))
                    .map_err(|e| {
                        let why = format!("cannot start its thread: {e}");
                        eprintln!("netpulse: notifier {name} is not running: {why}");
                        why
                    });
                Worker { name, tx, handle }
            })
            .collect();
        Dispatcher {
            workers,
            results,
            stop,
            clock,
        }
    }

    /// Names of the notifiers.
    pub fn names(&self) -> Vec<String> {
        self.workers.iter().map(|w| w.name.clone()).collect()
    }

    /// Queues `alert` for the named notifiers (all when `to` is empty); never blocks.
    pub fn send(&self, alert: Alert, to: &[String]) {
        let alert = Arc::new(alert);
        for w in self
            .workers
            .iter()
            .filter(|w| to.is_empty() || to.contains(&w.name))
        {
            let refused = match &w.handle {
                Err(why) => Some(format!("not sent: the notifier {why}")),
                Ok(_) => match w.tx.try_send(Arc::clone(&alert)) {
                    Ok(()) => None,
                    Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                        Some("not queued: the notifier is too far behind".into())
                    }
                },
            };
            if let Some(detail) = refused {
                let _ = self.results.send(Delivery {
                    alert_id: alert.id,
                    notifier: w.name.clone(),
                    attempt: 0,
                    ok: false,
                    detail,
                    at: self.clock.wall(),
                    last: true,
                });
            }
        }
    }

    /// Lets queued deliveries finish for up to `grace`, then abandons retries and waits for the
    /// attempts in progress.
    pub fn shutdown(self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let Dispatcher { workers, stop, .. } = self;
        let handles: Vec<JoinHandle<()>> = workers
            .into_iter()
            .filter_map(|w| {
                drop(w.tx);
                w.handle.ok()
            })
            .collect();
        while handles.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
    }
}

fn work(
    mut n: Box<dyn Notifier>,
    rx: Receiver<Arc<Alert>>,
    results: Sender<Delivery>,
    stop: Arc<AtomicBool>,
    backoff: Backoff,
    clock: SharedClock,
) {
    while let Ok(alert) = rx.recv() {
        let attempts = n.retries() + 1;
        for attempt in 1..=attempts {
            let outcome = n.deliver(&alert);
            // The wait runs from the attempt, read before it is reported: whoever hears of the
            // attempt and moves the clock on must find the wait already counting.
            let until = clock.monotonic().saturating_add(backoff.after(attempt));
            let ok = outcome.is_ok();
            let last = ok || attempt == attempts || stop.load(Ordering::Relaxed);
            let _ = results.send(Delivery {
                alert_id: alert.id,
                notifier: n.name().to_string(),
                attempt,
                ok,
                detail: outcome.unwrap_or_else(|e| e),
                at: clock.wall(),
                last,
            });
            if last {
                break;
            }
            // On the dispatcher's clock; cut short by shutdown (looked at every 50 ms at most).
            loop {
                let now = clock.monotonic();
                if now >= until || stop.load(Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50).min(until - now));
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_most() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=8).map(|a| b.after(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(b.after(u32::MAX), Duration::from_secs(60));
    }
}
