//! The library's error type. Every message names what failed and what to do.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "cannot open a NETLINK_SOCK_DIAG socket: {0}; use --source proc to read /proc/net/tcp instead"
    )]
    NetlinkUnavailable(#[source] io::Error),
    #[error("cannot read {}: {source}; mount /proc, or use --source netlink", path.display())]
    ProcUnavailable {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("network namespace {}: {reason}", path.display())]
    Netns { path: PathBuf, reason: String },
    #[error("netlink sock_diag dump failed: {0}")]
    Netlink(String),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("capture {file}: {detail}")]
    Capture { file: String, detail: String },
    #[error("malformed {what}: {detail}")]
    Malformed { what: String, detail: String },
    #[error("kill: {0}")]
    Refused(String),
    #[error(
        "serve: cannot listen on {addr}: {reason}; is another exporter there? --listen ADDR:PORT picks another"
    )]
    Listen { addr: String, reason: String },
}

impl Error {
    pub fn read(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Read {
            path: path.into(),
            source,
        }
    }

    pub fn write(path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Write {
            path: path.into(),
            source,
        }
    }

    pub fn malformed(what: impl Into<String>, detail: impl Into<String>) -> Error {
        Error::Malformed {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a run did not end in a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scan itself failed: exit status 3.
    #[error(transparent)]
    Scan(#[from] Error),
    /// Writing the output failed (a closed pipe is not an error).
    #[error("cannot write the report: {0}")]
    Output(#[from] io::Error),
}

/// How a run ended.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// A finding reached `--fail-on`: exit status 1.
    pub failed: bool,
    /// A line for stderr (what `capture` wrote).
    pub notice: Option<String>,
}

/// The exit statuses (`--help` and the man page list them in
/// [`crate::cli::EXIT_STATUS`]).
pub mod exit {
    /// Scanned; nothing reached `--fail-on`.
    pub const OK: u8 = 0;
    /// A finding reached `--fail-on` (kill --yes: the kernel refused some).
    pub const FINDINGS: u8 = 1;
    /// A usage error.
    pub const USAGE: u8 = 2;
    /// Could not scan, read or write.
    pub const FAILED: u8 = 3;
}
