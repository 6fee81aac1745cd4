//! The command line, clap derive only: flags, help text, value enums. Input
//! checks live in `config.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

pub use crate::report::SortBy;

/// The kernel's state names, each also as `close-wait`: what `--state`
/// takes, and what the shell completions offer.
fn state_values() -> clap::builder::PossibleValuesParser {
    const DASHED: [&str; 11] = [
        "established",
        "syn-sent",
        "syn-recv",
        "fin-wait1",
        "fin-wait2",
        "time-wait",
        "close",
        "close-wait",
        "last-ack",
        "listen",
        "closing",
    ];
    clap::builder::PossibleValuesParser::new(
        crate::model::TcpState::ALL
            .iter()
            .zip(DASHED)
            .map(|(s, d)| clap::builder::PossibleValue::new(s.name()).alias(d)),
    )
}

/// The finding kinds `kill --finding` takes and the completions offer.
fn finding_values() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        crate::classify::Kind::ALL.map(crate::classify::Kind::name),
    )
}

/// Examples, as `--help` and the man page show them: the command, and
/// what it does.
pub const EXAMPLES: &[(&str, &str)] = &[
    (
        "zombiescan --port 30020",
        "who holds port 30020, in which state",
    ),
    (
        "zombiescan --port 30020 --json | jq '.summary.by_state.CLOSE_WAIT'",
        "the same for a script",
    ),
    (
        "zombiescan --process uvicorn --state CLOSE_WAIT --sockets",
        "every CLOSE_WAIT socket of uvicorn",
    ),
    ("zombiescan --pid 4242 --json", "the sockets of one process"),
    (
        "zombiescan --path /run/app.sock",
        "the unix socket an upstream listens on",
    ),
    (
        "zombiescan --source proc",
        "read /proc/net/tcp instead of netlink",
    ),
    (
        "zombiescan --netns 4242 --port 8000",
        "inside the container that pid 4242 runs in",
    ),
    (
        "zombiescan --all-netns --json",
        "every network namespace on the host",
    ),
    (
        "zombiescan capture -o incident.zsc",
        "freeze everything for later",
    ),
    (
        "zombiescan analyze incident.zsc --port 30020",
        "and report on it anywhere",
    ),
    ("zombiescan --watch 2s --port 30020", "what changes, live"),
    (
        "zombiescan --watch 5s --record night.ndjson --record-max 200M",
        "record the night",
    ),
    (
        "zombiescan report night.ndjson --format html > night.html",
        "when it began, as a page",
    ),
    (
        "zombiescan --port 30020 --format markdown > incident.md",
        "a report for the ticket",
    ),
    (
        "zombiescan kill --port 30020 --finding close_wait --older-than 10m",
        "what would be closed; add --yes to close it",
    ),
    (
        "zombiescan serve --all-netns",
        "the Prometheus exporter, on http://127.0.0.1:10130/metrics",
    ),
    (
        "zombiescan --fail-on critical",
        "exit 1 when something is critical (cron, CI)",
    ),
];

/// The exit statuses, as `--help` and the man page give them.
pub const EXIT_STATUS: &[(&str, &str)] = &[
    (
        "0",
        "scanned (kill --yes: every socket destroyed or already gone)",
    ),
    (
        "1",
        "a finding reached --fail-on (kill --yes: the kernel refused some)",
    ),
    ("2", "usage error"),
    (
        "3",
        "could not scan (no socket source usable, namespace not found, permission, input refused; \
         kill --yes: the kernel refused every one; serve: could not listen)",
    ),
];

fn after_help() -> String {
    let mut s = String::from("Examples:\n");
    for (cmd, what) in EXAMPLES {
        s.push_str(&format!("  {cmd}\n      {what}\n"));
    }
    s.push_str("\nExit status:");
    for (code, what) in EXIT_STATUS {
        s.push_str(&format!("\n  {code}  {what}"));
    }
    s
}

