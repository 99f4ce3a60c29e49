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
    /// Probe targets with ICMP echo, TCP connect, UDP, DNS or HTTP(S) (ping, fping, tcping and
    /// curl -w in one).
    #[command(after_help = "TARGETS:\n  \
        HOST                      ICMP echo (ping)\n  \
        HOST:PORT, tcp://HOST:PORT TCP connect time (a refused port is a reply: host reachable, port closed)\n  \
        udp://HOST:PORT           UDP datagram; a reply or an ICMP port-unreachable both measure RTT\n  \
        dns://SERVER[:PORT]/NAME[?type=A]   DNS query time and response code\n  \
        http://HOST[:PORT]/PATH, https://…  every phase timed: DNS (resolved each probe), connect,\n  \
        \x20                         TLS, first byte, body; status, body and certificate checked\n\n\
        -p 22 80 443 HOST (ports space- or comma-separated) pings HOST and connects to each port;\n\
        the summary shows each host's ping and ports together.\n\n\
        EXIT STATUS:\n  0 every target answered, 1 some did not, 2 bad arguments or no target resolvable.")]
    Probe(Box<ProbeArgs>),
    /// Report what a recording saw: summary, outages, per-target tables, time series.
    #[command(
        after_help = "TIMES are UTC: 2026-11-23T10:00:00Z, \"2026-11-23 10:00\", or unix seconds.\n\
        Without --session/--since/--from the latest session is reported."
    )]
    Report(ReportArgs),
    /// List recorded sessions.
    Sessions(SessionsArgs),
    /// Interface traffic: totals and live down/up speeds per interface (nload, bmon, vnStat).
    #[command(
        after_help = "Without --watch: one table, speeds measured over --interval.\n\
        Totals are the kernel's counters since the interface came up; speeds are counter deltas\n\
        over the real elapsed time. --record stores per-second/minute/hour traffic for\n\
        `netpulse report --ifaces`."
    )]
    Ifaces(IfacesArgs),
    /// Packet analysis of a pcap/pcapng file or a live interface: protocols, throughput, flows,
    /// handshake RTT, top talkers.
    Capture(CaptureArgs),
    /// The main job: probe, watch interfaces, record and alert, from one config (SIGHUP reloads).
    Monitor(MonitorArgs),
    /// Path diagnostics (mtr): every hop's loss, latency and jitter, round after round;
    /// unprivileged with UDP.
    #[command(
        after_help = "Probes: UDP (default; needs no privilege: routers' errors are read from \
        the socket's error queue) or --icmp (a ping socket, else raw: root or CAP_NET_RAW).\n\
        Paris-traceroute: every probe of a flow keeps its ports (and for ICMP its identifier and \
        checksum), so load balancers send it one way; --flows N takes N flows in turn.\n\
        Rate: one round a second and one probe per hop by default: routers answer about one \
        time-exceeded a second (Linux: icmp_ratelimit), and probing faster fakes loss."
    )]
    Trace(TraceArgs),
    /// Work with monitor config files.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["file", "interface"])))]
