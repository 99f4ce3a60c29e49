//! The monitor's TOML config: every key has a default (see `netpulse.example.toml`), unknown keys
//! are errors, and every error names the file, line, column and key.

use netpulse_core::alert::{Comparator, Metric, Rule, Severity};
use netpulse_core::parse_duration;
use netpulse_core::target::{parse_target, TargetSpec};
use serde::{Deserialize, Serialize};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// The whole config file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Console behaviour.
    pub monitor: MonitorSection,
    /// Probe targets.
    #[serde(rename = "target")]
    pub targets: Vec<TargetSection>,
    /// Interface watching.
    pub ifaces: IfacesSection,
    /// History database.
    pub record: RecordSection,
    /// Alert rules.
    #[serde(rename = "rule")]
    pub rules: Vec<RuleSection>,
    /// Where alerts go.
    #[serde(rename = "notifier")]
    pub notifiers: Vec<NotifierSection>,
    /// Listen addresses of the views (web dashboard, /metrics).
    pub listen: ListenSection,
    /// Live packet capture feeding the views and /metrics.
    pub capture: CaptureSection,
    /// When a target counts as down.
    pub outage: OutageSection,
    /// The path traced when an alert fires.
    pub trace: TraceSection,
}

/// `[trace]`: when a rule on a target's latency, loss, jitter or outage fires, its path is
/// traced (UDP, unprivileged) and the trace is sent after the alert and stored with it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TraceSection {
    /// Trace on alerts at all.
    pub on_alert: bool,
    /// Rounds of a trace.
    pub rounds: u32,
    /// Time between rounds.
    pub interval: Spanned<ConfigDuration>,
    /// At most one trace per target this often.
    pub every: Spanned<ConfigDuration>,
}

impl Default for TraceSection {
    fn default() -> Self {
        Self {
            on_alert: true,
            rounds: 10,
            interval: unspanned_duration("1s"),
            every: unspanned_duration("10m"),
        }
    }
}

/// `[outage]`: the outage detector (see `netpulse_core::outage`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutageSection {
    /// Failed probes in a row that start an outage at a 1 s interval, one more per factor of
    /// ten faster (0: only the window counts).
    pub after: u32,
    /// Sliding window of the loss rule.
    pub window: Spanned<ConfigDuration>,
    /// Loss over the window above which a target is down (a fraction below 1).
    pub loss: Spanned<f64>,
    /// Probes the window must hold before its loss counts.
    pub min_probes: u32,
}

impl Default for OutageSection {
    fn default() -> Self {
        let d = netpulse_core::outage::OutageConfig::default();
        Self {
            after: d.consecutive,
            window: unspanned_duration("1s"),
            loss: Spanned::new(0..0, d.loss_threshold),
            min_probes: d.min_probes,
        }
    }
}

impl OutageSection {
    /// The detector's settings.
    pub fn detector(&self) -> netpulse_core::outage::OutageConfig {
        netpulse_core::outage::OutageConfig {
            window: self.window.get_ref().get(),
            loss_threshold: *self.loss.get_ref(),
            consecutive: self.after,
            min_probes: self.min_probes,
        }
    }
}

/// `[capture]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CaptureSection {
    /// Interface to capture on (empty: no capture). Needs CAP_NET_RAW.
    pub interface: String,
    /// BPF filter in pcap syntax (empty: everything).
    pub filter: String,
}

/// `[monitor]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorSection {
    /// Status line interval (`0s`: none).
    pub status_every: Spanned<ConfigDuration>,
    /// How ICMP is sent: auto, dgram, raw.
    pub icmp_socket: IcmpSocket,
    /// How often a target's name is looked up again once it resolved (its address may change).
    pub resolve_every: Spanned<ConfigDuration>,
}

/// `icmp_socket` in `[monitor]`, typed when the file is read (a wrong word is located there).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum IcmpSocket {
    /// An unprivileged ping socket if allowed, else a raw socket.
    #[default]
    Auto,
    /// Only a ping socket.
    Dgram,
    /// Only a raw socket.
    Raw,
}

impl Default for MonitorSection {
    fn default() -> Self {
        Self {
            status_every: unspanned_duration("10s"),
            icmp_socket: IcmpSocket::Auto,
            resolve_every: unspanned_duration("5m"),
        }
    }
}

/// `[[target]]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// What to probe, as on the command line: HOST, HOST:PORT, tcp://, udp://, dns://.
    pub target: Spanned<String>,
    /// Name in alerts and reports (default: the target).
    #[serde(default)]
    pub label: Option<String>,
    /// Time between probes.
    #[serde(default = "default_interval")]
    pub interval: Spanned<ConfigDuration>,
    /// How long to wait for an answer.
    #[serde(default = "default_interval")]
    pub timeout: Spanned<ConfigDuration>,
    /// ICMP/UDP payload bytes.
    #[serde(default = "default_size")]
    pub size: usize,
    /// HTTP(S): `GET` (default) or `HEAD`.
    #[serde(default)]
    pub method: Option<String>,
    /// HTTP(S): statuses that count as success, `"200-399"` (default), `"200,301-302"`.
    #[serde(default)]
    pub expect_status: Option<Spanned<String>>,
    /// HTTP(S): the body must contain this text.
    #[serde(default)]
    pub body_contains: Option<String>,
    /// HTTP(S): the body must match this regular expression.
    #[serde(default)]
    pub body_regex: Option<Spanned<String>>,
    /// HTTP(S): most body bytes read (default 1 MiB).
    #[serde(default)]
    pub body_cap: Option<u64>,
    /// HTTP(S): extra request headers.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// HTTP(S): Host header and TLS server name instead of the URL's host.
    #[serde(default)]
    pub host: Option<String>,
    /// HTTP(S): redirects followed, each hop timed (default 0: a redirect is the answer).
    #[serde(default)]
    pub follow_redirects: Option<u8>,
    /// HTTP(S): skip certificate verification (the expiry is still read).
    #[serde(default)]
    pub insecure: Option<bool>,
    /// HTTP(S): also trust the CA certificates in this PEM file.
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
    /// HTTP(S): `"auto"` (ALPN: HTTP/2 or 1.1), `"1.1"` or `"2"`.
    #[serde(default)]
    pub http_version: Option<String>,
    /// HTTP(S): keep the connection between probes.
    #[serde(default)]
    pub keep_alive: Option<bool>,
}