/// Which connections exist, in which state, owned by which process, and how
/// near each owner is to its file-descriptor limit.
#[derive(Debug, Parser)]
#[command(name = "zombiescan", version, about, after_help = after_help())]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Only sockets whose local or remote port is PORT (repeatable).
    /// Filtered in the kernel.
    #[arg(global = true, short, long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// Only the unix socket bound to PATH (@NAME for an abstract one), as
    /// --port selects a port: the listener, its connections and the
    /// processes at their other end (repeatable). Without --path, a --port
    /// scan shows the unix listeners behind the port (a proxy's upstream).
    #[arg(global = true, long = "path", value_name = "PATH")]
    pub paths: Vec<std::ffi::OsString>,

    /// Only sockets held by process PID (repeatable).
    #[arg(global = true, long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Only sockets held by processes whose name (comm) or one of whose
    /// command-line words is NAME (repeatable).
    #[arg(global = true, long = "process", value_name = "NAME")]
    pub processes: Vec<String>,

    /// Only sockets in state STATE, a kernel name such as ESTABLISHED or
    /// CLOSE_WAIT (repeatable).
    #[arg(global = true, short, long = "state", value_name = "STATE",
          value_parser = state_values(), ignore_case = true)]
    pub states: Vec<String>,

    /// Output format.
    #[arg(global = true, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Same as --format json.
    #[arg(global = true, long, conflicts_with = "format")]
    pub json: bool,

    /// List every socket in full, not only the flagged ones. Without it,
    /// a scan counts its healthy connections as it reads them and keeps
    /// none in full, so a finding about a destination's local ports lists
    /// only those of its sockets that are not healthy.
    #[arg(global = true, long)]
    pub sockets: bool,

    /// Each finding in full in the table: every caveat, the relief, the
    /// evidence and where the advice was checked (by default the verdict
    /// and the first sentences).
    #[arg(global = true, short = 'v', long)]
    pub explain: bool,

    /// The order of the listed sockets: severity (the worst finding, then
    /// the oldest), age (oldest first), queue (most bytes queued first),
    /// pid, or remote (by peer address).
    #[arg(global = true, long, value_enum, default_value_t = SortBy::Severity)]
    pub sort: SortBy,

    /// Where sockets are read from: netlink (sock_diag, with tcp_info), proc
    /// (/proc/net/tcp), or auto (netlink, else proc).
    #[arg(global = true, long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

    /// Scan another network namespace (a container): an `ip netns` name, a
    /// path such as /proc/PID/ns/net, the pid of a process inside it, or
    /// pod/NAMESPACE/NAME for a Kubernetes pod on this node.
    #[arg(global = true, long, value_name = "NAME|PATH|PID|pod/NS/NAME")]
    pub netns: Option<String>,

    /// Scan every network namespace in use on the host, each part labelled
    /// with its namespace and container (on a Kubernetes node, the pod and
    /// its container, from the cgroup and kubelet's logs).
    #[arg(global = true, long, conflicts_with = "netns")]
    pub all_netns: bool,

    /// With --port on the host: do not follow a port that a forwarder
    /// (docker-proxy) or NAT rules send into another network namespace;
    /// only say where it is served.
    #[arg(global = true, long, conflicts_with_all = ["netns", "all_netns"])]
    pub no_follow: bool,

    /// Report on a capture file instead of scanning: the same as
    /// `zombiescan analyze FILE`.
    #[arg(global = true, long, value_name = "FILE",
          conflicts_with_all = ["netns", "all_netns", "watch", "record"])]
    pub from: Option<PathBuf>,

    /// Do not look up the processes owning the sockets.
    #[arg(global = true, long, conflicts_with_all = ["pids", "processes"])]
    pub no_processes: bool,

    /// Repeat the scan every DURATION and show what changed: counts against
    /// the previous sample and the first, rates, how long sockets have been
    /// seen in their state. On a terminal, redrawn in place and cut to the
    /// screen. Ctrl-C ends it.
    #[arg(global = true, long, value_name = "DURATION")]
    pub watch: Option<String>,

    /// With --watch: stop after N samples.
    #[arg(global = true, long, value_name = "N", requires = "watch")]
    pub count: Option<u32>,

    /// Append one compact JSON line per sample to FILE (NDJSON), flushed and
    /// synced at each sample; read it back with `zombiescan report FILE`.
    /// With --watch and stdout not a terminal, nothing else is printed.
    #[arg(global = true, long, value_name = "FILE")]
    pub record: Option<PathBuf>,

    /// With --record: when FILE would pass SIZE (K, M, G suffixes), it is
    /// renamed FILE.1 (replacing the previous one) and a new FILE started.
    #[arg(global = true, long, value_name = "SIZE", requires = "record")]
    pub record_max: Option<String>,

    /// With --format prometheus and serve: the outbound remote endpoints
    /// (address and port, most connections first) with series of their
    /// own (default 20); the others are summed under remote="other".
    #[arg(global = true, long, value_name = "N", help_heading = "Prometheus")]
    pub top_remotes: Option<usize>,

    /// With --format prometheus and serve: one series per process with a
    /// pid label, instead of one per process name (pids change at every
    /// restart: each makes new series).
    #[arg(global = true, long, help_heading = "Prometheus")]
    pub pid_labels: bool,

    /// Exit with status 1 when a finding reaches this severity.
    #[arg(global = true, long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<FailOn>,

    /// An ESTABLISHED connection without data either way this long is idle
    /// (idle_no_keepalive). Units: ms, s, m, h.
    #[arg(
        global = true,
        long,
        value_name = "DURATION",
        default_value = "300s",
        help_heading = "Thresholds"
    )]
    pub idle: String,

    /// A queue without progress this long is stuck: unread Recv-Q
    /// (app_not_reading), a zero window (peer_not_reading), a CLOSE_WAIT or
    /// FIN_WAIT2 this old.
    #[arg(
        global = true,
        long,
        value_name = "DURATION",
        default_value = "10s",
        help_heading = "Thresholds"
    )]
    pub stall: String,

    /// Retransmissions (or backoff) of unacked data that make a peer dead
    /// (half_open).
    #[arg(
        global = true,
        long,
        value_name = "N",
        default_value_t = 3,
        help_heading = "Thresholds"
    )]
    pub retransmits: u8,

    /// A connection finding with this many sockets is critical.
    #[arg(
        global = true,
        long,
        value_name = "N",
        default_value_t = 100,
        help_heading = "Thresholds"
    )]
    pub critical_count: u32,

    /// File descriptors open / RLIMIT_NOFILE (or host handles / fs.file-max)
    /// at which fd_exhaustion is a warning.
    #[arg(
        global = true,
        long,
        value_name = "RATIO",
        default_value_t = 0.8,
        help_heading = "Thresholds"
    )]
    pub fd_warn: f64,

    /// ... and critical.
    #[arg(
        global = true,
        long,
        value_name = "RATIO",
        default_value_t = 0.95,
        help_heading = "Thresholds"
    )]
    pub fd_critical: f64,

    /// Use of a kernel table at which a finding is a warning: local ports
    /// per destination, TIME_WAIT buckets, orphans, SYN backlog, accept
    /// queue.
    #[arg(
        global = true,
        long,
        value_name = "RATIO",
        default_value_t = 0.5,
        help_heading = "Thresholds"
    )]
    pub pressure_warn: f64,

    /// ... and critical (an accept queue is critical when full).
    #[arg(
        global = true,
        long,
        value_name = "RATIO",
        default_value_t = 0.9,
        help_heading = "Thresholds"
    )]
    pub pressure_critical: f64,
}

