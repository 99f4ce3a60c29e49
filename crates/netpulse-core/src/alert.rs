//! Threshold alert rules, evaluated like Prometheus rules: a rule fires once its condition has
//! held for its `for` duration, sends one notice, optionally reminders, and a "resolved" notice
//! when the value clears the threshold by the hysteresis margin (so a value hovering at the
//! threshold does not flap). Time is passed in; nothing here reads a clock.

use std::collections::HashMap;
use std::fmt;
use std::time::{Duration, SystemTime};

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Mean RTT over the window, ms.
    LatencyAvg,
    /// 95th percentile RTT over the window, ms.
    LatencyP95,
    /// Fraction of probes lost over the window (0–1).
    Loss,
    /// RFC 3550 jitter, ms.
    Jitter,
    /// 1 while the target is in an outage, else 0.
    Outage,
    /// Receive rate over the window, bytes/s.
    RxRate,
    /// Send rate over the window, bytes/s.
    TxRate,
    /// Errors (both directions) per second over the window.
    ErrorsRate,
    /// An HTTP(S) target's last status code.
    HttpStatus,
    /// Days until the earliest expiry in an HTTPS target's certificate chain (last seen).
    CertExpiryDays,
}

impl Metric {
    /// Every metric, in documentation order.
    pub const ALL: [Metric; 10] = [
        Metric::LatencyAvg,
        Metric::LatencyP95,
        Metric::Loss,
        Metric::Jitter,
        Metric::Outage,
        Metric::RxRate,
        Metric::TxRate,
        Metric::ErrorsRate,
        Metric::HttpStatus,
        Metric::CertExpiryDays,
    ];

    /// The name used in configs and notices.
    pub fn name(self) -> &'static str {
        match self {
            Metric::LatencyAvg => "latency_avg",
            Metric::LatencyP95 => "latency_p95",
            Metric::Loss => "loss",
            Metric::Jitter => "jitter",
            Metric::Outage => "outage",
            Metric::RxRate => "rx_rate",
            Metric::TxRate => "tx_rate",
            Metric::ErrorsRate => "errors_rate",
            Metric::HttpStatus => "http_status",
            Metric::CertExpiryDays => "cert_expiry_days",
        }
    }

    /// Parses a metric name.
    pub fn parse(text: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == text)
    }

    /// True for metrics of interfaces (the others are of probe targets).
    pub fn is_interface(self) -> bool {
        matches!(self, Metric::RxRate | Metric::TxRate | Metric::ErrorsRate)
    }

    /// The unit values are in, for notices.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::LatencyAvg | Metric::LatencyP95 | Metric::Jitter => "ms",
            Metric::Loss => "",
            Metric::Outage | Metric::HttpStatus => "",
            Metric::RxRate | Metric::TxRate => "B/s",
            Metric::ErrorsRate => "/s",
            Metric::CertExpiryDays => " days",
        }
    }
}

/// How the value is compared with the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparator {
    /// `>`
    Above,
    /// `>=`
    AtLeast,
    /// `<`
    Below,
    /// `<=`
    AtMost,
}

impl Comparator {
    /// Parses `>`, `>=`, `<`, `<=`.
    pub fn parse(text: &str) -> Option<Comparator> {
        match text {
            ">" => Some(Comparator::Above),
            ">=" => Some(Comparator::AtLeast),
            "<" => Some(Comparator::Below),
            "<=" => Some(Comparator::AtMost),
            _ => None,
        }
    }

    /// The symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            Comparator::Above => ">",
            Comparator::AtLeast => ">=",
            Comparator::Below => "<",
            Comparator::AtMost => "<=",
        }
    }

    fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparator::Above => value > threshold,
            Comparator::AtLeast => value >= threshold,
            Comparator::Below => value < threshold,
            Comparator::AtMost => value <= threshold,
        }
    }

    /// True when `value` is clear of the threshold by `margin` on the healthy side.
    fn cleared(self, value: f64, threshold: f64, margin: f64) -> bool {
        match self {
            Comparator::Above | Comparator::AtLeast => value < threshold - margin,
            Comparator::Below | Comparator::AtMost => value > threshold + margin,
        }
    }
}

