//! Every command's `--help`, as snapshots (`crates/netpulse/tests/snapshots/`): a change to what
//! users read is reviewed, not accidental. After an intended change:
//! `INSTA_UPDATE=always cargo test -p netpulse --test help`, then review the diff.

mod common;

use std::process::Command;

fn help(args: &[&str]) -> String {
    let out = Command::new(common::bin())
        .args(args)
        .arg("--help")
        // clap wraps to the terminal: a fixed width, and no secret in the environment.
        .env("COLUMNS", "100")
        .env_remove("NETPULSE_WEB_TOKEN")
        .output()
        .expect("run");
    assert!(out.status.success(), "{args:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn help_of_every_command() {
    for cmd in [
        "", "probe", "report", "sessions", "ifaces", "capture", "monitor", "config", "trace",
    ] {
        let args: Vec<&str> = [cmd].into_iter().filter(|c| !c.is_empty()).collect();
        let name = if cmd.is_empty() { "netpulse" } else { cmd };
        insta::assert_snapshot!(format!("help_{name}"), help(&args));
    }
}

#[test]
fn help_never_shows_the_token_from_the_environment() {
    let out = Command::new(common::bin())
        .args(["monitor", "--help"])
        .env("NETPULSE_WEB_TOKEN", "s3cret-from-env")
        .output()
        .expect("run");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("NETPULSE_WEB_TOKEN"), "{text}");
    assert!(!text.contains("s3cret-from-env"), "{text}");
}
