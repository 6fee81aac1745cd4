//! zombiescan: Linux TCP connection-state diagnostics.
//!
//! Data flows one way: `collect` reads the kernel into a `model::Snapshot`,
//! `report` groups it, `render` writes it. Only `collect` touches the OS.

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

/// Scans, reports and renders to `out`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<(), RunError> {
    let snap = collect::scan(&cfg.scan)?;
    let report = Report::new(&snap, &cfg.report);
    match cfg.format {
        Format::Table => render::table::write(&report, cfg.color, out)?,
        Format::Json => render::json::write(&report, out)?,
    }
    out.flush()?;
    Ok(())
}
