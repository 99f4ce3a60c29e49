//! netpulse: how is my network doing, and why?

mod capture_cmd;
mod cli;
mod config;
mod ifaces_cmd;
mod monitor_capture;
mod monitor_cmd;
mod output;
mod probe_cmd;
mod record;
mod report_charts;
mod report_cmd;
mod report_ifaces;
mod signals;
mod tui_cmd;
mod units;
mod worker;

use clap::Parser;
use std::io::{self, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
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
            eprintln!("netpulse: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Probe(args) => probe_cmd::run(args),
        cli::Command::Report(args) => report_cmd::run(args),
        cli::Command::Sessions(args) => report_cmd::sessions(args),
        cli::Command::Ifaces(args) => ifaces_cmd::run(args),
        cli::Command::Monitor(args) => monitor_cmd::run(args),
        cli::Command::Capture(args) => capture_cmd::run(args),
        cli::Command::Config(cli::ConfigCommand::Check { file }) => {
            let config = config::Config::load(&file)?;
            print!("{}", config.to_toml());
            eprintln!("netpulse: {} is valid", file.display());
            Ok(ExitCode::SUCCESS)
        }
        cli::Command::Config(cli::ConfigCommand::Default) => {
            print!("{}", config::Config::builtin().to_toml());
            Ok(ExitCode::SUCCESS)
        }
    }
}
