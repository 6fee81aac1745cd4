//! zombiescan: Linux TCP connection-state diagnostics.
//!
//! Data flows one way: `collect` reads the kernel into a `model::Snapshot`,
//! `report` groups it, `render` writes it. Only `collect` touches the OS.

pub mod classify;
pub mod cli;
pub mod collect;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod kill;
pub mod model;
pub mod render;
pub mod report;
pub mod serve;
pub mod timeline;
pub mod watch;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::cli::{Command, Format};
use crate::config::Config;
use crate::report::Report;

/// Why a run did not end in a report.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The scan itself failed: exit status 3.
    #[error(transparent)]
    Scan(#[from] error::Error),
    /// Writing the output failed (a closed pipe is not an error).
    #[error("cannot write the report: {0}")]
    Output(#[from] std::io::Error),
}

/// How a run ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// A finding reached `--fail-on`: exit status 1.
    pub failed: bool,
    /// A line for stderr (what `capture` wrote).
    pub notice: Option<String>,
}

/// Scans (or reads a capture), classifies, reports and renders to `out`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<Outcome, RunError> {
    if let Some(Command::Report { files }) = &cfg.command {
        return timeline_report(cfg, files, out);
    }
    if let Some(Command::Completions { shell }) = &cfg.command {
        use clap::CommandFactory;
        use clap_complete::Shell;
        let shell = match shell {
            cli::CompletionShell::Bash => Shell::Bash,
            cli::CompletionShell::Zsh => Shell::Zsh,
            cli::CompletionShell::Fish => Shell::Fish,
        };
        clap_complete::generate(shell, &mut cli::Cli::command(), "zombiescan", out);
        out.flush()?;
        return Ok(Outcome {
            failed: false,
            notice: None,
        });
    }
    if cfg.watch.is_some() || cfg.record.is_some() {
        return watch(cfg, out);
    }
    if let Some((listen, timeout)) = cfg.serve {
        return serve::serve(cfg, listen, timeout);
    }
    if let Some((choice, yes)) = &cfg.kill {
        return kill(cfg, choice, *yes, out);
    }
    let mut notice = None;
    let snaps = match &cfg.command {
        None
        | Some(
            Command::Report { .. }
            | Command::Kill { .. }
            | Command::Completions { .. }
            | Command::Serve { .. },
        ) => scan(cfg, None)?,
        // The capture, and the report of the very same snapshot.
        Some(Command::Capture { output }) => {
            let snaps = scan(cfg, None)?;
            collect::capture::write(output, &snaps)?;
            let sockets: usize = snaps.iter().map(|s| s.sockets.len()).sum();
            notice = Some(format!(
                "captured {sockets} sockets in {} network namespace{} to {}",
                snaps.len(),
                if snaps.len() == 1 { "" } else { "s" },
                output.display()
            ));
            snaps
        }
        Some(Command::Analyze { file }) => {
            let mut snaps = collect::capture::read(file)?;
            let f = &cfg.scan.filter;
            if !(f.ports.is_empty()
                && f.pids.is_empty()
                && f.processes.is_empty()
                && f.states.is_empty())
            {
                for snap in &mut snaps {
                    snap.narrow(f);
                }
            }
            snaps
        }
    };
    let reports: Vec<Report> = snaps.iter().map(|snap| report(cfg, snap)).collect();
    render(cfg, &reports, out)?;
    out.flush()?;
    Ok(Outcome {
        failed: failed(cfg, &reports),
        notice,
    })
}