#[derive(Clone, Debug, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Write everything a later analysis needs to one file.
    ///
    /// Sockets with their diag fields and tcp_info, owners, processes, host
    /// counters, kernel, time and namespace, in one compressed file, private
    /// (0600); the report of that same snapshot is printed as a scan prints
    /// it. Takes the scan's options.
    Capture {
        /// The file to write.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Report on a capture file as the scan would have.
    ///
    /// On any machine, as any user: the same filters, thresholds and
    /// formats. A capture is parsed as it is read and inflated, never held
    /// whole, up to 1 GiB; ZOMBIESCAN_MAX_INPUT=BYTES sets another bound.
    Analyze {
        /// A file written by `zombiescan capture`.
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
    /// The timeline of a recording (--record).
    ///
    /// When each state, finding, port and process began to rise, its peak
    /// and when. --format table
    /// (sparklines), markdown, html (a page with an SVG chart) or json
    /// (schema/zombiescan-timeline.schema.json). Read a
    /// line at a time; a line longer than 1 MiB is skipped and counted.
    Report {
        /// Recordings, oldest first (FILE.1 FILE after a rotation).
        #[arg(value_name = "FILE", required = true)]
        files: Vec<PathBuf>,
    },
    /// Close chosen sockets now, through the kernel.
    ///
    /// SOCK_DESTROY, as `ss -K` uses: the peer gets a RST, the owner's next
    /// write fails with ECONNABORTED (a read too, unless the peer had
    /// closed), the kernel frees the socket. Takes the scan's
    /// selectors (--port, --pid, --process, --netns, --all-netns) and at
    /// least one of --state and --finding. A dry run that lists what would
    /// go unless --yes; never a LISTEN socket unless --state LISTEN. Each
    /// socket is named by its addresses and inet_diag cookie: one that
    /// closed meanwhile, or a new one on the same ports, is never hit.
    /// Exit status with --yes: 0 when every socket was destroyed or was
    /// already gone, 1 when the kernel refused some, 3 when it refused all.
    Kill {
        /// The sockets this finding flagged (close_wait, half_open,
        /// peer_not_reading, fin_wait2, ...); repeatable.
        #[arg(long = "finding", value_name = "KIND", value_parser = finding_values())]
        findings: Vec<String>,
        /// Only sockets at least this old, by the age the finding uses (or
        /// the kernel's, for a state); a socket of unknown age is spared.
        #[arg(long, value_name = "DURATION")]
        older_than: Option<String>,
        /// Also connections still in an accept queue (never accepted):
        /// destroying one frees no queue slot, only the owner's accept() or
        /// a restart does, so they are left alone by default.
        #[arg(long)]
        include_queued: bool,
        /// Destroy them; without it nothing changes.
        #[arg(long)]
        yes: bool,
    },
    /// Serve the Prometheus metrics over HTTP: an exporter.
    ///
    /// GET /metrics scans (with the scan's options: --port, --all-netns,
    /// thresholds) and answers in the Prometheus text format; GET / is a
    /// page linking to it; anything else is 404. Concurrent scrapes share
    /// one scan; a scrape that waits longer than --scrape-timeout gets the
    /// last complete scan, its age in zombiescan_scan_age_seconds; a failed
    /// scan is zombiescan_scrape_error 1 and a line on stderr, and the
    /// exporter serves on. The owners' fd tables are remembered between
    /// scans, as a watch does. At most --max-connections are open, each
    /// must send its request within 5 s, and none costs a thread.
    /// SIGTERM or SIGINT stops it; SIGHUP reads --web-config again.
    Serve {
        /// The address and port to listen on. The default is loopback
        /// only: give 0.0.0.0:10130 (or an address) for a remote Prometheus.
        #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:10130")]
        listen: String,
        /// How long a scrape waits for its scan before it is answered with
        /// the last complete one (Prometheus's own timeout, in the
        /// X-Prometheus-Scrape-Timeout-Seconds header, shortens it). 0: never
        /// wait.
        #[arg(long, value_name = "DURATION", default_value = "5s")]
        scrape_timeout: String,
        /// TLS, basic authentication, response headers and a rate limit,
        /// in the format of Prometheus' exporter-toolkit (node_exporter's
        /// --web.config.file): tls_server_config, basic_auth_users (bcrypt
        /// hashes), http_server_config.headers, rate_limit. Read again on
        /// SIGHUP; a file that does not read then leaves the one before.
        #[arg(long, value_name = "FILE")]
        web_config: Option<PathBuf>,
        /// Connections open at once. When all are taken, a new one takes
        /// the place of the one idle the longest (in its TLS handshake,
        /// sending its request, or between requests); a request must
        /// arrive within 5 s of its connection or of the previous answer.
        #[arg(long, value_name = "N", default_value_t = 64)]
        max_connections: usize,
    },
    /// Print the shell completion script for bash, zsh or fish.
    ///
    /// bash: `zombiescan completions bash > /etc/bash_completion.d/zombiescan`;
    /// zsh: into a directory of $fpath as `_zombiescan`; fish: into
    /// ~/.config/fish/completions/zombiescan.fish.
    Completions {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FailOn {
    Warning,
    Critical,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    /// A report to paste into a ticket (GitHub, Jira).
    Markdown,
    /// Prometheus text exposition, for node_exporter's textfile collector
    /// (`zombiescan serve` is the exporter).
    Prometheus,
    /// `report` only: one self-contained page with a chart.
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Auto,
    Netlink,
    Proc,
}
