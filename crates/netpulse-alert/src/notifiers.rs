//! The notifiers: console, webhook, email, exec.

use crate::{Alert, Notifier};
use netpulse_core::alert::{AlertKind, Severity};
use std::io::{IsTerminal, Read, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// Where a console notifier's lines go instead of standard output.
type LineSink = Box<dyn Fn(&str) + Send>;

/// Lines on standard output, coloured by severity on a terminal — or, while a full-screen UI
/// owns the terminal, handed to it instead.
pub struct ConsoleNotifier {
    name: String,
    colour: bool,
    to: Option<LineSink>,
}

impl ConsoleNotifier {
    /// A console notifier called `name`.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            colour: std::io::stdout().is_terminal(),
            to: None,
        }
    }

    /// A console notifier whose lines go to `to` (a terminal UI), not to standard output.
    pub fn to(name: &str, to: impl Fn(&str) + Send + 'static) -> Self {
        Self {
            name: name.to_string(),
            colour: false,
            to: Some(Box::new(to)),
        }
    }
}

impl Notifier for ConsoleNotifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn retries(&self) -> u32 {
        0
    }
    fn deliver(&mut self, alert: &Alert) -> Result<String, String> {
        let e = &alert.event;
        let time = humantime::format_rfc3339_seconds(e.at);
        let line = format!("{time} {}", alert.text());
        if let Some(to) = &self.to {
            to(&line);
            return Ok("shown in the terminal UI".to_string());
        }
        let line = if self.colour {
            let code = match (e.kind, e.severity) {
                (AlertKind::Resolved, _) => "32",
                (_, Severity::Critical) => "1;31",
                (_, Severity::Warning) => "33",
                (_, Severity::Info) => "36",
            };
            format!("\x1b[{code}m{line}\x1b[0m")
        } else {
            line
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .map(|_| "printed".to_string())
            .map_err(|e| e.to_string())
    }
}

/// A JSON POST per alert.
pub struct WebhookNotifier {
    name: String,
    url: String,
    headers: Vec<(String, String)>,
    retries: u32,
    agent: ureq::Agent,
}

impl WebhookNotifier {
    /// A webhook posting to `url`, each attempt limited to `timeout`.
    pub fn new(
        name: &str,
        url: &str,
        headers: Vec<(String, String)>,
        timeout: Duration,
        retries: u32,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .new_agent();
        Self {
            name: name.to_string(),
            url: url.to_string(),
            headers,
            retries,
            agent,
        }
    }
}

impl Notifier for WebhookNotifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn retries(&self) -> u32 {
        self.retries
    }
    fn deliver(&mut self, alert: &Alert) -> Result<String, String> {
        let body = alert.to_json().to_string();
        let mut req = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header(
                "User-Agent",
                concat!("netpulse/", env!("CARGO_PKG_VERSION")),
            );
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        match req.send(body.as_bytes()) {
            Ok(resp) if resp.status().is_success() => {
                Ok(format!("HTTP {}", resp.status().as_u16()))
            }
            Ok(resp) => Err(format!(
                "{} answered HTTP {}",
                self.url,
                resp.status().as_u16()
            )),
            Err(e) => Err(format!("POST {}: {e}", self.url)),
        }
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailSecurity {
    /// Plain text (local relays).
    None,
    /// STARTTLS after connecting (port 587).
    StartTls,
    /// TLS from the start (port 465).
    Tls,
}

/// An e-mail `security` word that is not one of `none`, `starttls`, `tls`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not one of none, starttls, tls")]
pub struct EmailSecurityParseError(pub String);

impl std::str::FromStr for EmailSecurity {
    type Err = EmailSecurityParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(EmailSecurity::None),
            "starttls" => Ok(EmailSecurity::StartTls),
            "tls" => Ok(EmailSecurity::Tls),
            other => Err(EmailSecurityParseError(other.to_string())),
        }
    }
}

/// Email over SMTP.
pub struct EmailNotifier {
    name: String,
    transport: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
    to: Vec<lettre::message::Mailbox>,
    retries: u32,
}

impl EmailNotifier {
    /// An SMTP notifier; fails on bad addresses or a server name TLS cannot use.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: &str,
        server: &str,
        port: Option<u16>,
        security: EmailSecurity,
        credentials: Option<(String, String)>,
        from: &str,
        to: &[String],
        timeout: Duration,
        retries: u32,
    ) -> Result<Self, String> {
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::SmtpTransport;
        let builder = match security {
            EmailSecurity::None => {
                SmtpTransport::builder_dangerous(server).port(port.unwrap_or(25))
            }
            EmailSecurity::StartTls => SmtpTransport::starttls_relay(server)
                .map_err(|e| format!("SMTP server {server}: {e}"))?
                .port(port.unwrap_or(587)),
            EmailSecurity::Tls => SmtpTransport::relay(server)
                .map_err(|e| format!("SMTP server {server}: {e}"))?
                .port(port.unwrap_or(465)),
        };
        let mut builder = builder.timeout(Some(timeout));
        if let Some((user, pass)) = credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let parse = |a: &str| {
            a.parse::<lettre::message::Mailbox>()
                .map_err(|e| format!("bad email address \"{a}\": {e}"))
        };
        Ok(Self {
            name: name.to_string(),
            transport: builder.build(),
            from: parse(from)?,
            to: to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
            retries,
        })
    }
}

