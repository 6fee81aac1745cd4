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
    let snap = collect::scan(&cfg.scan)?;
    let findings = classify::classify(&snap, &cfg.thresholds);
    let failed = cfg
        .fail_on
        .is_some_and(|at| findings.iter().any(|f| f.severity >= at));
    let report = Report::new(&snap, findings, &cfg.report);
    match cfg.format {
        Format::Table => render::table::write(&report, cfg.color, out)?,
        Format::Json => render::json::write(&report, out)?,
        Format::Markdown => render::markdown::write(&report, &cfg.command_line, out)?,
    }
    out.flush()?;
    Ok(Outcome { failed })
}
