//! The parsed command line, validated into what a run needs. Every input
//! check lives here.

use crate::cli::{Cli, Format, SourceArg};
use crate::collect::{ScanOptions, SourceChoice};
use crate::model::{Filter, TcpState};
use crate::report;

#[derive(Clone, Debug)]
pub struct Config {
    pub scan: ScanOptions,
    pub report: report::Options,
    pub format: Format,
    /// Colour in the table output.
    pub color: bool,
}

/// A usage error: one line, exit status 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Config {
    /// `color` is whether stdout is a terminal and NO_COLOR is unset.
    pub fn from_cli(cli: Cli, color: bool) -> Result<Config, UsageError> {
        if cli.ports.contains(&0) {
            return Err(UsageError(
                "--port 0 matches nothing: give a port from 1 to 65535".into(),
            ));
        }
        let mut states = Vec::new();
        for s in &cli.states {
            let st = TcpState::from_name(s).ok_or_else(|| {
                UsageError(format!(
                    "unknown state '{s}': use one of {}",
                    TcpState::ALL.map(TcpState::name).join(", ")
                ))
            })?;
            if !states.contains(&st) {
                states.push(st);
            }
        }
        let mut ports = cli.ports;
        ports.sort_unstable();
        ports.dedup();
        let format = if cli.json { Format::Json } else { cli.format };
        Ok(Config {
            scan: ScanOptions {
                source: match cli.source {
                    SourceArg::Auto => SourceChoice::Auto,
                    SourceArg::Netlink => SourceChoice::Netlink,
                    SourceArg::Proc => SourceChoice::Proc,
                },
                filter: Filter {
                    ports,
                    pids: cli.pids,
                    processes: cli.processes,
                    states,
                },
                owners: !cli.no_processes,
            },
            report: report::Options {
                all_sockets: cli.sockets,
            },
            format,
            color: color && format == Format::Table,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cfg(args: &[&str]) -> Result<Config, UsageError> {
        let cli = Cli::try_parse_from(std::iter::once("zombiescan").chain(args.iter().copied()))
            .map_err(|e| UsageError(e.to_string()))?;
        Config::from_cli(cli, false)
    }

    #[test]
    fn states_ports_and_format() {
        let c = cfg(&[
            "--port",
            "30020",
            "-p",
            "80",
            "-p",
            "80",
            "--state",
            "close-wait",
            "--json",
        ])
        .expect("valid");
        assert_eq!(c.scan.filter.ports, vec![80, 30020]);
        assert_eq!(c.scan.filter.states, vec![TcpState::CloseWait]);
        assert_eq!(c.format, Format::Json);
        assert!(cfg(&["--state", "HALF_OPEN"]).is_err());
        assert!(cfg(&["--port", "0"]).is_err());
        assert!(cfg(&["--port", "70000"]).is_err());
        assert!(cfg(&["--pid", "1", "--no-processes"]).is_err());
    }

    #[test]
    fn verify_cli() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