impl Notifier for EmailNotifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn retries(&self) -> u32 {
        self.retries
    }
    fn deliver(&mut self, alert: &Alert) -> Result<String, String> {
        use lettre::Transport;
        let e = &alert.event;
        let mut msg = lettre::Message::builder()
            .from(self.from.clone())
            .subject(format!(
                "[netpulse {}] {} {}: {}",
                alert.host,
                if alert.trace.is_some() {
                    "trace"
                } else {
                    e.kind.name()
                },
                e.subject,
                e.rule
            ))
            .header(lettre::message::header::ContentType::TEXT_PLAIN);
        for to in &self.to {
            msg = msg.to(to.clone());
        }
        let body = format!(
            "{}\n\n{}\n",
            alert.text(),
            serde_json::to_string_pretty(&alert.to_json()).unwrap_or_default()
        );
        let msg = msg
            .body(body)
            .map_err(|e| format!("cannot build the email: {e}"))?;
        self.transport
            .send(&msg)
            .map(|r| format!("SMTP {}", r.code()))
            .map_err(|e| format!("SMTP: {e}"))
    }
}

/// A program run per alert with the alert in `NETPULSE_ALERT_*` environment variables and as
/// JSON on standard input; never through a shell; killed after the timeout.
pub struct ExecNotifier {
    name: String,
    program: String,
    args: Vec<String>,
    timeout: Duration,
    retries: u32,
}

impl ExecNotifier {
    /// An exec notifier.
    pub fn new(
        name: &str,
        program: &str,
        args: &[String],
        timeout: Duration,
        retries: u32,
    ) -> Self {
        Self {
            name: name.to_string(),
            program: program.to_string(),
            args: args.to_vec(),
            timeout,
            retries,
        }
    }
}

impl Notifier for ExecNotifier {
    fn name(&self) -> &str {
        &self.name
    }
    fn retries(&self) -> u32 {
        self.retries
    }
    fn deliver(&mut self, alert: &Alert) -> Result<String, String> {
        let e = &alert.event;
        let json = alert.to_json();
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in [
            (
                "STATUS",
                json["status"].as_str().unwrap_or_default().to_string(),
            ),
            ("RULE", e.rule.clone()),
            ("SUBJECT", e.subject.clone()),
            ("METRIC", e.metric.name().to_string()),
            ("VALUE", e.value.to_string()),
            ("OP", e.op.symbol().to_string()),
            ("THRESHOLD", e.threshold.to_string()),
            ("SEVERITY", e.severity.name().to_string()),
            ("AT", json["at"].as_str().unwrap_or_default().to_string()),
            (
                "SINCE",
                json["since"].as_str().unwrap_or_default().to_string(),
            ),
            ("HOST", alert.host.clone()),
            ("SUMMARY", alert.text()),
        ] {
            cmd.env(format!("NETPULSE_ALERT_{k}"), v);
        }
        let mut child = cmd
            .spawn()
            .map_err(|err| format!("cannot run {}: {err}", self.program))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that does not read its input is fine.
            let _ = stdin.write_all(json.to_string().as_bytes());
        }
        let stderr = child.stderr.take();
        // The program's stderr is read on the side (a full pipe must not block it); without a
        // thread for that, its stderr is simply not quoted.
        let reader = std::thread::Builder::new()
            .name("notify-exec-stderr".into())
            .spawn(move || {
                let mut text = String::new();
                if let Some(s) = stderr {
                    let _ = s.take(4096).read_to_string(&mut text);
                }
                text
            })
            .ok();
        let started = std::time::Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!(
                        "{} did not finish within {:?}; killed",
                        self.program, self.timeout
                    ));
                }
                // Notifier programs are short; polling their exit costs nothing worth a thread.
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(err) => return Err(format!("waiting for {}: {err}", self.program)),
            }
        };
        let err_text = reader.and_then(|r| r.join().ok()).unwrap_or_default();
        if status.success() {
            Ok("exit 0".into())
        } else {
            Err(format!(
                "{} failed ({status}){}",
                self.program,
                if err_text.trim().is_empty() {
                    String::new()
                } else {
                    format!(": {}", err_text.trim())
                }
            ))
        }
    }
}