/// `zombiescan kill`: scan, choose, and with `yes` destroy, each part in
/// its own namespace.
fn kill(
    cfg: &Config,
    choice: &kill::Choice,
    yes: bool,
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    let snaps = scan(cfg, None)?;
    let reports: Vec<Report> = snaps.iter().map(|snap| report(cfg, snap)).collect();
    let mut parts = Vec::new();
    for r in &reports {
        let (targets, spared) = kill::choose(r, choice);
        let results = if yes && !targets.is_empty() {
            let sockets: Vec<&model::Socket> = targets.iter().map(|t| t.socket).collect();
            let ns = &r.snapshot.netns;
            let destroyed = match (&cfg.scan.netns, &ns.enter) {
                _ if ns.own => collect::destroy::destroy(&sockets),
                (Some(arg), _) | (None, Some(arg)) => {
                    let path = collect::netns::resolve(arg)?;
                    collect::netns::run_in(&path, || collect::destroy::destroy(&sockets))
                }
                (None, None) => collect::destroy::destroy(&sockets),
            };
            Some(destroyed?)
        } else {
            None
        };
        parts.push(render::kill::Part {
            snapshot: r.snapshot,
            targets,
            spared,
            results,
        });
    }
    let doc = render::kill::document(&parts, !yes);
    match cfg.format {
        Format::Json => render::kill::write_json(&doc, out)?,
        _ => render::kill::write_table(&doc, out)?,
    }
    out.flush()?;
    let s = &doc.summary;
    if yes && s.refused > 0 && s.destroyed + s.already_gone == 0 {
        let why = doc
            .sockets
            .iter()
            .find_map(|k| k.reason.clone())
            .unwrap_or_default();
        return Err(error::Error::Refused(format!(
            "the kernel destroyed none of the {} sockets: {why}",
            s.refused
        ))
        .into());
    }
    Ok(Outcome {
        failed: yes && s.refused > 0,
        notice: None,
    })
}

/// Set by SIGINT/SIGTERM: a watch ends after the current sample.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// One scan; a watch passes the same `memory` to each of its scans.
fn scan(
    cfg: &Config,
    memory: Option<&mut collect::procs::Memory>,
) -> Result<Vec<model::Snapshot>, error::Error> {
    if cfg.all_netns {
        collect::scan_all(&cfg.scan, memory)
    } else {
        collect::scan(&cfg.scan, memory)
    }
}

fn report<'a>(cfg: &Config, snap: &'a model::Snapshot) -> Report<'a> {
    let mut r = Report::new(snap, classify::classify(snap, &cfg.thresholds), &cfg.report);
    // The command to look elsewhere enters the same namespace again.
    let enter = match &cfg.scan.netns {
        Some(arg) => Some(arg.as_str()),
        None => snap.netns.enter.as_deref(),
    };
    r.hints
        .extend(classify::pointers(snap, &cfg.thresholds, enter));
    r
}

fn failed(cfg: &Config, reports: &[Report]) -> bool {
    cfg.fail_on.is_some_and(|at| {
        reports
            .iter()
            .any(|r| r.findings.iter().any(|f| f.severity >= at))
    })
}

fn render(cfg: &Config, reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    // --all-netns labels each namespace, even when there is only one.
    let many = reports.len() > 1 || cfg.all_netns;
    match (cfg.format, reports) {
        (Format::Table, [one]) if !many => render::table::write(one, look(cfg), out),
        (Format::Table, all) => render::table::write_all(all, look(cfg), out),
        (Format::Json, [one]) if !many => render::json::write(one, out),
        (Format::Json, all) => render::json::write_all(all, out),
        (Format::Prometheus, all) => render::prometheus::write(all, &cfg.metrics, out),
        (Format::Markdown | Format::Html, all) => {
            render::markdown::write(all, &cfg.command_line, out)
        }
    }
}

/// Appends one sample line to the recording, rotating it past its size
/// limit. One write of a whole line, then fsync: a recorder killed at any
/// moment leaves complete lines, and at most a torn last one.
fn record(path: &Path, max: Option<u64>, r: &Report) -> Result<(), RunError> {
    let failed = |e| error::Error::write(path, e);
    let mut line = serde_json::to_vec(&timeline::sample(r)).map_err(std::io::Error::other)?;
    line.push(b'\n');
    if let Some(max) = max {
        let size = std::fs::metadata(path).map_or(0, |m| m.len());
        if size > 0 && size + line.len() as u64 > max {
            let mut old = path.as_os_str().to_owned();
            old.push(".1");
            std::fs::rename(path, &old).map_err(failed)?;
        }
    }
    let mut f = collect::capture::create_private(path, true).map_err(failed)?;
    f.write_all(&line).map_err(failed)?;
    f.sync_data().map_err(failed)?;
    Ok(())
}

/// How the table output looks: colour, and the width to fit: the
/// terminal's, else COLUMNS, else none (piped: natural width). A terminal
/// that reports 0 columns (script(1), some CI runners) counts as none.
fn look(cfg: &Config) -> render::table::Look {
    let cols = if cfg.tty {
        terminal_size().map(|(_, c)| c)
    } else {
        None
    };
    let env = || {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
    };
    render::table::Look {
        color: cfg.color,
        width: cols.or_else(env),
    }
}

