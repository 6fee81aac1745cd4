use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use zombiescan::cli::Cli;
use zombiescan::config::Config;
use zombiescan::{Outcome, RunError, run};

fn main() -> ExitCode {
    let color =
        io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let command_line = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let cfg = match Config::from_cli(Cli::parse(), color, command_line) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zombiescan: {e}");
            return ExitCode::from(2);
        }
    };
    // Stdout is line-buffered: a report of many lines would cost a write per line.
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match run(&cfg, &mut out) {
        Ok(Outcome { failed, notice }) => {
            if let Some(n) = notice {
                eprintln!("zombiescan: {n}");
            }
            if failed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(RunError::Output(e)) => {
            eprintln!("zombiescan: cannot write the report: {e}");
            ExitCode::from(3)
        }
        Err(RunError::Scan(e)) => {
            eprintln!("zombiescan: {e}");
            ExitCode::from(3)
        }
    }
}