impl TargetSection {
    /// True when any HTTP option is set (only HTTP targets may have them).
    fn has_http_options(&self) -> bool {
        self.method.is_some()
            || self.expect_status.is_some()
            || self.body_contains.is_some()
            || self.body_regex.is_some()
            || self.body_cap.is_some()
            || !self.headers.is_empty()
            || self.host.is_some()
            || self.follow_redirects.is_some()
            || self.insecure.is_some()
            || self.ca_file.is_some()
            || self.http_version.is_some()
            || self.keep_alive.is_some()
    }

    /// The HTTP options this section asks for.
    pub fn http_options(&self) -> Result<netpulse_core::target::HttpOptions, String> {
        use netpulse_core::target::{HttpMethod, HttpOptions, HttpVersionWanted};
        let d = HttpOptions::default();
        Ok(HttpOptions {
            method: match self
                .method
                .as_deref()
                .map(str::to_ascii_uppercase)
                .as_deref()
            {
                None | Some("GET") => HttpMethod::Get,
                Some("HEAD") => HttpMethod::Head,
                Some(other) => {
                    return Err(format!("key \"method\": \"{other}\" is not GET or HEAD"))
                }
            },
            expect_status: match &self.expect_status {
                Some(t) => netpulse_core::target::parse_status_list(t.get_ref())
                    .map_err(|e| format!("key \"expect_status\": {e}"))?,
                None => Vec::new(),
            },
            body_contains: self.body_contains.clone(),
            body_regex: self.body_regex.as_ref().map(|r| r.get_ref().clone()),
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            host: self.host.clone(),
            follow_redirects: self.follow_redirects.unwrap_or(0),
            insecure: self.insecure.unwrap_or(false),
            ca_file: self.ca_file.clone(),
            version: match self.http_version.as_deref() {
                None | Some("auto") => HttpVersionWanted::Auto,
                Some("1.1") => HttpVersionWanted::Http1,
                Some("2") => HttpVersionWanted::Http2,
                Some(other) => {
                    return Err(format!(
                        "key \"http_version\": \"{other}\" is not auto, 1.1 or 2"
                    ))
                }
            },
            keep_alive: self.keep_alive.unwrap_or(false),
            body_cap: self.body_cap.unwrap_or(d.body_cap),
        })
    }
}

fn default_interval() -> Spanned<ConfigDuration> {
    unspanned_duration("1s")
}

fn default_size() -> usize {
    56
}

/// `[ifaces]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IfacesSection {
    /// Watch interfaces at all.
    pub enabled: bool,
    /// These interfaces (empty: every interface that is up, without loopback).
    pub names: Vec<String>,
}

impl Default for IfacesSection {
    fn default() -> Self {
        Self {
            enabled: true,
            names: Vec::new(),
        }
    }
}

/// `[record]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecordSection {
    /// Record at all.
    pub enabled: bool,
    /// Database file (empty: the default, $XDG_DATA_HOME/netpulse/netpulse.db).
    pub db: String,
    /// How long each resolution is kept.
    pub retention: Spanned<Typed<netpulse_store::Retention>>,
}

impl Default for RecordSection {
    fn default() -> Self {
        Self {
            enabled: true,
            db: String::new(),
            retention: unspanned_typed(
                &netpulse_store::Retention::default().to_string(),
                netpulse_store::Retention::default(),
            ),
        }
    }
}

/// `[[rule]]`
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    /// Unique name.
    pub name: Spanned<String>,
    /// latency_avg, latency_p95, loss, jitter, outage, rx_rate, tx_rate, errors_rate,
    /// http_status, cert_expiry_days.
    pub metric: Spanned<Typed<Metric>>,
    /// `>`, `>=`, `<`, `<=`.
    #[serde(default = "default_op")]
    pub op: Spanned<Typed<Comparator>>,
    /// Threshold: ms for latency and jitter, a fraction for loss, bytes/s for rates.
    pub threshold: Spanned<f64>,
    /// How long the condition must hold.
    #[serde(rename = "for", default = "default_for")]
    pub hold: Spanned<ConfigDuration>,
    /// Window the value is computed over.
    #[serde(default = "default_window")]
    pub window: Spanned<ConfigDuration>,
    /// Fraction of the threshold the value must clear it by to resolve.
    #[serde(default = "default_hysteresis")]
    pub hysteresis: Spanned<f64>,
    /// Reminder interval while firing (absent: none).
    #[serde(default)]
    pub repeat: Option<Spanned<ConfigDuration>>,
    /// Targets (labels) or interfaces the rule applies to (empty: all).
    #[serde(default)]
    pub subjects: Vec<String>,
    /// info, warning, critical.
    #[serde(default = "default_severity")]
    pub severity: Spanned<Typed<Severity>>,
    /// Notifier names (empty: every notifier).
    #[serde(default)]
    pub notify: Vec<Spanned<String>>,
}

fn default_op() -> Spanned<Typed<Comparator>> {
    unspanned_typed(">", Comparator::Above)
}
fn default_for() -> Spanned<ConfigDuration> {
    unspanned_duration("0s")
}
fn default_window() -> Spanned<ConfigDuration> {
    unspanned_duration("10s")
}
fn default_hysteresis() -> Spanned<f64> {
    Spanned::new(0..0, DEFAULT_HYSTERESIS)
}

/// The fraction of the threshold a value must clear it by to resolve, by default.
const DEFAULT_HYSTERESIS: f64 = 0.1;
fn default_severity() -> Spanned<Typed<Severity>> {
    unspanned_typed("warning", Severity::Warning)
}

/// `[[notifier]]`: one notifier; `name` (default: the type) is what rules refer to.
pub type NotifierSection = NotifierKind;

