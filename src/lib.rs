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

use crate::cli::Format;
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
}

/// Scans, classifies, reports and renders to `out`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let snaps = if cfg.all_netns {
        collect::scan_all(&cfg.scan)?
    } else {
        vec![collect::scan(&cfg.scan)?]
    };
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
        (Format::Table, [one]) if !cfg.all_netns => render::table::write(one, cfg.color, out)?,
        (Format::Table, many) => render::table::write_all(many, cfg.color, out)?,
        (Format::Json, [one]) if !cfg.all_netns => render::json::write(one, out)?,
        (Format::Json, many) => render::json::write_all(many, out)?,
        (Format::Markdown, many) => render::markdown::write(many, &cfg.command_line, out)?,
    }
    out.flush()?;
    Ok(Outcome { failed })
}