pub struct CaptureArgs {
    /// A pcap or pcapng file (gzip-compressed is fine; `-` reads standard input).
    #[arg(short = 'r', long = "read", value_name = "FILE")]
    pub file: Option<std::path::PathBuf>,
    /// Capture live on this interface (needs root or CAP_NET_RAW; Ctrl-C ends with the report).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,
    /// BPF capture filter in pcap syntax, e.g. "tcp port 443" (live capture).
    #[arg(
        short = 'f',
        long = "filter",
        value_name = "BPF",
        requires = "interface"
    )]
    pub filter: Option<String>,
    /// Stop after COUNT packets.
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Write one line per packet to FILE: time, protocol, source, destination, flags, size.
    #[arg(long, value_name = "FILE")]
    pub log: Option<std::path::PathBuf>,
    /// Report every interval of capture time (0s: only the final report).
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub interval: String,
    /// Entries in each top list.
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub top: usize,
    /// JSON Lines: one object per interval, then the report.
    #[arg(long)]
    pub json: bool,
    /// Tunnels (IP-in-IP, GRE, VXLAN, Geneve): `on` counts their inner packets, flows and RTTs
    /// too; `off` counts the outer headers only.
    #[arg(long, value_name = "on|off", default_value = "on", value_parser = ["on", "off"])]
    pub decap: String,
    /// When the capture ends, draw its charts into DIR (SVG and PNG): throughput per protocol
    /// over time, TCP handshake and DNS RTT distributions, packets per protocol.
    #[arg(long, value_name = "DIR")]
    pub charts: Option<std::path::PathBuf>,
    /// Write every flow (when it ends) to this CSV file.
    #[arg(long, value_name = "FILE.csv")]
    pub flows: Option<std::path::PathBuf>,
    /// Analysis threads for a file, its flows split among them by hash (default: with four
    /// cores or more, one per core besides the reader's and the dispatcher's, at most 16;
    /// else 1, one analyzer). Live capture uses one.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=16))]
    pub threads: Option<u16>,
    /// Record per-second protocol counts and finished flows to a database (default:
    /// $XDG_DATA_HOME/netpulse/netpulse.db); write `--record=FILE` for another file.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "", value_parser = record_path)]
    pub record: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The TOML config (see netpulse.example.toml); without it, a built-in default probes the
    /// default gateway and the nameservers and watches every interface that is up.
    #[arg(long, value_name = "FILE")]
    pub config: Option<std::path::PathBuf>,
    /// Serve the web dashboard, the JSON API and Prometheus /metrics on ADDR (default
    /// 127.0.0.1:9750; any other address than loopback needs --token or --insecure-no-auth).
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9750")]
    pub web: Option<std::net::SocketAddr>,
    /// Bearer token every web request must carry, for --web and the config's [listen] alike
    /// (or NETPULSE_WEB_TOKEN, which a service's environment file sets whether or not this run
    /// serves anything).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NETPULSE_WEB_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Serve a non-loopback address without a token.
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// Full-screen terminal UI instead of status lines: targets with a latency chart,
    /// interfaces, alerts (q quits, ? for keys).
    #[arg(long)]
    pub tui: bool,
    #[command(flatten)]
    pub session: SessionDirArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective config (every default filled in).
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
    },
    /// Print the built-in default config (what `monitor` runs without --config).
    Default,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IfaceSort {
    /// Most downloaded first.
    Rx,
    /// Most uploaded first.
    Tx,
    /// By name.
    Name,
    /// Busiest now (down + up speed) first.
    Rate,
}

