//! zombiescan: Linux TCP connection-state diagnostics.
//!
//! Data flows one way: `collect` reads the kernel into a `model::Snapshot`,
//! `report` groups it, `render` writes it. Only `collect` touches the OS.

pub mod classify;
pub mod cli;
pub mod collect;
pub mod config;
pub mod error;
pub mod model;
pub mod render;
pub mod report;

use std::io::Write;

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
    let scan = || -> Result<Vec<model::Snapshot>, error::Error> {
        if cfg.all_netns {
            collect::scan_all(&cfg.scan)
        } else {
            Ok(vec![collect::scan(&cfg.scan)?])
        }
    };
    let mut notice = None;
    let snaps = match &cfg.command {
        None => scan()?,
        // The capture, and the report of the very same snapshot.
        Some(Command::Capture { output }) => {
            let snaps = scan()?;
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
    let many = snaps.len() > 1 || cfg.all_netns;
    let reports: Vec<Report> = snaps
        .iter()
        .map(|snap| Report::new(snap, classify::classify(snap, &cfg.thresholds), &cfg.report))
        .collect();
    let failed = cfg.fail_on.is_some_and(|at| {
        reports
            .iter()
            .any(|r| r.findings.iter().any(|f| f.severity >= at))
    });
    match (cfg.format, reports.as_slice()) {
        (Format::Table, [one]) if !many => render::table::write(one, cfg.color, out)?,
        (Format::Table, all) => render::table::write_all(all, cfg.color, out)?,
        (Format::Json, [one]) if !many => render::json::write(one, out)?,
        (Format::Json, all) => render::json::write_all(all, out)?,
        (Format::Markdown, many) => render::markdown::write(many, &cfg.command_line, out)?,
    }
    out.flush()?;
    Ok(Outcome { failed, notice })
}
