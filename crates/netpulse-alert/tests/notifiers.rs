//! Notifiers against real receivers on loopback and real programs.

use netpulse_alert::{
    Alert, Backoff, Delivery, Dispatcher, ExecNotifier, Notifier, WebhookNotifier,
};

/// Retries without real seconds between them.
const QUICK: Backoff = Backoff {
    first: Duration::from_millis(1),
    max: Duration::from_millis(5),
};
use netpulse_core::alert::{AlertEvent, AlertKind, Comparator, Metric, Severity};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, UNIX_EPOCH};

fn alert() -> Alert {
    Alert {
        id: 7,
        event: AlertEvent {
            rule: "high latency".into(),
            subject: "10.77.0.2".into(),
            metric: Metric::LatencyAvg,
            kind: AlertKind::Fired,
            value: 120.5,
            op: Comparator::Above,
            threshold: 100.0,
            severity: Severity::Warning,
            at: UNIX_EPOCH + Duration::from_secs(1_800_000_030),
            since: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            gone: false,
        },
        host: "testhost".into(),
        trace: None,
    }
}

/// Serves `statuses` in order, one HTTP request each; returns the bodies received.
fn http_server(statuses: Vec<u16>) -> (String, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let mut bodies = Vec::new();
        for status in statuses {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream);
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().expect("length");
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).expect("body");
            bodies.push(String::from_utf8_lossy(&body).into_owned());
            let mut stream = reader.into_inner();
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .expect("answer");
        }
        bodies
    });
    (url, handle)
}

#[test]
fn webhook_posts_the_documented_json() {
    let (url, server) = http_server(vec![200]);
    let mut hook = WebhookNotifier::new("hook", &url, vec![], Duration::from_secs(5), 0);
    assert_eq!(hook.deliver(&alert()), Ok("HTTP 200".to_string()));
    let bodies = server.join().expect("server");
    let v: serde_json::Value = serde_json::from_str(&bodies[0]).expect("JSON body");
    assert_eq!(v["status"], "firing");
    assert_eq!(v["rule"], "high latency");
    assert_eq!(v["subject"], "10.77.0.2");
    assert_eq!(v["value"], 120.5);
    assert_eq!(v["threshold"], 100.0);
    assert_eq!(v["since"], "2027-01-15T08:00:00.000Z");
    assert_eq!(v["host"], "testhost");
}

#[test]
fn failed_deliveries_are_retried_then_reported() {
    // 500, 503, then 200: three attempts, the last one delivered.
    let (url, server) = http_server(vec![500, 503, 200]);
    let (tx, rx) = mpsc::channel::<Delivery>();
    let hook = WebhookNotifier::new("hook", &url, vec![], Duration::from_secs(5), 3);
    let d = Dispatcher::start_with(vec![Box::new(hook)], tx, QUICK);
    d.send(alert(), &[]);
    let results: Vec<Delivery> = (0..3)
        .map(|_| rx.recv_timeout(Duration::from_secs(20)).expect("a result"))
        .collect();
    assert_eq!(
        results
            .iter()
            .map(|r| (r.attempt, r.ok, r.last))
            .collect::<Vec<_>>(),
        vec![(1, false, false), (2, false, false), (3, true, true)]
    );
    assert!(
        results[0].detail.contains("HTTP 500"),
        "{}",
        results[0].detail
    );
    d.shutdown(Duration::from_secs(1));
    assert_eq!(server.join().expect("server").len(), 3);

    // Nobody listening: every attempt fails, the last says so.
    let dead = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", dead.local_addr().expect("addr"));
    drop(dead);
    let (tx, rx) = mpsc::channel::<Delivery>();
    let hook = WebhookNotifier::new("hook", &url, vec![], Duration::from_secs(2), 1);
    let d = Dispatcher::start_with(vec![Box::new(hook)], tx, QUICK);
    d.send(alert(), &[]);
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("attempt 1");
    let second = rx.recv_timeout(Duration::from_secs(10)).expect("attempt 2");
    assert!(!first.ok && !second.ok && second.last && second.attempt == 2);
    assert!(second.detail.contains("POST"), "{}", second.detail);
    d.shutdown(Duration::from_secs(1));
}