/// How bad a firing rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// For information.
    Info,
    /// Needs a look.
    Warning,
    /// Needs action now.
    Critical,
}

impl Severity {
    /// Parses `info`, `warning`, `critical`.
    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "critical" | "crit" => Some(Severity::Critical),
            _ => None,
        }
    }

    /// The name.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Name, unique in the config.
    pub name: String,
    /// The series watched.
    pub metric: Metric,
    /// Comparison.
    pub op: Comparator,
    /// Threshold, in the metric's unit.
    pub threshold: f64,
    /// How long the condition must hold before the rule fires.
    pub hold: Duration,
    /// Fraction of the threshold the value must clear it by to resolve (0.1 = 10 %).
    pub hysteresis: f64,
    /// Reminder interval while firing (`None`: no reminders).
    pub repeat: Option<Duration>,
    /// Targets / interfaces the rule applies to (empty: all of the metric's kind).
    pub subjects: Vec<String>,
    /// Severity.
    pub severity: Severity,
}

impl Rule {
    /// True if the rule watches `subject`.
    pub fn applies_to(&self, subject: &str) -> bool {
        self.subjects.is_empty() || self.subjects.iter().any(|s| s == subject)
    }

    fn margin(&self) -> f64 {
        (self.threshold.abs() * self.hysteresis).max(0.0)
    }
}

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKind {
    /// The condition held for the rule's duration.
    Fired,
    /// Still firing (a reminder).
    Reminder,
    /// The value cleared the threshold.
    Resolved,
}

impl AlertKind {
    /// `firing`, `reminder`, `resolved`.
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::Fired => "firing",
            AlertKind::Reminder => "reminder",
            AlertKind::Resolved => "resolved",
        }
    }
}

/// A notice to deliver.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertEvent {
    /// The rule's name.
    pub rule: String,
    /// Target label or interface name.
    pub subject: String,
    /// The metric.
    pub metric: Metric,
    /// Fired, reminder, resolved.
    pub kind: AlertKind,
    /// The value that caused it.
    pub value: f64,
    /// The comparison.
    pub op: Comparator,
    /// The threshold.
    pub threshold: f64,
    /// Severity.
    pub severity: Severity,
    /// When this happened.
    pub at: SystemTime,
    /// When the condition started holding (for resolved: how long it lasted).
    pub since: SystemTime,
    /// Resolved because the subject is no longer monitored (removed by a reload, or an
    /// interface that vanished); `value` is then its last reading.
    pub gone: bool,
}