/// The notifier types and their settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum NotifierKind {
    /// Lines on the console (coloured on a terminal).
    Console {
        /// Name rules refer to.
        #[serde(default)]
        name: Option<String>,
    },
    /// A JSON POST.
    Webhook {
        /// Name rules refer to.
        #[serde(default)]
        name: Option<String>,
        /// http:// or https:// URL.
        url: String,
        /// Per attempt.
        #[serde(default = "default_notify_timeout")]
        timeout: ConfigDuration,
        /// Attempts after the first, with backoff 1 s, 2 s, 4 s …
        #[serde(default = "default_retries")]
        retries: u32,
        /// Extra headers, e.g. `{ Authorization = "Bearer …" }`.
        #[serde(default)]
        headers: std::collections::BTreeMap<String, String>,
    },
    /// Email over SMTP.
    Email {
        /// Name rules refer to.
        #[serde(default)]
        name: Option<String>,
        /// SMTP server host.
        server: String,
        /// Port (default: 25 plain, 587 starttls, 465 tls).
        #[serde(default)]
        port: Option<u16>,
        /// none, starttls, tls.
        #[serde(default = "default_security")]
        security: String,
        /// Login.
        #[serde(default)]
        username: Option<String>,
        /// Password (or `password_env`).
        #[serde(default)]
        password: Option<String>,
        /// Environment variable holding the password.
        #[serde(default)]
        password_env: Option<String>,
        /// Sender address.
        from: String,
        /// Recipients.
        to: Vec<String>,
        /// Per attempt.
        #[serde(default = "default_notify_timeout")]
        timeout: ConfigDuration,
        /// Attempts after the first.
        #[serde(default = "default_retries")]
        retries: u32,
    },
    /// A program run with the alert in environment variables (never through a shell).
    Exec {
        /// Name rules refer to.
        #[serde(default)]
        name: Option<String>,
        /// Program path (or name on $PATH).
        program: String,
        /// Arguments.
        #[serde(default)]
        args: Vec<String>,
        /// Killed after this long.
        #[serde(default = "default_notify_timeout")]
        timeout: ConfigDuration,
        /// Attempts after the first.
        #[serde(default)]
        retries: u32,
    },
}

fn default_notify_timeout() -> ConfigDuration {
    Typed::default_of("10s", Duration::from_secs(10))
}
fn default_retries() -> u32 {
    3
}
fn default_security() -> String {
    "starttls".into()
}

impl NotifierKind {
    /// The name rules use.
    pub fn name(&self) -> String {
        let (name, kind) = match self {
            NotifierKind::Console { name } => (name, "console"),
            NotifierKind::Webhook { name, .. } => (name, "webhook"),
            NotifierKind::Email { name, .. } => (name, "email"),
            NotifierKind::Exec { name, .. } => (name, "exec"),
        };
        name.clone().unwrap_or_else(|| kind.to_string())
    }
}

/// `[listen]`
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ListenSection {
    /// Web dashboard address (empty: off).
    pub web: String,
    /// Prometheus /metrics address (empty: off).
    pub metrics: String,
    /// Bearer token for both (empty: none; needed to listen beyond loopback).
    pub token: String,
}

fn unspanned(s: &str) -> Spanned<String> {
    Spanned::new(0..0, s.to_string())
}

/// A value the config writes as text (`"1s"`, `"1s=48h,1m=30d,1h=forever"`), parsed when the file is
/// read: a bad one is located by the parser (`key "interval" in [[target]]: bad duration …`),
/// and no command parses it again. Written back as it was written; equal when the values are.
#[derive(Debug, Clone)]
pub struct Typed<T> {
    text: String,
    value: T,
}

/// How a typed config value is read from its text.
pub trait ConfigValue: Sized {
    /// The value of `text`, or what is wrong with it.
    fn from_config(text: &str) -> Result<Self, String>;
}

impl ConfigValue for Duration {
    fn from_config(text: &str) -> Result<Self, String> {
        parse_duration(text).map_err(|e| format!("bad duration \"{text}\": {e}"))
    }
}

impl ConfigValue for netpulse_store::Retention {
    fn from_config(text: &str) -> Result<Self, String> {
        text.parse().map_err(|e| format!("{e}"))
    }
}

impl ConfigValue for Metric {
    fn from_config(text: &str) -> Result<Self, String> {
        Metric::parse(text).ok_or_else(|| {
            format!(
                "\"{text}\" is not one of {}",
                Metric::ALL.map(Metric::name).join(", ")
            )
        })
    }
}

impl ConfigValue for Comparator {
    fn from_config(text: &str) -> Result<Self, String> {
        Comparator::parse(text).ok_or_else(|| format!("\"{text}\" is not one of >, >=, <, <="))
    }
}

impl ConfigValue for Severity {
    fn from_config(text: &str) -> Result<Self, String> {
        Severity::parse(text)
            .ok_or_else(|| format!("\"{text}\" is not one of info, warning, critical"))
    }
}

/// `text`, typed, without a place in a file (defaults and the built-in config).
fn unspanned_typed<T: ConfigValue + Clone>(text: &str, fallback: T) -> Spanned<Typed<T>> {
    Spanned::new(0..0, Typed::default_of(text, fallback))
}

/// A duration in the config.
pub type ConfigDuration = Typed<Duration>;

impl<T: ConfigValue + Clone> Typed<T> {
    /// The value.
    pub fn get(&self) -> T {
        self.value.clone()
    }

    /// A default, written as `text` (which must parse).
    fn default_of(text: &str, fallback: T) -> Self {
        Typed {
            text: text.to_string(),
            value: T::from_config(text).unwrap_or(fallback),
        }
    }
}

impl<T: PartialEq> PartialEq for Typed<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T> std::fmt::Display for Typed<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<T> Serialize for Typed<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de, T: ConfigValue> Deserialize<'de> for Typed<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A string, or a bare number written as its text (`interval = 5` is `"5"`: seconds).
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = String;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E>(self, v: &str) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_f64<E>(self, v: f64) -> Result<String, E> {
                Ok(v.to_string())
            }
        }
        let text = d.deserialize_any(Text)?;
        let value = T::from_config(&text).map_err(serde::de::Error::custom)?;
        Ok(Typed { text, value })
    }
}