/// The rows and columns of the terminal on stdout.
fn terminal_size() -> Option<(usize, usize)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer given.
    let r = unsafe { nix::libc::ioctl(1, nix::libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then(|| (ws.ws_row.into(), ws.ws_col.into()))
}

/// `--watch` and `--record`: sample until `--count` or a signal.
fn watch(cfg: &Config, out: &mut dyn Write) -> Result<Outcome, RunError> {
    // One per network namespace: --all-netns follows each on its own.
    let mut watches: std::collections::HashMap<Option<u64>, watch::Watch> =
        std::collections::HashMap::new();
    let mut memory = collect::procs::Memory::default();
    let mut failed_any = false;
    let mut n = 0u32;
    let redraw = cfg.tty && cfg.format == Format::Table;
    let quiet = cfg.record.is_some() && !cfg.tty;
    loop {
        let started = Instant::now();
        let snaps = scan(cfg, Some(&mut memory))?;
        let mut reports: Vec<Report> = snaps.iter().map(|snap| report(cfg, snap)).collect();
        for r in &mut reports {
            // The ages and rates are shown, never recorded.
            if !quiet {
                let w = watches.entry(r.snapshot.netns.inode).or_default();
                r.watch = cfg
                    .watch
                    .map(|_| w.observe(r.snapshot, &r.summary.by_state));
            }
            if let Some(path) = &cfg.record {
                record(path, cfg.record_max, r)?;
            }
        }
        failed_any |= failed(cfg, &reports);
        if redraw {
            let mut page = Vec::new();
            render::table::write_page(&reports, look(cfg), &mut page)?;
            let page = String::from_utf8_lossy(&page);
            let page = match terminal_size() {
                Some((rows, cols)) => render::table::fit_screen(&page, rows, cols),
                None => page.into_owned(),
            };
            // As top does: home, each line over the last sample's and the
            // rest of it cleared, then the rest of the screen (clearing the
            // whole screen first would flicker). No line feed after the last
            // line: on the bottom row it would scroll the top line away.
            out.write_all(b"\x1b[H")?;
            for (i, line) in page.lines().enumerate() {
                if i > 0 {
                    out.write_all(b"\n")?;
                }
                out.write_all(line.as_bytes())?;
                out.write_all(b"\x1b[K")?;
            }
            out.write_all(b"\x1b[J")?;
            out.flush()?;
        } else if !quiet {
            if n > 0 {
                out.write_all(b"\n")?;
            }
            render(cfg, &reports, out)?;
            out.flush()?;
        }
        n += 1;
        let Some(interval) = cfg.watch else { break };
        if cfg.count.is_some_and(|c| n >= c) {
            break;
        }
        while started.elapsed() < interval && !STOP.load(Ordering::Relaxed) {
            std::thread::sleep(
                Duration::from_millis(50).min(interval.saturating_sub(started.elapsed())),
            );
        }
        if STOP.load(Ordering::Relaxed) {
            break;
        }
    }
    if redraw {
        // The prompt goes below the last page, not after its last line.
        out.write_all(b"\n")?;
        out.flush()?;
    }
    Ok(Outcome {
        failed: failed_any,
        notice: None,
    })
}

/// `zombiescan report FILE...`: the timeline of recordings.
fn timeline_report(
    cfg: &Config,
    files: &[PathBuf],
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    let mut timeline = timeline::Builder::default();
    for f in files {
        let file = collect::capture::open_input_stream(f)
            .map_err(|detail| error::Error::read(f, std::io::Error::other(detail)))?;
        timeline
            .read(std::io::BufReader::with_capacity(1 << 16, file))
            .map_err(|e| error::Error::read(f, e))?;
    }
    if timeline.rounds() == 0 {
        return Err(error::Error::malformed(
            files
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            "no sample: not a zombiescan recording (--record FILE writes one)",
        )
        .into());
    }
    let tl = timeline.finish();
    let what = files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    match cfg.format {
        Format::Markdown => render::timeline::write_markdown(&tl, &what, out)?,
        Format::Html => render::timeline::write_html(&tl, &what, out)?,
        Format::Json => {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            render::timeline::write_json(&tl, &names, out)?;
        }
        Format::Table => render::timeline::write_table(&tl, &what, out)?,
        // Refused with a usage error when the options are read.
        Format::Prometheus => {}
    }
    out.flush()?;
    Ok(Outcome {
        failed: false,
        notice: None,
    })
}