#[derive(Debug, Args)]
pub struct IfacesArgs {
    /// Only these interfaces (repeat the option for several); shown whatever their state.
    #[arg(long = "iface", value_name = "NAME")]
    pub ifaces: Vec<String>,
    /// Include interfaces that are down and loopback.
    #[arg(long)]
    pub all: bool,
    /// Sort order.
    #[arg(long, value_enum, default_value_t = IfaceSort::Rx)]
    pub sort: IfaceSort,
    /// Decimal units (kB, MB) instead of binary (KiB, MiB).
    #[arg(long)]
    pub si: bool,
    /// Speeds in bit/s (kbit/s, Mbit/s).
    #[arg(long)]
    pub bits: bool,
    /// Refresh every interval until Ctrl-C: a live table on a terminal, lines otherwise.
    #[arg(long)]
    pub watch: bool,
    /// Time between readings (speeds are measured over it). At least 10ms.
    #[arg(long, default_value = "1s", value_name = "INTERVAL")]
    pub interval: String,
    /// Stop after COUNT refreshes (implies --watch).
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// JSON Lines: one object per interface per refresh.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// CSV: a header, then one row per interface per refresh.
    #[arg(long)]
    pub csv: bool,
    /// Record traffic to a database (default: $XDG_DATA_HOME/netpulse/netpulse.db); write
    /// `--record=FILE` for another file.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "", value_parser = record_path)]
    pub record: Option<std::path::PathBuf>,
    /// How long recorded rows are kept, per resolution (1s=48h,1m=30d,1h=forever; `forever`
    /// keeps them; resolutions not named keep their default).
    #[arg(long, value_name = "SPEC", default_value_t = netpulse_store::Retention::default())]
    pub retention: netpulse_store::Retention,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    /// Tables for people.
    Text,
    /// One JSON object.
    Json,
    /// The time series as CSV.
    Csv,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The database (default: $XDG_DATA_HOME/netpulse/netpulse.db).
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// Report one session (see `netpulse sessions`).
    #[arg(long, value_name = "ID", conflicts_with_all = ["since", "from", "to"])]
    pub session: Option<i64>,
    /// Report the last DURATION (e.g. 2h, 30m, 7d), across sessions.
    #[arg(long, value_name = "DURATION", conflicts_with_all = ["from", "to"])]
    pub since: Option<String>,
    /// Start of the range (UTC).
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,
    /// End of the range (UTC; default now).
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,
    /// Only this target (as labelled, e.g. 10.77.0.2 or tcp://host:443).
    #[arg(long, value_name = "TARGET")]
    pub target: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,
    /// Resolution of the time series: 1s, 1m or 1h (text shows a series only when given).
    #[arg(long, value_name = "RES")]
    pub resolution: Option<String>,
    /// Write a session folder: summary.txt, per_second.csv, per_minute.csv, per_hour.csv,
    /// outages.txt and their JSON twins.
    #[arg(long, value_name = "DIR", conflicts_with = "ifaces")]
    pub out: Option<std::path::PathBuf>,
    /// Draw charts of the range into DIR, each as SVG and PNG: latency with loss and outages
    /// and a latency histogram per target, throughput per interface, capture throughput per
    /// protocol and protocol usage.
    #[arg(long, value_name = "DIR", conflicts_with = "ifaces")]
    pub charts: Option<std::path::PathBuf>,
    /// Interface traffic per hour, day or month (like `vnstat -h/-d/-m`) instead of probes;
    /// without a range, everything recorded.
    #[arg(long)]
    pub ifaces: bool,
    /// The alerts in the range, with their deliveries and the path traced when each fired.
    #[arg(long, conflicts_with = "ifaces")]
    pub alerts: bool,
    /// With --ifaces: one row per hour, day or month (UTC).
    #[arg(long, value_enum, default_value_t = Period::Day, requires = "ifaces")]
    pub per: Period,
    /// With --ifaces: only this interface.
    #[arg(long, value_name = "NAME", requires = "ifaces")]
    pub iface: Option<String>,
    /// With --ifaces: decimal units (kB, MB).
    #[arg(long, requires = "ifaces")]
    pub si: bool,
    /// With --ifaces: rates in bit/s.
    #[arg(long, requires = "ifaces")]
    pub bits: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Period {
    /// Per hour.
    Hour,
    /// Per day.
    Day,
    /// Per month.
    Month,
}

#[derive(Debug, Args)]
pub struct SessionsArgs {
    /// The database (default: $XDG_DATA_HOME/netpulse/netpulse.db).
    #[arg(long, value_name = "FILE")]
    pub db: Option<std::path::PathBuf>,
    /// JSON Lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Seed 002's live session folder (probe and monitor).
#[derive(Debug, Clone, Args)]
pub struct SessionDirArgs {
    /// Keep a session folder up to date while running: summary.txt (with the configuration),
    /// per-second/minute/hour CSVs, the outage log; written in full when the run ends. Needs
    /// the recording (probe: implies --record).
    #[arg(long, value_name = "DIR")]
    pub session_dir: Option<std::path::PathBuf>,
    /// How often the session folder is brought up to date.
    #[arg(long, value_name = "DURATION", default_value = crate::session_dir::REFRESH, requires = "session_dir")]
    pub session_every: String,
    /// Also log every probe (time, target, sequence, outcome, RTT) to DIR/connections.log.
    #[arg(long, requires = "session_dir")]
    pub connection_log: bool,
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

/// `netpulse trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Host name or address to trace to.
    pub target: String,
    /// Rounds to run (default: until Ctrl-C; 10 with --report).
    #[arg(short = 'c', long)]
    pub count: Option<u64>,
    /// Print the table once at the end (as mtr -r) instead of a live view.
    #[arg(short = 'r', long)]
    pub report: bool,
    /// JSON Lines: one object per hop per round, then the summary.
    #[arg(long)]
    pub json: bool,
    /// Addresses only, no reverse names.
    #[arg(short = 'n', long)]
    pub numeric: bool,
    /// ICMP echo instead of UDP.
    #[arg(long, conflicts_with_all = ["port", "tcp"])]
    pub icmp: bool,
    /// TCP SYNs to this port instead of UDP (privileged: Paris-stable crafted SYNs; else a
    /// connect per probe, a new source port each).
    #[arg(long, value_name = "PORT", conflicts_with = "port")]
    pub tcp: Option<u16>,
    /// DNS-shaped UDP: queries to port 53, for paths that pass only DNS, to a DNS server.
    #[arg(long, conflicts_with_all = ["port", "tcp", "icmp"])]
    pub dns: bool,
    /// UDP destination port of the first flow (traceroute's).
    #[arg(short = 'p', long, default_value_t = 33434)]
    pub port: u16,
    /// Time between rounds (at least 10ms).
    #[arg(short = 'i', long, default_value = "1s", value_name = "INTERVAL")]
    pub interval: String,
    /// How long a probe waits for its answer.
    #[arg(short = 'W', long, default_value = "2s", value_name = "TIMEOUT")]
    pub timeout: String,
    /// First hop probed.
    #[arg(short = 'f', long, default_value_t = 1)]
    pub first_hop: u8,
    /// Last hop probed (at most 63).
    #[arg(short = 'm', long, default_value_t = 30)]
    pub max_hops: u8,
    /// Flows traced in turn (Paris-traceroute), to see the paths a load balancer spreads over.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=16))]
    pub flows: u8,
    /// IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
}

/// How HTTP(S) targets are asked and judged (`probe`; the config has the same per target).
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "HTTP(S) targets")]
pub struct HttpArgs {
    /// Request method.
    #[arg(long, value_name = "GET|HEAD", default_value = "GET", value_parser = ["GET", "HEAD"], ignore_case = true)]
    pub method: String,
    /// Statuses that count as success: 200, 200-299, 200,301-302 (default 200-399).
    #[arg(long, value_name = "LIST")]
    pub expect_status: Option<String>,
    /// The body must contain this text (read up to --body-cap).
    #[arg(long, value_name = "TEXT")]
    pub body_contains: Option<String>,
    /// The body must match this regular expression.
    #[arg(long, value_name = "REGEX")]
    pub body_regex: Option<String>,
    /// Most body bytes read.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20)]
    pub body_cap: u64,
    /// An extra request header, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Host header and TLS server name instead of the URL's host.
    #[arg(long, value_name = "NAME")]
    pub http_host: Option<String>,
    /// Follow up to N redirects, each hop timed (default: a redirect is the answer).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub follow_redirects: u8,
    /// Do not verify certificates (their expiry is still read).
    #[arg(long)]
    pub insecure: bool,
    /// Also trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// HTTP/1.1 only.
    #[arg(long, conflicts_with = "http2")]
    pub http1: bool,
    /// HTTP/2 only (plain http://: with prior knowledge).
    #[arg(long)]
    pub http2: bool,
    /// Keep the connection between probes (connect and TLS are then measured once).
    #[arg(long)]
    pub keep_alive: bool,
}