impl fmt::Display for AlertEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = self.metric.unit();
        // Rates as the status line and the TUI write them (`1.98 MiB/s`), not in raw bytes.
        let value = |v: f64| match self.metric {
            Metric::Loss => format!("{:.1} %", v * 100.0),
            Metric::RxRate | Metric::TxRate => crate::units::Units::default().rate(Some(v)),
            _ if unit.is_empty() => format!("{v}"),
            _ => format!("{v:.2} {unit}"),
        };
        let lasted = self.at.duration_since(self.since).unwrap_or_default();
        match self.kind {
            AlertKind::Resolved if self.gone => write!(
                f,
                "RESOLVED {} {}: no longer monitored (last {} {}) (after {}s)",
                self.rule,
                self.subject,
                self.metric.name(),
                value(self.value),
                lasted.as_secs()
            ),
            AlertKind::Resolved => write!(
                f,
                "RESOLVED {} {}: {} {} (after {}s)",
                self.rule,
                self.subject,
                self.metric.name(),
                value(self.value),
                lasted.as_secs()
            ),
            kind => write!(
                f,
                "{} [{}] {} {}: {} {} {} {} (for {}s)",
                if kind == AlertKind::Fired {
                    "ALERT"
                } else {
                    "STILL"
                },
                self.severity.name(),
                self.rule,
                self.subject,
                self.metric.name(),
                value(self.value),
                self.op.symbol(),
                value(self.threshold),
                lasted.as_secs()
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum State {
    Pending {
        since_mono: Duration,
        since_wall: SystemTime,
    },
    Firing {
        since_wall: SystemTime,
        last_notice: Duration,
        /// The latest value judged (what a resolve without a new reading reports).
        last_value: f64,
    },
}

/// The state of every rule × subject.
#[derive(Debug, Default)]
pub struct RuleEngine {
    rules: Vec<Rule>,
    states: HashMap<(String, String), State>,
}

impl RuleEngine {
    /// An engine for `rules`.
    pub fn new(rules: Vec<Rule>) -> Self {
        Self {
            rules,
            states: HashMap::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Replaces the rules (config reload): states of rules that kept their name and definition
    /// carry over, so a reload neither re-fires nor forgets a firing alert.
    pub fn replace_rules(&mut self, rules: Vec<Rule>) {
        let keep: Vec<String> = rules
            .iter()
            .filter(|r| self.rules.iter().any(|old| old == *r))
            .map(|r| r.name.clone())
            .collect();
        self.states.retain(|(rule, _), _| keep.contains(rule));
        self.rules = rules;
    }

    /// Names of (rule, subject) pairs firing now.
    pub fn firing(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .states
            .iter()
            .filter(|(_, s)| matches!(s, State::Firing { .. }))
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    /// Takes the current value of `metric` for `subject` for every rule on that metric. Only
    /// right when all those rules share one window; otherwise use [`RuleEngine::observe_rule`].
    pub fn observe(
        &mut self,
        metric: Metric,
        subject: &str,
        value: Option<f64>,
        now: Duration,
        wall: SystemTime,
        out: &mut Vec<AlertEvent>,
    ) {
        for i in 0..self.rules.len() {
            if self.rules[i].metric == metric {
                self.observe_rule(i, subject, value, now, wall, out);
            }
        }
    }

    /// True if any rule is pending or firing for `subject`.
    pub fn has_subject(&self, subject: &str) -> bool {
        self.states.keys().any(|(_, s)| s == subject)
    }

    /// Forgets every state of `subject` (a target or interface that is gone); each alert that
    /// was firing for it is resolved (`gone`, with its last value), so no alert, gauge or
    /// notification stays firing forever.
    pub fn forget_subject(&mut self, subject: &str, wall: SystemTime, out: &mut Vec<AlertEvent>) {
        let mut resolved: Vec<AlertEvent> = Vec::new();
        let rules = &self.rules;
        self.states.retain(|(rule, s), state| {
            if s != subject {
                return true;
            }
            if let (
                State::Firing {
                    since_wall,
                    last_value,
                    ..
                },
                Some(r),
            ) = (state, rules.iter().find(|r| r.name == *rule))
            {
                resolved.push(AlertEvent {
                    rule: r.name.clone(),
                    subject: subject.to_string(),
                    metric: r.metric,
                    kind: AlertKind::Resolved,
                    value: *last_value,
                    op: r.op,
                    threshold: r.threshold,
                    severity: r.severity,
                    at: wall,
                    since: *since_wall,
                    gone: true,
                });
            }
            false
        });
        resolved.sort_by(|a, b| a.rule.cmp(&b.rule));
        out.extend(resolved);
    }

    /// Takes rule `index`'s current value for `subject` (`None`: no data this time, which
    /// neither advances nor clears it) at monotonic time `now` / wall time `wall`.
    pub fn observe_rule(
        &mut self,
        index: usize,
        subject: &str,
        value: Option<f64>,
        now: Duration,
        wall: SystemTime,
        out: &mut Vec<AlertEvent>,
    ) {
        let Some(value) = value.filter(|v| v.is_finite()) else {
            return;
        };
        let Some(rule) = self.rules.get(index).filter(|r| r.applies_to(subject)) else {
            return;
        };
        let metric = rule.metric;
        {
            let key = (rule.name.clone(), subject.to_string());
            let event = |kind, since| AlertEvent {
                rule: rule.name.clone(),
                subject: subject.to_string(),
                metric,
                kind,
                value,
                op: rule.op,
                threshold: rule.threshold,
                severity: rule.severity,
                at: wall,
                since,
                gone: false,
            };
            let holds = rule.op.holds(value, rule.threshold);
            match self.states.get(&key).copied() {
                None if holds => {
                    if rule.hold.is_zero() {
                        out.push(event(AlertKind::Fired, wall));
                        self.states.insert(
                            key,
                            State::Firing {
                                since_wall: wall,
                                last_notice: now,
                                last_value: value,
                            },
                        );
                    } else {
                        self.states.insert(
                            key,
                            State::Pending {
                                since_mono: now,
                                since_wall: wall,
                            },
                        );
                    }
                }
                None => {}
                Some(State::Pending {
                    since_mono,
                    since_wall,
                }) => {
                    if !holds {
                        // Pending needs the condition to hold without a break.
                        self.states.remove(&key);
                    } else if now.saturating_sub(since_mono) >= rule.hold {
                        out.push(event(AlertKind::Fired, since_wall));
                        self.states.insert(
                            key,
                            State::Firing {
                                since_wall,
                                last_notice: now,
                                last_value: value,
                            },
                        );
                    }
                }
                Some(State::Firing {
                    since_wall,
                    last_notice,
                    ..
                }) => {
                    if rule.op.cleared(value, rule.threshold, rule.margin()) {
                        out.push(event(AlertKind::Resolved, since_wall));
                        self.states.remove(&key);
                    } else {
                        let notice = rule
                            .repeat
                            .is_some_and(|every| now.saturating_sub(last_notice) >= every);
                        if notice {
                            out.push(event(AlertKind::Reminder, since_wall));
                        }
                        self.states.insert(
                            key,
                            State::Firing {
                                since_wall,
                                last_notice: if notice { now } else { last_notice },
                                last_value: value,
                            },
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn rule(hold_s: u64, repeat_s: Option<u64>) -> Rule {
        Rule {
            name: "slow".into(),
            metric: Metric::LatencyAvg,
            op: Comparator::Above,
            threshold: 100.0,
            hold: Duration::from_secs(hold_s),
            hysteresis: 0.1,
            repeat: repeat_s.map(Duration::from_secs),
            subjects: vec![],
            severity: Severity::Warning,
        }
    }

    /// Feeds one value per second starting at second `from`; returns (second, kind) of events.
    fn run(engine: &mut RuleEngine, from: u64, values: &[f64]) -> Vec<(u64, AlertKind)> {
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for (i, v) in values.iter().enumerate() {
            let t = from + i as u64;
            out.clear();
            engine.observe(
                Metric::LatencyAvg,
                "10.0.0.1",
                Some(*v),
                Duration::from_secs(t),
                UNIX_EPOCH + Duration::from_secs(t),
                &mut out,
            );
            seen.extend(out.iter().map(|e| (t, e.kind)));
        }
        seen
    }

    #[test]
    fn fires_after_the_hold_not_before_and_resolves() {
        let mut e = RuleEngine::new(vec![rule(5, None)]);
        // Above from second 0: fires at second 5 (held 5 s), not at 4.
        let events = run(&mut e, 0, &[150.0; 8]);
        assert_eq!(events, vec![(5, AlertKind::Fired)]);
        assert_eq!(e.firing().len(), 1);
        // Drops well below: resolved once.
        let events = run(&mut e, 8, &[20.0, 20.0, 20.0]);
        assert_eq!(events, vec![(8, AlertKind::Resolved)]);
        assert!(e.firing().is_empty());
    }

    #[test]
    fn a_break_in_the_condition_restarts_the_hold() {
        let mut e = RuleEngine::new(vec![rule(5, None)]);
        let mut values = vec![150.0; 4];
        values.push(50.0);
        values.extend([150.0; 5]);
        let events = run(&mut e, 0, &values);
        assert!(
            events.is_empty(),
            "4 s + break + 4 s never held 5 s: {events:?}"
        );
        let events = run(&mut e, 10, &[150.0]);
        assert_eq!(events, vec![(10, AlertKind::Fired)]);
    }

    #[test]
    fn hovering_at_the_threshold_does_not_flap() {
        let mut e = RuleEngine::new(vec![rule(0, None)]);
        // 101, 99, 101, 95, 104, 91: never below 90 (100 − 10 %), so one alert and no resolve.
        let events = run(&mut e, 0, &[101.0, 99.0, 101.0, 95.0, 104.0, 91.0]);
        assert_eq!(events, vec![(0, AlertKind::Fired)]);
        let events = run(&mut e, 6, &[89.0]);
        assert_eq!(events, vec![(6, AlertKind::Resolved)]);
    }

    #[test]
    fn reminders_repeat_at_their_interval() {
        let mut e = RuleEngine::new(vec![rule(2, Some(10))]);
        let events = run(&mut e, 0, &[200.0; 35]);
        assert_eq!(
            events,
            vec![
                (2, AlertKind::Fired),
                (12, AlertKind::Reminder),
                (22, AlertKind::Reminder),
                (32, AlertKind::Reminder)
            ]
        );
    }

    #[test]
    fn missing_values_neither_advance_nor_clear() {
        let mut e = RuleEngine::new(vec![rule(0, None)]);
        run(&mut e, 0, &[150.0]);
        let mut out = Vec::new();
        e.observe(
            Metric::LatencyAvg,
            "10.0.0.1",
            None,
            Duration::from_secs(1),
            UNIX_EPOCH,
            &mut out,
        );
        assert!(out.is_empty());
        assert_eq!(e.firing().len(), 1);
    }

    #[test]
    fn selectors_metrics_and_below_rules() {
        let mut low = rule(0, None);
        low.name = "slow-link".into();
        low.metric = Metric::RxRate;
        low.op = Comparator::Below;
        low.threshold = 1000.0;
        low.subjects = vec!["eth0".into()];
        let mut e = RuleEngine::new(vec![low]);
        let mut out = Vec::new();
        let t = Duration::ZERO;
        e.observe(Metric::RxRate, "wlan0", Some(10.0), t, UNIX_EPOCH, &mut out);
        assert!(out.is_empty(), "not selected");
        e.observe(Metric::TxRate, "eth0", Some(10.0), t, UNIX_EPOCH, &mut out);
        assert!(out.is_empty(), "other metric");
        e.observe(Metric::RxRate, "eth0", Some(10.0), t, UNIX_EPOCH, &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].kind, AlertKind::Fired);
        out.clear();
        // Resolves above 1 000 + 10 %.
        e.observe(
            Metric::RxRate,
            "eth0",
            Some(1050.0),
            t,
            UNIX_EPOCH,
            &mut out,
        );
        assert!(out.is_empty());
        e.observe(
            Metric::RxRate,
            "eth0",
            Some(1101.0),
            t,
            UNIX_EPOCH,
            &mut out,
        );
        assert_eq!(out[0].kind, AlertKind::Resolved);
    }

    #[test]
    fn reload_keeps_unchanged_rules_firing_and_drops_changed_ones() {
        let mut e = RuleEngine::new(vec![rule(0, None)]);
        run(&mut e, 0, &[150.0]);
        e.replace_rules(vec![rule(0, None)]);
        assert_eq!(
            e.firing().len(),
            1,
            "same rule: still firing, no second alert"
        );
        assert!(run(&mut e, 1, &[150.0]).is_empty());
        let mut changed = rule(0, None);
        changed.threshold = 120.0;
        e.replace_rules(vec![changed]);
        assert!(e.firing().is_empty());
        assert_eq!(run(&mut e, 2, &[150.0]), vec![(2, AlertKind::Fired)]);
    }

    #[test]
    fn notices_read_well() {
        let ev = AlertEvent {
            rule: "lossy".into(),
            subject: "10.77.0.2".into(),
            metric: Metric::Loss,
            kind: AlertKind::Fired,
            value: 0.25,
            op: Comparator::Above,
            threshold: 0.1,
            severity: Severity::Critical,
            at: UNIX_EPOCH + Duration::from_secs(30),
            since: UNIX_EPOCH + Duration::from_secs(20),
            gone: false,
        };
        assert_eq!(
            ev.to_string(),
            "ALERT [critical] lossy 10.77.0.2: loss 25.0 % > 10.0 % (for 10s)"
        );
        // Rates as the status line writes them, value and threshold alike.
        let rate = AlertEvent {
            rule: "busy".into(),
            subject: "eth0".into(),
            metric: Metric::RxRate,
            value: 2_071_439.81,
            threshold: 1_000_000.0,
            severity: Severity::Warning,
            ..ev
        };
        assert_eq!(
            rate.to_string(),
            "ALERT [warning] busy eth0: rx_rate 1.98 MiB/s > 977 KiB/s (for 10s)"
        );
    }
}
