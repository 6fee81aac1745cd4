use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use zombiescan::cli::Cli;
use zombiescan::config::Config;
use zombiescan::{RunError, run};

fn main() -> ExitCode {
    let color =
        io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let cfg = match Config::from_cli(Cli::parse(), color) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("zombiescan: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = io::stdout().lock();
    match run(&cfg, &mut out) {
        Ok(()) => ExitCode::SUCCESS,
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
