//! netpulse: how is my network doing, and why?

mod capture_charts;
mod capture_cmd;
mod cli;
mod config;
mod console;
mod heap;
mod ifaces_cmd;
mod monitor_capture;
mod monitor_cmd;
mod output;
mod probe_cmd;
mod record;
mod report_charts;
mod report_cmd;
mod report_ifaces;
mod resolver;
mod session_dir;
mod session_file;
mod signals;
mod trace_cmd;
mod tui_cmd;
mod worker;

use clap::Parser;
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse_from(cli::join_spaced_ports(std::env::args_os().collect()));
    // Probes, captures and web clients all need descriptors; the default soft limit (often
    // 1 024) is far below what the system allows.
    netpulse_probe::raise_open_file_limit();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // A closed pipe (`netpulse probe … | head`) is the reader's choice, not an error.
            if err
                .chain()
                .filter_map(|e| e.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
            {
                return ExitCode::SUCCESS;
            }
            let _ = io::stdout().flush();
            // An error may quote what it was given (a DNS name, a config value): never raw.
            let text = error_text(&err);
            let shown: Vec<_> = text
                .split('\n')
                .map(netpulse_core::text::printable)
                .collect();
            eprintln!("netpulse: {}", shown.join("\n"));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes, each said once: library errors already name their cause in their
/// message ("cannot listen on ADDR: address in use"), which `{:#}` would repeat.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let part = cause.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Probe(args) => probe_cmd::run(*args),
        cli::Command::Report(args) => report_cmd::run(args),
        cli::Command::Sessions(args) => report_cmd::sessions(args),
        cli::Command::Ifaces(args) => ifaces_cmd::run(args),
        cli::Command::Monitor(args) => monitor_cmd::run(args),
        cli::Command::Trace(args) => trace_cmd::run(&args),
        cli::Command::Capture(args) => capture_cmd::run(args),
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            let config = config::Config::load(&file)?;
            print!("{}", config.to_toml());
            let env_token = std::env::var("NETPULSE_WEB_TOKEN").ok();
            let mut warnings = config.warnings(env_token.as_deref());
            warnings.extend(config.missing_ifaces(&config::interfaces_here()));
            for w in &warnings {
                eprintln!("netpulse: warning: {w}");
            }
            if warnings.is_empty() {
                eprintln!("netpulse: {} is valid", file.display());
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!(
                    "netpulse: {} is valid, with {} warning{}",
                    file.display(),
                    warnings.len(),
                    if warnings.len() == 1 { "" } else { "s" }
                );
                Ok(ExitCode::from(1))
            }
        }
        cli::Command::Config(cli::ConfigCommand::Default) => {
            print!("{}", config::Config::builtin().to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod error_text_tests {
    use super::error_text;
    use anyhow::Context;

    #[test]
    fn each_cause_is_said_once() {
        let source = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address already in use");
        let bind = netpulse_web::WebError::Bind {
            addr: "127.0.0.1:9".parse().expect("address"),
            source,
        };
        let err = Err::<(), _>(bind)
            .context("starting the dashboard")
            .expect_err("an error");
        assert_eq!(
            error_text(&err),
            "starting the dashboard: cannot listen on 127.0.0.1:9: Address already in use"
        );
    }
}
