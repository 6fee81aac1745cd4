use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::Parser;
use zombiescan::cli::Cli;
use zombiescan::config::Config;
use zombiescan::error::exit;
use zombiescan::{Outcome, RunError, run};

fn main() -> ExitCode {
    fixed_mmap_threshold();
    let tty = io::stdout().is_terminal();
    let color = tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let command_line = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version: clap's own output and status.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            say(&one_line(&e.to_string()));
            return ExitCode::from(exit::USAGE);
        }
    };
    let cfg = match Config::from_cli(cli, tty, color, command_line) {
        Ok(c) => c,
        Err(e) => {
            say(&e);
            return ExitCode::from(exit::USAGE);
        }
    };
    // Stdout is line-buffered: a report of many lines would cost a write per line.
    if cfg.mode.until_stopped() {
        stop_on_signals();
    }
    let mut out = io::BufWriter::with_capacity(1 << 16, io::stdout().lock());
    match run(&cfg, &mut out) {
        Ok(Outcome { failed, notice }) => {
            if let Some(n) = notice {
                say(&n);
            }
            ExitCode::from(if failed { exit::FINDINGS } else { exit::OK })
        }
        Err(RunError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(RunError::Output(e)) => {
            say(&format!("cannot write the report: {e}"));
            ExitCode::from(exit::FAILED)
        }
        Err(RunError::Scan(e)) => {
            say(&e);
            ExitCode::from(exit::FAILED)
        }
    }
}

/// A usage error of clap's in one line: its message and the values it
/// lists, without the usage block and the pointer to --help.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .filter(|l| !l.is_empty())
        .map(|l| l.strip_prefix("error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One line on stderr. An error can quote what it read (a capture's field,
/// a path): it is escaped as any text from outside, so that it stays one
/// line and carries no control sequence.
fn say(msg: &dyn std::fmt::Display) {
    eprintln!(
        "zombiescan: {}",
        zombiescan::render::sanitize::terminal(msg.to_string().as_bytes())
    );
}

/// Ctrl-C (or SIGTERM) ends a watch cleanly, after the current sample, and
/// stops the exporter.
fn stop_on_signals() {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    extern "C" fn stop(_: nix::libc::c_int) {
        zombiescan::STOP.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let action = SigAction::new(SigHandler::Handler(stop), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic.
        let _ = unsafe { sigaction(sig, &action) };
    }
}

/// glibc raises its mmap threshold to the size of each large block freed
/// (up to 32 MiB: `M_MMAP_THRESHOLD` in mallopt(3)), after which a large
/// vector grows inside the heap, by copying, the old copy left resident.
/// Fixed at its default (128 KiB), every large vector is mapped on its own
/// and grows in place (mremap): 1.5 MiB less at the peak of a scan of
/// 100,000 connections.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn fixed_mmap_threshold() {
    const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only sets a parameter of the allocator; called
    // before any thread starts.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn fixed_mmap_threshold() {}