impl HttpArgs {
    /// The options these flags ask for.
    pub fn options(&self) -> Result<netpulse_core::target::HttpOptions, String> {
        use netpulse_core::target::{HttpMethod, HttpOptions, HttpVersionWanted};
        let mut headers = Vec::new();
        for h in &self.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("bad header \"{h}\": write \"Name: value\""))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        Ok(HttpOptions {
            method: if self.method.eq_ignore_ascii_case("HEAD") {
                HttpMethod::Head
            } else {
                HttpMethod::Get
            },
            expect_status: match &self.expect_status {
                Some(t) => netpulse_core::target::parse_status_list(t)
                    .map_err(|e| format!("bad --expect-status: {e}"))?,
                None => Vec::new(),
            },
            body_contains: self.body_contains.clone(),
            body_regex: self.body_regex.clone(),
            headers,
            host: self.http_host.clone(),
            follow_redirects: self.follow_redirects,
            insecure: self.insecure,
            ca_file: self.ca_file.clone(),
            version: match (self.http1, self.http2) {
                (true, _) => HttpVersionWanted::Http1,
                (_, true) => HttpVersionWanted::Http2,
                _ => HttpVersionWanted::Auto,
            },
            keep_alive: self.keep_alive,
            body_cap: self.body_cap,
        })
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// Targets: HOST, HOST:PORT, tcp://, udp://, dns:// (see below).
    #[arg(required_unless_present = "more_targets", value_name = "TARGET")]
    pub targets: Vec<String>,
    /// More targets (as seed 003 writes them: -t HOST HOST …).
    #[arg(short = 't', long = "target", num_args = 1.., value_name = "TARGET")]
    pub more_targets: Vec<String>,
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
    /// Also connect to these TCP ports of every host: 22,80,443, 22 80 443 or 8000-8010.
    #[arg(short = 'p', long, value_name = "PORTS")]
    pub ports: Option<String>,
    /// With -p: only the ports, no ping.
    #[arg(long, requires = "ports")]
    pub no_ping: bool,
    /// Write the session as one JSON file when the run ends (or is stopped): configuration,
    /// per-target, per-host and per-port statistics, and every probe's result.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<std::path::PathBuf>,
    /// Say more: each name's address, the sockets chosen, why each probe failed.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    #[command(flatten)]
    pub session: SessionDirArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    /// Use IPv4 only.
    #[arg(short = '4', conflicts_with = "ipv6")]
    pub ipv4: bool,
    /// Use IPv6 only.
    #[arg(short = '6')]
    pub ipv6: bool,
    /// Print only the summary (and periodic reports).
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Print a table per target every N rounds of probes (a bare number) or every DURATION
    /// (10s, 1m): sent, received, loss, avg RTT, outage.
    #[arg(long, value_name = "N|DURATION")]
    pub report_every: Option<String>,
    /// Write JSON Lines (one object per probe, report and summary) instead of text.
    #[arg(long)]
    pub json: bool,
    /// Which ICMP socket to use.
    #[arg(long, value_enum, default_value_t = IcmpSocketArg::Auto)]
    pub icmp_socket: IcmpSocketArg,
    /// Record the run to a database (default: $XDG_DATA_HOME/netpulse/netpulse.db); write
    /// `--record=FILE` for another file.
    #[arg(long, value_name = "FILE", num_args = 0..=1, require_equals = true, default_missing_value = "", value_parser = record_path)]
    pub record: Option<std::path::PathBuf>,
    /// How long recorded rows are kept, per resolution (1s=48h,1m=30d,1h=forever; `forever`
    /// keeps them; resolutions not named keep their default).
    #[arg(long, value_name = "SPEC", default_value_t = netpulse_store::Retention::default())]
    pub retention: netpulse_store::Retention,
    /// Loss over the outage window above which a target counts as down (0-1), once the window
    /// holds --outage-min-probes probes.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.30)]
    pub outage_loss: f64,
    /// Sliding window of the outage detector's loss rule.
    #[arg(long, value_name = "DURATION", default_value = "1s")]
    pub outage_window: String,
    /// Probes the window must hold before its loss counts (at 1s: an interval of 10ms or less).
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub outage_min_probes: u32,
    /// Failed probes in a row that start an outage at a 1s interval, one more per factor of
    /// ten faster: 3 at 1s, 4 at 100ms, 6 at 1ms (0: only the window counts).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub outage_after: u32,
}