#[test]
fn exec_runs_the_program_with_the_alert_in_its_environment_and_time_limit() {
    let dir = std::env::temp_dir().join(format!("np-exec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let out = dir.join("env.txt");
    // Arguments with spaces and quotes reach the program unchanged: no shell in between.
    let script = "import os,sys; open(sys.argv[1],'w').write(os.environ['NETPULSE_ALERT_STATUS']+'|'+os.environ['NETPULSE_ALERT_SUBJECT']+'|'+sys.argv[2]+'|'+sys.stdin.read()[:1])";
    let mut exec = ExecNotifier::new(
        "pager",
        "python3",
        &[
            "-c".into(),
            script.into(),
            out.display().to_string(),
            "a b; $(echo no)".into(),
        ],
        Duration::from_secs(10),
        0,
    );
    assert_eq!(exec.deliver(&alert()), Ok("exit 0".to_string()));
    assert_eq!(
        std::fs::read_to_string(&out).expect("written"),
        "firing|10.77.0.2|a b; $(echo no)|{"
    );
    let mut failing = ExecNotifier::new("f", "false", &[], Duration::from_secs(5), 0);
    assert!(failing.deliver(&alert()).is_err());
    let mut slow = ExecNotifier::new("s", "sleep", &["30".into()], Duration::from_millis(200), 0);
    let err = slow.deliver(&alert()).expect_err("killed");
    assert!(err.contains("killed"), "{err}");
    let mut missing = ExecNotifier::new("m", "/nonexistent/pager", &[], Duration::from_secs(1), 0);
    assert!(missing
        .deliver(&alert())
        .expect_err("missing")
        .contains("cannot run /nonexistent/pager"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_slow_webhook_times_out_per_attempt_and_is_retried() {
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let holder = std::thread::spawn(move || {
        let mut held = Vec::new();
        for _ in 0..2 {
            held.push(listener.accept().expect("accept").0);
        }
        held
    });
    let (tx, rx) = mpsc::channel::<Delivery>();
    let hook = WebhookNotifier::new("slow", &url, vec![], Duration::from_millis(300), 1);
    let d = Dispatcher::start_with(vec![Box::new(hook)], tx, QUICK);
    // `send` only queues (`try_send`): a receiver that never answers cannot hold the caller
    // up — no timing is asserted here, the structure guarantees it.
    d.send(alert(), &[]);
    let first = rx.recv_timeout(Duration::from_secs(10)).expect("attempt 1");
    let second = rx.recv_timeout(Duration::from_secs(10)).expect("attempt 2");
    assert!(
        !first.ok && !second.ok && second.last,
        "{first:?} {second:?}"
    );
    assert!(
        first.detail.to_lowercase().contains("timeout")
            || first.detail.to_lowercase().contains("timed out"),
        "{}",
        first.detail
    );
    d.shutdown(Duration::from_secs(1));
    drop(holder.join());
}

/// Fails every attempt.
struct AlwaysDown;

impl Notifier for AlwaysDown {
    fn name(&self) -> &str {
        "down"
    }
    fn retries(&self) -> u32 {
        2
    }
    fn deliver(&mut self, _: &Alert) -> Result<String, String> {
        Err("connection refused".into())
    }
}

#[test]
fn retries_wait_their_backoff_on_the_dispatchers_clock() {
    use netpulse_core::clock::SharedFakeClock;
    use std::sync::Arc;
    let clock = Arc::new(SharedFakeClock::new(1_800_000_000));
    let t0 = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (tx, rx) = mpsc::channel();
    let backoff = Backoff {
        first: Duration::from_secs(10),
        max: Duration::from_secs(60),
    };
    let d = Dispatcher::start_with_clock(vec![Box::new(AlwaysDown)], tx, backoff, clock.clone());
    d.send(alert(), &[]);
    // A missed wait fails the test rather than hanging it.
    let next = |what: &str| {
        rx.recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("no {what}"))
    };
    let first = next("first attempt");
    assert_eq!(
        (first.attempt, first.ok, first.last, first.at),
        (1, false, false, t0)
    );
    // Nine of the ten seconds: no second attempt (it would come at once if the wait were not
    // on this clock; a real-time wait of 10 s would also miss the check below).
    clock.advance(Duration::from_secs(9));
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    clock.advance(Duration::from_secs(1));
    let second = next("second attempt");
    assert_eq!(
        (second.attempt, second.last, second.at),
        (2, false, t0 + Duration::from_secs(10))
    );
    // Then twice the wait, and the last attempt says so.
    clock.advance(Duration::from_secs(20));
    let third = next("third attempt");
    assert_eq!(
        (third.attempt, third.last, third.at),
        (3, true, t0 + Duration::from_secs(30))
    );
    d.shutdown(Duration::ZERO);
}