fn unspanned_duration(text: &str) -> Spanned<ConfigDuration> {
    unspanned_typed(text, Duration::ZERO)
}

/// A config error, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (as given).
    pub file: String,
    /// 1-based line and column (0 when not known).
    pub line: usize,
    /// Column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for ConfigError {}

/// Line and column (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// The `[table]` or `[[array]]` header in force at `offset`.
fn section_at(text: &str, offset: usize) -> Option<String> {
    let line_end = text[offset.min(text.len())..]
        .find('\n')
        .map_or(text.len(), |i| offset + i);
    text[..line_end]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or(l).trim().to_string())
}

/// The key being assigned on the line holding `offset`.
fn key_at(text: &str, offset: usize) -> Option<String> {
    let start = text[..offset.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let line = text[start..].lines().next()?;
    let (key, _) = line.split_once('=')?;
    let key = key.trim().trim_matches('"');
    (!key.is_empty() && !key.starts_with('[')).then(|| key.to_string())
}

/// Where `key = "value"` (or a list holding `"value"` under `key`) is written, or 0..0.
fn locate(text: &str, key: &str, value: &str) -> Range<usize> {
    let quoted = format!("\"{value}\"");
    assignments(text, 0)
        .find_map(|(k, v, at)| (k.trim() == key).then(|| v.find(&quoted).map(|p| at + p))?)
        .map_or(0..0, |start| start..start + quoted.len())
}

/// Every `key = value` line from byte `from` on (comments cut off): the key as written, the
/// value's text and the byte it starts at.
fn assignments(text: &str, from: usize) -> impl Iterator<Item = (&str, &str, usize)> {
    let mut offset = from;
    text.get(from..)
        .unwrap_or("")
        .split_inclusive('\n')
        .filter_map(move |line| {
            let at = offset;
            offset += line.len();
            let code = line.split('#').next().unwrap_or("");
            code.split_once('=').map(|(k, v)| (k, v, at + k.len() + 1))
        })
}

/// The first `key = "v"` line of the section starting at `from` whose value `v` is the first
/// quoted text of `message`: its key and the value's span.
fn quoted_value_in_section(
    text: &str,
    from: usize,
    message: &str,
) -> Option<(String, Range<usize>)> {
    let value = message.split('"').nth(1)?;
    let quoted = format!("\"{value}\"");
    // Only up to the next header: a later table may hold the same value.
    let mut end = from;
    for (i, line) in text.get(from..)?.split_inclusive('\n').enumerate() {
        if i > 0 && line.trim_start().starts_with('[') {
            break;
        }
        end += line.len();
    }
    assignments(&text[..end], from)
        .find(|(_, v, _)| v.trim() == quoted)
        .and_then(|(k, v, at)| {
            let start = at + v.find(&quoted)?;
            Some((k.trim().to_string(), start..start + quoted.len()))
        })
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into our wording with a
/// suggestion.
fn unknown_field_message(msg: &str, where_: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, rest) = rest.split_once('`')?;
    let candidates: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
    let best = candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(field, c), *c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let mut out = format!("unknown key \"{field}\"{where_}");
    match best {
        Some((_, c)) => out.push_str(&format!(" (did you mean \"{c}\"?)")),
        None if !candidates.is_empty() => {
            out.push_str(&format!(" (known keys: {})", candidates.join(", ")))
        }
        None => {}
    }
    Some(out)
}

impl Config {
    /// Parses `text` (from `file`, for messages) and checks every value.
    pub fn parse(file: &str, text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let raw = e.message().trim().to_string();
            let mut span = e.span().unwrap_or(0..0);
            let where_ = section_at(text, span.start)
                .map(|s| format!(" in {s}"))
                .unwrap_or_default();
            // A value inside a `[[notifier]]` is read after serde buffered its table (the
            // `type` tag), so its error points at the table: find the value it names there.
            let mut key = key_at(text, span.start);
            if key.is_none() && e.span().is_some() {
                if let Some((k, at)) = quoted_value_in_section(text, span.start, &raw) {
                    (key, span) = (Some(k), at);
                }
            }
            let (line, column) = if e.span().is_some() {
                line_col(text, span.start)
            } else {
                (0, 0)
            };
            let message = unknown_field_message(&raw, &where_).unwrap_or_else(|| match key {
                Some(key) if e.span().is_some() => format!("key \"{key}\"{where_}: {raw}"),
                _ => format!("{raw}{where_}"),
            });
            ConfigError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        })?;
        config.validate(file, text)?;
        Ok(config)
    }

    /// Reads and parses a file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file.clone(),
            line: 0,
            column: 0,
            message: format!("cannot read the config: {e}"),
        })?;
        Config::parse(&file, &text)
    }

    fn validate(&self, file: &str, text: &str) -> Result<(), ConfigError> {
        let err = |span: Range<usize>, message: String| {
            let (line, column) = if span.is_empty() && span.start == 0 {
                (0, 0)
            } else {
                line_col(text, span.start)
            };
            ConfigError {
                file: file.to_string(),
                line,
                column,
                message,
            }
        };
        let mut labels = Vec::new();
        for t in &self.targets {
            let spec = parse_target(t.target.get_ref()).map_err(|e| {
                err(
                    t.target.span(),
                    format!(
                        "key \"target\" in [[target]]: bad target \"{}\": {e}",
                        t.target.get_ref()
                    ),
                )
            })?;
            let is_http = matches!(spec.kind, netpulse_core::target::TargetKind::Http { .. });
            if t.has_http_options() && !is_http {
                return Err(err(
                    t.target.span(),
                    format!(
                        "[[target]] \"{}\": HTTP options (method, expect_status, body_*, headers, \
                         host, follow_redirects, insecure, ca_file, http_version, keep_alive) are \
                         for http:// and https:// targets only",
                        t.target.get_ref()
                    ),
                ));
            }
            if is_http {
                let span = t
                    .expect_status
                    .as_ref()
                    .map(Spanned::span)
                    .or_else(|| t.body_regex.as_ref().map(Spanned::span))
                    .unwrap_or_else(|| t.target.span());
                let options = t
                    .http_options()
                    .map_err(|e| err(span.clone(), format!("in [[target]]: {e}")))?;
                if let Some(re) = &options.body_regex {
                    regex::Regex::new(re).map_err(|e| {
                        err(
                            span.clone(),
                            format!("key \"body_regex\" in [[target]]: {e}"),
                        )
                    })?;
                }
                if let Some(path) = &options.ca_file {
                    if !path.is_file() {
                        return Err(err(
                            t.target.span(),
                            format!(
                                "key \"ca_file\" in [[target]]: {} is not a readable file",
                                path.display()
                            ),
                        ));
                    }
                }
            }
            let interval = t.interval.get_ref().get();
            if interval < Duration::from_millis(1) {
                return Err(err(
                    t.interval.span(),
                    "key \"interval\" in [[target]]: at least 1ms".into(),
                ));
            }
            let timeout = t.timeout.get_ref().get();
            if timeout.is_zero() {
                return Err(err(
                    t.timeout.span(),
                    "key \"timeout\" in [[target]]: must be more than 0".into(),
                ));
            }
            let label = self.label_of(t);
            if labels.contains(&label) {
                return Err(err(
                    t.target.span(),
                    format!("[[target]] \"{label}\" is listed twice (give one a different label)"),
                ));
            }
            labels.push(label);
        }
        if !self.capture.filter.is_empty() {
            if let Err(e) = netpulse_capture::live::check_filter(&self.capture.filter) {
                return Err(err(
                    locate(text, "filter", &self.capture.filter),
                    format!("key \"filter\" in [capture]: {e}"),
                ));
            }
        }
        if self.monitor.resolve_every.get_ref().get() < Duration::from_secs(1) {
            return Err(err(
                self.monitor.resolve_every.span(),
                "key \"resolve_every\" in [monitor]: at least 1s".into(),
            ));
        }
        let loss = *self.outage.loss.get_ref();
        if !(0.0..1.0).contains(&loss) {
            return Err(err(
                self.outage.loss.span(),
                format!(
                    "key \"loss\" in [outage]: {loss} is not a fraction from 0 to below 1 (30 % is 0.3)"
                ),
            ));
        }
        if self.outage.window.get_ref().get().is_zero() {
            return Err(err(
                self.outage.window.span(),
                "key \"window\" in [outage]: must be more than 0".into(),
            ));
        }
        let notifier_names: Vec<String> = self.notifiers.iter().map(|n| n.name()).collect();
        for (i, name) in notifier_names.iter().enumerate() {
            if notifier_names[..i].contains(name) {
                return Err(err(
                    0..0,
                    format!(
                        "two [[notifier]] sections are named \"{name}\": give each a unique name"
                    ),
                ));
            }
        }
        let mut rule_names: Vec<&str> = Vec::new();
        for r in &self.rules {
            if rule_names.contains(&r.name.get_ref().as_str()) {
                return Err(err(
                    r.name.span(),
                    format!("two [[rule]] sections are named \"{}\"", r.name.get_ref()),
                ));
            }
            rule_names.push(r.name.get_ref());
            self.rule(r).map_err(|(span, m)| err(span, m))?;
            for n in &r.notify {
                if !notifier_names.contains(n.get_ref()) {
                    return Err(err(
                        n.span(),
                        format!(
                            "key \"notify\" in [[rule]]: no [[notifier]] named \"{}\" (there are: {})",
                            n.get_ref(),
                            if notifier_names.is_empty() {
                                "none".to_string()
                            } else {
                                notifier_names.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
        for (key, value) in [("web", &self.listen.web), ("metrics", &self.listen.metrics)] {
            if !value.is_empty() && value.parse::<std::net::SocketAddr>().is_err() {
                return Err(err(
                    locate(text, key, value),
                    format!(
                        "key \"{key}\" in [listen]: \"{value}\" is not an address like 127.0.0.1:9750"
                    ),
                ));
            }
        }
        // Notifier values are buffered by serde (tagged enum), so they carry no span: find them.
        let at = |key: &str, value: &str| locate(text, key, value);
        for n in &self.notifiers {
            match n {
                NotifierKind::Console { .. } => {}
                NotifierKind::Webhook { url, .. } => {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err(err(
                            at("url", url),
                            format!("key \"url\" in [[notifier]]: \"{url}\" is not an http:// or https:// URL"),
                        ));
                    }
                }
                NotifierKind::Email {
                    security, from, to, ..
                } => {
                    if let Err(e) = security.parse::<netpulse_alert::EmailSecurity>() {
                        return Err(err(
                            at("security", security),
                            format!("key \"security\" in [[notifier]]: {e}"),
                        ));
                    }
                    for a in std::iter::once(from).chain(to.iter()) {
                        if !a.contains('@') {
                            let from_span = at("from", a);
                            let span = if from_span.start > 0 {
                                from_span
                            } else {
                                at("to", a)
                            };
                            return Err(err(
                                span,
                                format!("[[notifier]] email: \"{a}\" is not an email address"),
                            ));
                        }
                    }
                    if to.is_empty() {
                        return Err(err(
                            0..0,
                            "[[notifier]] email: \"to\" lists no recipient".into(),
                        ));
                    }
                }
                NotifierKind::Exec { .. } => {}
            }
        }
        Ok(())
    }

    /// `[ifaces] names` that are not among `present` (this machine's interfaces): watched for
    /// in case they appear, but most likely a typo.
    pub fn missing_ifaces(&self, present: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        let capture = &self.capture.interface;
        if !capture.is_empty() && !present.contains(capture) {
            out.push(format!(
                "[capture] interface \"{}\" is not an interface here (there are: {}); the monitor \
                 will run without the capture",
                netpulse_core::text::printable(capture),
                present.join(", ")
            ));
        }
        if !self.ifaces.enabled {
            return out;
        }
        let missing: Vec<&String> = self
            .ifaces
            .names
            .iter()
            .filter(|n| !present.contains(n))
            .collect();
        out.extend(missing.iter().map(|n| {
            format!(
                "[ifaces] names lists \"{}\", which is not an interface here (there are: {}); \
                 it is watched for in case it appears",
                netpulse_core::text::printable(n),
                present.join(", ")
            )
        }));
        out
    }

    /// What is valid but will not work as written: a `[listen]` address beyond loopback with
    /// no token (in the file or `env_token`, NETPULSE_WEB_TOKEN's value), which the monitor
    /// refuses to serve.
    pub fn warnings(&self, env_token: Option<&str>) -> Vec<String> {
        let token = !self.listen.token.is_empty() || env_token.is_some_and(|t| !t.is_empty());
        let mut out = Vec::new();
        for (key, value) in [("web", &self.listen.web), ("metrics", &self.listen.metrics)] {
            let open = value
                .parse::<std::net::SocketAddr>()
                .is_ok_and(|a| !a.ip().is_loopback());
            if open && !token {
                out.push(format!(
                    "[listen] {key} = \"{value}\" is reachable beyond this machine and no token is \
                     set: `netpulse monitor` will refuse to serve it (set `token` in [listen] or \
                     NETPULSE_WEB_TOKEN, bind 127.0.0.1, or run it with --insecure-no-auth)"
                ));
            }
        }
        out
    }

    /// The label of a target section (control characters escaped: it reaches terminals).
    pub fn label_of(&self, t: &TargetSection) -> String {
        let label = t.label.clone().unwrap_or_else(|| {
            parse_target(t.target.get_ref())
                .map(|s: TargetSpec| s.to_string())
                .unwrap_or_else(|_| t.target.get_ref().clone())
        });
        netpulse_core::text::printable(&label).into_owned()
    }

    /// A rule section as a core rule (with its window), or the span and message of what is wrong.
    pub fn rule(&self, r: &RuleSection) -> Result<(Rule, Duration), (Range<usize>, String)> {
        let (metric, op, severity) = (
            r.metric.get_ref().get(),
            r.op.get_ref().get(),
            r.severity.get_ref().get(),
        );
        let hold = r.hold.get_ref().get();
        let window = r.window.get_ref().get();
        if window < Duration::from_secs(1) || window > Duration::from_secs(3600) {
            return Err((
                r.window.span(),
                "key \"window\" in [[rule]]: from 1s to 1h".into(),
            ));
        }
        let repeat = r.repeat.as_ref().map(|s| s.get_ref().get());
        let hysteresis = *r.hysteresis.get_ref();
        if !(0.0..1.0).contains(&hysteresis) {
            return Err((
                r.hysteresis.span(),
                format!(
                    "key \"hysteresis\" in [[rule]] \"{}\": a fraction from 0 to below 1",
                    r.name.get_ref()
                ),
            ));
        }
        let threshold = *r.threshold.get_ref();
        if !threshold.is_finite() {
            return Err((
                r.threshold.span(),
                "key \"threshold\" in [[rule]]: not a number".into(),
            ));
        }
        // Loss is a fraction (0.1 = 10 %): `10` would be 1 000 % and never fire.
        if metric == Metric::Loss && !(0.0..=1.0).contains(&threshold) {
            return Err((
                r.threshold.span(),
                format!(
                    "key \"threshold\" in [[rule]] \"{}\": loss is a fraction from 0 to 1 \
                     ({} would be {} %; for {} % write {})",
                    r.name.get_ref(),
                    threshold,
                    threshold * 100.0,
                    threshold,
                    threshold / 100.0
                ),
            ));
        }
        Ok((
            Rule {
                name: r.name.get_ref().clone(),
                metric,
                op,
                threshold,
                hold,
                hysteresis,
                repeat,
                subjects: r.subjects.clone(),
                severity,
            },
            window,
        ))
    }

    /// The built-in config for `monitor` without `--config`: ICMP to the default gateway and to
    /// each nameserver, every interface that is up, recording, console alerts at the seed
    /// thresholds (latency > 100 ms, loss > 10 %, rate > 1 MB/s).
    pub fn builtin() -> Config {
        let found = netpulse_iface::discover::SystemFiles::read();
        Config::builtin_from(&found.route, &found.ipv6_route, &found.resolv)
    }

    /// [`Config::builtin`] from the text of `/proc/net/route`, `/proc/net/ipv6_route` and
    /// `/etc/resolv.conf`.
    pub fn builtin_from(route: &str, ipv6_route: &str, resolv: &str) -> Config {
        let mut targets: Vec<(String, String)> = Vec::new();
        for gw in netpulse_iface::discover::default_gateways(route, ipv6_route) {
            targets.push((gw.clone(), format!("gateway {gw}")));
        }
        for ns in netpulse_iface::discover::nameservers(resolv) {
            if !targets.iter().any(|(t, _)| *t == ns) {
                targets.push((ns.clone(), format!("nameserver {ns}")));
            }
        }
        let rule =
            |name: &str, metric: &str, threshold: f64, hold: &str, window: &str, sev: &str| {
                RuleSection {
                    name: unspanned(name),
                    metric: unspanned_typed(metric, Metric::LatencyAvg),
                    op: default_op(),
                    threshold: Spanned::new(0..0, threshold),
                    hold: unspanned_duration(hold),
                    window: unspanned_duration(window),
                    hysteresis: default_hysteresis(),
                    repeat: None,
                    subjects: Vec::new(),
                    severity: unspanned_typed(sev, Severity::Warning),
                    notify: Vec::new(),
                }
            };
        Config {
            targets: targets
                .into_iter()
                .map(|(target, label)| TargetSection {
                    target: unspanned(&target),
                    label: Some(label),
                    interval: default_interval(),
                    timeout: default_interval(),
                    size: default_size(),
                    method: None,
                    expect_status: None,
                    body_contains: None,
                    body_regex: None,
                    body_cap: None,
                    headers: Default::default(),
                    host: None,
                    follow_redirects: None,
                    insecure: None,
                    ca_file: None,
                    http_version: None,
                    keep_alive: None,
                })
                .collect(),
            rules: vec![
                rule(
                    "high latency",
                    "latency_avg",
                    100.0,
                    "10s",
                    "10s",
                    "warning",
                ),
                rule("packet loss", "loss", 0.10, "10s", "30s", "critical"),
                rule("target down", "outage", 0.5, "0s", "10s", "critical"),
                rule("busy download", "rx_rate", 1_000_000.0, "5s", "5s", "info"),
                rule("busy upload", "tx_rate", 1_000_000.0, "5s", "5s", "info"),
            ],
            notifiers: vec![NotifierKind::Console { name: None }],
            ..Config::default()
        }
    }

    /// The effective config as TOML (defaults filled in).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot print the config: {e}\n"))
    }
}

/// This machine's interface names (`/sys/class/net`); empty when it cannot be read.
pub fn interfaces_here() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/net")
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_config_probes_gateway_and_nameservers() {
        let route =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let resolv = "# generated\nsearch lan\nnameserver 192.168.1.1\nnameserver 9.9.9.9 # quad9\nnameserver bogus\n";
        let c = Config::builtin_from(route, "", resolv);
        let labels: Vec<String> = c.targets.iter().map(|t| c.label_of(t)).collect();
        assert_eq!(labels, ["gateway 192.168.1.1", "nameserver 9.9.9.9"]);
        assert_eq!(c.rules.len(), 5);
        let text = c.to_toml();
        let again = Config::parse("builtin", &text).expect("the built-in config is valid");
        assert_eq!(again.targets.len(), 2);
        // A machine with neither still gets a (target-less) config.
        let none = Config::builtin_from("", "", "");
        assert!(none.targets.is_empty());
        assert!(Config::parse("builtin", &none.to_toml()).is_ok());
    }

    fn error(text: &str) -> String {
        match Config::parse("netpulse.toml", text) {
            Ok(c) => panic!("parsed: {c:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn listen_addresses_are_checked_and_an_open_one_without_a_token_is_a_warning() {
        let e = error("[listen]\nweb = \"nope\"\n");
        assert!(
            e.starts_with("netpulse.toml:2:7: key \"web\" in [listen]: \"nope\" is not an address"),
            "{e}"
        );
        let open = Config::parse("netpulse.toml", "[listen]\nmetrics = \"0.0.0.0:9100\"\n")
            .expect("valid");
        let w = open.warnings(None);
        assert!(
            w.len() == 1 && w[0].contains("metrics = \"0.0.0.0:9100\"") && w[0].contains("refuse"),
            "{w:?}"
        );
        assert!(
            open.warnings(Some("s3cret")).is_empty(),
            "a token from the environment"
        );
        let local =
            Config::parse("netpulse.toml", "[listen]\nweb = \"127.0.0.1:9750\"\n").expect("valid");
        assert!(local.warnings(None).is_empty());
    }

    #[test]
    fn interfaces_that_are_not_here_are_named() {
        let c = Config::parse("netpulse.toml", "[ifaces]\nnames = [\"eth0\", \"eht0\"]\n")
            .expect("valid");
        let here = ["lo".to_string(), "eth0".to_string()];
        let w = c.missing_ifaces(&here);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("\"eht0\"") && w[0].contains("there are: lo, eth0"),
            "{w:?}"
        );
    }

    #[test]
    fn the_capture_filter_is_compiled_and_its_interface_looked_for() {
        let e = Config::parse(
            "netpulse.toml",
            "[capture]\ninterface = \"eth9\"\nfilter = \"tcp port\"\n",
        )
        .expect_err("a filter that does not compile")
        .to_string();
        assert!(
            e.starts_with(
                "netpulse.toml:3:10: key \"filter\" in [capture]: bad capture filter \"tcp port\""
            ),
            "{e}"
        );
        let c = Config::parse(
            "netpulse.toml",
            "[capture]\ninterface = \"eth9\"\nfilter = \"tcp port 443\"\n",
        )
        .expect("valid");
        let w = c.missing_ifaces(&["lo".to_string()]);
        assert!(
            w.len() == 1 && w[0].contains("[capture] interface \"eth9\""),
            "{w:?}"
        );
    }

    #[test]
    fn a_bare_number_is_seconds() {
        let text = "[[target]]\ntarget = \"127.0.0.1\"\ninterval = 5\ntimeout = 0.5\n";
        let c = Config::parse("netpulse.toml", text).expect("parses");
        let t = &c.targets[0];
        assert_eq!(t.interval.get_ref().get(), Duration::from_secs(5));
        assert_eq!(t.timeout.get_ref().get(), Duration::from_millis(500));
        let e = error("[[target]]\ntarget = \"127.0.0.1\"\ninterval = true\n");
        assert!(e.contains("a string or a number"), "{e}");
    }

    #[test]
    fn the_example_file_parses_and_every_section_is_used() {
        let text = include_str!("../../../netpulse.example.toml");
        let c = Config::parse("netpulse.example.toml", text).expect("the example parses");
        assert!(!c.targets.is_empty() && !c.rules.is_empty());
        let kinds: Vec<&str> = c
            .notifiers
            .iter()
            .map(|n| match n {
                NotifierKind::Console { .. } => "console",
                NotifierKind::Webhook { .. } => "webhook",
                NotifierKind::Email { .. } => "email",
                NotifierKind::Exec { .. } => "exec",
            })
            .collect();
        assert_eq!(kinds, ["console", "webhook", "email", "exec"]);
        // The printed effective config parses back to the same thing.
        let again = Config::parse("effective", &c.to_toml()).expect("round trip");
        assert_eq!(again.targets.len(), c.targets.len());
        assert_eq!(again.rules.len(), c.rules.len());
    }

    #[test]
    fn an_empty_file_is_all_defaults() {
        let c = Config::parse("empty.toml", "").expect("empty is fine");
        assert_eq!(c, Config::default());
    }

    #[test]
    fn typos_name_file_line_column_key_and_a_suggestion() {
        let text = "[[target]]\ntarget = \"10.0.0.1\"\nintervall = \"1s\"\n";
        assert_eq!(
            error(text),
            "netpulse.toml:3:1: unknown key \"intervall\" in [[target]] (did you mean \"interval\"?)"
        );
        let text = "[record]\nenabled = true\n\n[monitor]\nstatus_evry = \"5s\"\n";
        assert_eq!(
            error(text),
            "netpulse.toml:5:1: unknown key \"status_evry\" in [monitor] (did you mean \"status_every\"?)"
        );
    }

    #[test]
    fn wrong_types_and_values_are_located() {
        let text = "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = \"high\"\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:4:13: key \"threshold\" in [[rule]]"),
            "{e}"
        );
        let text = "[[rule]]\nname = \"lossy\"\nmetric = \"loss\"\nthreshold = 10\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:4:13: "),
            "on the threshold's line: {e}"
        );
        assert!(
            e.contains("loss is a fraction from 0 to 1 (10 would be 1000 %; for 10 % write 0.1)"),
            "{e}"
        );
        let text = "[[rule]]\nname = \"x\"\nmetric = \"latency\"\nthreshold = 1\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:3:10: key \"metric\" in [[rule]]: \"latency\" is not one of latency_avg"),
            "{e}"
        );
        let text = "[[target]]\ntarget = \"10.0.0.1\"\ninterval = \"fast\"\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:3:12: key \"interval\" in [[target]]: bad duration"),
            "{e}"
        );
        // Every duration is typed when the file is read, located by the parser.
        for (text, want) in [
            (
                "[monitor]\nstatus_every = \"often\"\n",
                "netpulse.toml:2:16: key \"status_every\" in [monitor]: bad duration \"often\"",
            ),
            (
                "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = 1\nwindow = \"5 parsecs\"\n",
                "netpulse.toml:5:10: key \"window\" in [[rule]]: bad duration \"5 parsecs\"",
            ),
            (
                "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = 1\nrepeat = \"-1s\"\n",
                "netpulse.toml:5:10: key \"repeat\" in [[rule]]: bad duration \"-1s\"",
            ),
            (
                "[[notifier]]\ntype = \"email\"\nserver = \"mx\"\nsecurity = \"ssl\"\nfrom = \"a@b\"\nto = [\"c@d\"]\n",
                "netpulse.toml:4:12: key \"security\" in [[notifier]]: \"ssl\" is not one of none, starttls, tls",
            ),
            (
                "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = 1\nop = \"=>\"\n",
                "netpulse.toml:5:6: key \"op\" in [[rule]]: \"=>\" is not one of >, >=, <, <=",
            ),
            (
                "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = 1\nseverity = \"dire\"\n",
                "netpulse.toml:5:12: key \"severity\" in [[rule]]: \"dire\" is not one of info, warning, critical",
            ),
            (
                "[record]\nretention = \"48h,30d,sometimes\"\n",
                "netpulse.toml:2:13: key \"retention\" in [record]: ",
            ),
        ] {
            let e = error(text);
            assert!(e.starts_with(want), "{e}");
        }
        // Written back as written; equal when the durations are.
        let a = Config::parse("a", "[monitor]\nstatus_every = \"1m\"\n").expect("parses");
        let b = Config::parse("b", "[monitor]\nstatus_every = \"60s\"\n").expect("parses");
        assert_eq!(a.monitor, b.monitor);
        assert_eq!(a.monitor.status_every.get_ref().to_string(), "1m");
        let r = Config::parse("r", "[record]\nretention = \"1s=1h,1m=1d,1h=forever\"\n")
            .expect("parses");
        let want: netpulse_store::Retention = "1s=1h,1m=1d,1h=forever".parse().expect("retention");
        assert_eq!(r.record.retention.get_ref().get(), want);
        assert_eq!(
            Config::default().record.retention.get_ref().get(),
            netpulse_store::Retention::default()
        );
        let text = "[monitor]\nicmp_socket = \"rawr\"\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:2:15: key \"icmp_socket\" in [monitor]: unknown variant `rawr`, expected one of `auto`, `dgram`, `raw`"),
            "{e}"
        );
        let text = "[[target]]\ntarget = \"tcp://host\"\n";
        let e = error(text);
        assert!(
            e.starts_with("netpulse.toml:2:10: key \"target\" in [[target]]: bad target"),
            "{e}"
        );
        let text =
            "[[rule]]\nname = \"x\"\nmetric = \"loss\"\nthreshold = 0.1\nnotify = [\"pager\"]\n";
        let e = error(text);
        assert!(e.contains("no [[notifier]] named \"pager\""), "{e}");
        let text = "[[notifier]]\ntype = \"pigeon\"\n";
        let e = error(text);
        assert!(
            e.starts_with(
                "netpulse.toml:2:8: key \"type\" in [[notifier]]: unknown variant `pigeon`"
            ),
            "{e}"
        );
        let text =
            "[[notifier]]\ntype = \"exec\"\nprogram = \"/bin/true\"\ntimeout = \"10 parsecs\"\n";
        let e = error(text);
        assert!(
            e.starts_with(
                "netpulse.toml:4:11: key \"timeout\" in [[notifier]]: bad duration \"10 parsecs\""
            ),
            "a notifier's value is located though serde buffered its table: {e}"
        );
        let text = "[[notifier]]\ntype = \"webhook\"\nurl = \"http://x\"\nretry = 2\n";
        let e = error(text);
        assert!(
            e.contains("unknown key \"retry\"") && e.contains("did you mean \"retries\""),
            "{e}"
        );
        let text = "[[notifier]]\ntype = \"webhook\"\nurl = \"ftp://x\"\n";
        assert!(error(text).starts_with("netpulse.toml:3:7: key \"url\" in [[notifier]]"));
    }
}