/// `--record[=FILE]`: the file, or an empty path for the default database (bare `--record`).
/// clap's own path parser refuses the empty value that bare `--record` stands for.
fn record_path(text: &str) -> Result<std::path::PathBuf, String> {
    Ok(std::path::PathBuf::from(text))
}

/// Seed 003 writes ports space-separated (`probe -p 22 80 443 HOST`): in a `probe` command line,
/// the words after `-p`/`--ports` that are port lists (digits, `,` and `-`) are joined into one
/// comma list. No host is such a word (an all-digit host is refused), so it is unambiguous.
pub fn join_spaced_ports(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_probe = args.get(1).is_some_and(|a| a == "probe");
    if !is_probe {
        return args;
    }
    let port_list = |a: &std::ffi::OsStr| {
        a.to_str().is_some_and(|s| {
            s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars()
                    .all(|c| c.is_ascii_digit() || c == ',' || c == '-')
        })
    };
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut joining = false;
    for a in args {
        if a == "--" {
            joining = false;
            out.push(a);
            continue;
        }
        let value_follows = a == "-p" || a == "--ports";
        let value_attached = a.to_str().is_some_and(|s| {
            (s.starts_with("-p") && !s.starts_with("--") && port_list(s[2..].as_ref()))
                || s.strip_prefix("--ports=")
                    .is_some_and(|v| port_list(v.as_ref()))
        });
        if joining && port_list(&a) {
            if let Some(last) = out.last_mut() {
                if last == "-p" || last == "--ports" {
                    // `-p` then its first word: nothing to join yet.
                    out.push(a);
                    continue;
                }
                last.push(",");
                last.push(&a);
                continue;
            }
        }
        joining = value_follows || value_attached;
        out.push(a);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn join(line: &str) -> Vec<String> {
        join_spaced_ports(line.split(' ').map(Into::into).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn spaced_ports_are_joined_only_in_probe_and_only_port_words() {
        assert_eq!(
            join("np probe -p 22 80 443 host"),
            ["np", "probe", "-p", "22,80,443", "host"]
        );
        assert_eq!(join("np probe -p22 80 h"), ["np", "probe", "-p22,80", "h"]);
        assert_eq!(
            join("np probe --ports=22 8000-8010 10.0.0.1 -c 5"),
            ["np", "probe", "--ports=22,8000-8010", "10.0.0.1", "-c", "5"]
        );
        assert_eq!(
            join("np probe -p 22,80 host 443"),
            ["np", "probe", "-p", "22,80", "host", "443"]
        );
        assert_eq!(
            join("np probe -c 5 80 host"),
            ["np", "probe", "-c", "5", "80", "host"]
        );
        assert_eq!(
            join("np capture -p 22 80"),
            ["np", "capture", "-p", "22", "80"]
        );
    }
}
