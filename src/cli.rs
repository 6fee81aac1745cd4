//! The command line, clap derive only: flags, help text, value enums. Input
//! checks live in `config.rs`.

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
Examples:
  zombiescan --port 30020              who holds port 30020, in which state
  zombiescan --port 30020 --json | jq '.summary.by_state.CLOSE_WAIT'
  zombiescan --process uvicorn --state CLOSE_WAIT --sockets
  zombiescan --pid 4242 --json         the sockets of one process
  zombiescan --source proc             read /proc/net/tcp instead of netlink

Exit status: 0 scanned; 2 usage error; 3 could not scan (no socket source
usable, permission).";

/// Which connections exist, in which state, owned by which process, and how
/// near each owner is to its file-descriptor limit.
#[derive(Debug, Parser)]
#[command(name = "zombiescan", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Only sockets whose local or remote port is PORT (repeatable).
    /// Filtered in the kernel.
    #[arg(short, long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// Only sockets held by process PID (repeatable).
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Only sockets held by processes whose name (comm) or one of whose
    /// command-line words is NAME (repeatable).
    #[arg(long = "process", value_name = "NAME")]
    pub processes: Vec<String>,

    /// Only sockets in state STATE, a kernel name such as ESTABLISHED or
    /// CLOSE_WAIT (repeatable).
    #[arg(short, long = "state", value_name = "STATE")]
    pub states: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Same as --format json.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,

    /// List every socket in full, not only the flagged ones.
    #[arg(long)]
    pub sockets: bool,

    /// Where sockets are read from: netlink (sock_diag, with tcp_info), proc
    /// (/proc/net/tcp), or auto (netlink, else proc).
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

    /// Do not look up the processes owning the sockets.
    #[arg(long, conflicts_with_all = ["pids", "processes"])]
    pub no_processes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    Auto,
    Netlink,
    Proc,
}
