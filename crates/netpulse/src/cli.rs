//! Command-line interface.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// How is my network doing, and why? Probes, interface traffic, packet analysis, history, alerts.
#[derive(Debug, Parser)]
#[command(name = "netpulse", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Probe targets with ICMP echo, TCP connect, UDP or DNS (ping, fping and tcping in one).
    #[command(after_help = "TARGETS:\n  \
        HOST                      ICMP echo (ping)\n  \
        HOST:PORT, tcp://HOST:PORT TCP connect time (a refused port is a reply: host reachable, port closed)\n  \
        udp://HOST:PORT           UDP datagram; a reply or an ICMP port-unreachable both measure RTT\n  \
        dns://SERVER[:PORT]/NAME[?type=A]   DNS query time and response code\n\n\
        EXIT STATUS:\n  0 every target answered, 1 some did not, 2 bad arguments or no target resolvable.")]
    Probe(ProbeArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IcmpSocketArg {
    /// Unprivileged ping socket if allowed, else raw.
    Auto,
    /// Unprivileged ping socket only.
    Dgram,
    /// Raw socket only (needs CAP_NET_RAW).
    Raw,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Targets: HOST, HOST:PORT, tcp://, udp://, dns:// (see below).
    #[arg(required = true, value_name = "TARGET")]
    pub targets: Vec<String>,
    /// Stop after COUNT probes per target.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Time between probes of each target: 1ms, 0.5 (seconds), 2s. At least 1ms.
    #[arg(short = 'i', long, default_value = "1s", value_name = "INTERVAL")]
    pub interval: String,
    /// How long to wait for each answer.
    #[arg(short = 'W', long, default_value = "1s", value_name = "TIMEOUT")]
    pub timeout: String,
    /// Stop sending after this long, then wait for answers in flight.
    #[arg(short = 'w', long, value_name = "DEADLINE")]
    pub deadline: Option<String>,
    /// Payload bytes of ICMP and UDP probes.
    #[arg(short = 's', long, default_value_t = 56, value_name = "SIZE")]
    pub size: usize,
    /// Probe these TCP ports on every host: 22,80,443 or 8000-8010.
    #[arg(short = 'p', long, value_name = "PORTS")]
    pub ports: Option<String>,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Print only the summary (and periodic reports).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print a table per target every DURATION: sent, received, loss, avg RTT, outage.
    #[arg(long, value_name = "DURATION")]
    pub report_every: Option<String>,
    /// Write JSON Lines (one object per probe, report and summary) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which ICMP socket to use.
    #[arg(long, value_enum, default_value_t = IcmpSocketArg::Auto)]
    pub icmp_socket: IcmpSocketArg,
}
