//! Test helpers: run the binary, parse its JSON Lines, and build network namespaces / the lab
//! (each with a unique name, always removed, skipped with a reason only without privilege).
#![allow(dead_code)]

use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The netpulse binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_netpulse")
}

/// `netpulse ARGS…`, run to completion.
pub fn netpulse(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("run netpulse")
}

/// `ip netns exec NS netpulse ARGS…`, run to completion.
pub fn netpulse_in(ns: &str, args: &[&str]) -> Output {
    Command::new("ip")
        .args(["netns", "exec", ns, bin()])
        .args(args)
        .output()
        .expect("run netpulse in namespace")
}

/// Every stdout line parsed as JSON (panics on a line that is not).
pub fn json_lines(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

/// `netpulse report --db DB --format json` (the whole recording): its report object.
pub fn json_report(db: &std::path::Path) -> Value {
    let out = netpulse(&[
        "report",
        "--db",
        db.to_str().expect("utf-8"),
        "--format",
        "json",
    ]);
    json_lines(&out)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no report: {}", String::from_utf8_lossy(&out.stderr)))
}

/// The JSON objects of one type.
pub fn of_type<'a>(lines: &'a [Value], ty: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["type"] == ty).collect()
}

/// The summary object of `target`.
pub fn summary<'a>(lines: &'a [Value], target: &str) -> &'a Value {
    lines
        .iter()
        .find(|v| v["type"] == "summary" && v["target"] == target)
        .unwrap_or_else(|| panic!("no summary for {target} in {lines:?}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Says why a test is skipped; under `CI=true` (where `.ci/run` installed everything and runs
/// as root) a missing prerequisite is a failure instead.
pub fn skip(reason: &str) {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI must be able to run this test, but: {reason}"
    );
    eprintln!("SKIPPED: {reason}");
}

/// True (with a printed reason) when ICMP sockets cannot be opened here, so the test is skipped.
pub fn icmp_unavailable(out: &Output) -> bool {
    if out.status.code() == Some(2) && stderr(out).contains("cannot open an ICMP socket") {
        skip(&format!("no ICMP socket permission here: {}", stderr(out)));
        return true;
    }
    false
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A short name unique to this process and call (namespace names, lab prefixes ≤ 6 chars).
pub fn unique(prefix: char) -> String {
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}{:03}{}", std::process::id() % 1000, n % 10)
}

/// A network namespace with loopback up, removed on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates the namespace, or returns `None` (after printing why) without the privilege.
    pub fn new() -> Option<Netns> {
        let name = format!("np{}", unique('n'));
        let out = Command::new("ip").args(["netns", "add", &name]).output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                skip(&format!(
                    "cannot create a network namespace (needs root/CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                return None;
            }
            Err(e) => {
                skip(&format!("cannot run `ip` (install iproute2): {e}"));
                return None;
            }
        }
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        Some(ns)
    }

    /// Runs a command inside the namespace and asserts it succeeded.
    pub fn exec(&self, cmd: &[&str]) -> Output {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(cmd)
            .output()
            .expect("ip netns exec");
        assert!(out.status.success(), "{cmd:?} failed: {}", stderr(&out));
        out
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// The repository's shared lab scripts (`../shared/lab` beside the checkout).
pub fn lab_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/lab")
}

/// A running `netlab.sh` lab (client `{prefix}A` 10.N.0.1, server `{prefix}B` 10.N.0.2), torn
/// down on drop.
pub struct Lab {
    pub prefix: String,
    pub net: u8,
    /// A delay line this process restarted (`set_delay`), to reap when replaced or done.
    wire: std::sync::Mutex<Option<std::process::Child>>,
}

static NEXT_NET: AtomicU32 = AtomicU32::new(0);

impl Lab {
    /// Brings a lab up with the given one-way delay, jitter and loss, or returns `None` (after
    /// printing why) without the privilege.
    pub fn up(delay_ms: f64, jitter_ms: f64, loss: f64) -> Option<Lab> {
        // Probe privilege with a throwaway namespace first: a clear skip instead of a failure.
        drop(Netns::new()?);
        let script = lab_dir().join("netlab.sh");
        assert!(
            script.exists(),
            "missing {}: the lab lives in ../shared/lab",
            script.display()
        );
        let prefix = unique('l');
        // Distinct second octets per process and lab, so parallel labs never share addresses.
        let net =
            100 + ((std::process::id() * 7 + NEXT_NET.fetch_add(1, Ordering::SeqCst)) % 150) as u8;
        let lab = Lab {
            prefix,
            net,
            wire: std::sync::Mutex::new(None),
        };
        let out = Command::new("bash")
            .arg(&script)
            .args([
                "up",
                &delay_ms.to_string(),
                &jitter_ms.to_string(),
                &loss.to_string(),
            ])
            .env("NETLAB_PREFIX", &lab.prefix)
            .env("NETLAB_NET", lab.net.to_string())
            .output()
            .expect("run netlab.sh");
        assert!(
            out.status.success(),
            "netlab.sh up failed: {}{}",
            stdout(&out),
            stderr(&out)
        );
        Some(lab)
    }

    pub fn client(&self) -> String {
        format!("{}A", self.prefix)
    }

    pub fn server(&self) -> String {
        format!("{}B", self.prefix)
    }

    /// Restarts the delay line with a new one-way delay, leaving the namespaces (and every
    /// socket in them) alone: what `netlab.sh up` would do to the wire, without tearing down the
    /// client a monitor runs in. The pid file is updated so `netlab.sh down` stops the new wire.
    pub fn set_delay(&self, delay_ms: f64) {
        let run = format!("/tmp/netlab.{}", self.prefix);
        let pid_file = format!("{run}.wire.pid");
        let mut ours = self.wire.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mut old) = ours.take() {
            // Our own child: stop it and reap it (a zombie would look alive to `kill -0`).
            let _ = Command::new("kill").arg(old.id().to_string()).status();
            let _ = old.wait();
        } else {
            // netlab.sh's wire: not our child; wait until it is gone.
            let old = std::fs::read_to_string(&pid_file).expect("wire pid");
            let _ = Command::new("kill").arg(old.trim()).status();
            while Command::new("kill")
                .args(["-0", old.trim()])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
            {
                std::thread::yield_now();
            }
        }
        let child = Command::new("ip")
            .args(["netns", "exec", &format!("{}W", self.prefix), "python3"])
            .arg(lab_dir().join("wire.py"))
            .args(["wa", "wb", "--delay-ms", &delay_ms.to_string()])
            .args(["--jitter-ms", "0", "--loss", "0"])
            .args(["--stats", &format!("{run}.wire.json")])
            .args(["--blackout-file", &format!("{run}.blackout")])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start wire.py");
        std::fs::write(&pid_file, child.id().to_string()).expect("pid file");
        *ours = Some(child);
    }

    /// Address `host` (1 = client, 2 = server, others unused) in the lab network.
    pub fn addr(&self, host: u8) -> String {
        format!("10.{}.0.{host}", self.net)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(lab_dir().join("netlab.sh"))
            .arg("down")
            .env("NETLAB_PREFIX", &self.prefix)
            .status();
        if let Some(mut wire) = self.wire.lock().ok().and_then(|mut w| w.take()) {
            let _ = wire.wait();
        }
    }
}

/// A child process killed and reaped when the test ends, pass or fail.
pub struct Reaped(pub std::process::Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 GET over a fresh connection: (status, content type, body).
pub fn http_get(
    addr: std::net::SocketAddr,
    path: &str,
    auth: Option<&str>,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let auth = auth
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )
    .expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").expect("a header");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("status");
    let ctype = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    let chunked = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, ctype, body)
}

/// The body of a `Transfer-Encoding: chunked` answer (a streamed one, like `/metrics`).
pub fn dechunk(mut raw: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).expect("a chunk size");
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        raw = &rest[n + 2..];
    }
    out
}
