//! What every mode shares: scan (or read), classify, report.

use crate::collect;
use crate::config::Config;
use crate::error::Error;
use crate::model::Snapshot;
use crate::report::Report;
use crate::{classify, model};

/// One scan, one snapshot per network namespace (`--all-netns`: each
/// namespace in use). A watch or the exporter passes the same `memory` to
/// each of its scans.
pub fn scan(
    cfg: &Config,
    memory: Option<&mut collect::procs::Memory>,
) -> Result<Vec<Snapshot>, Error> {
    if cfg.all_netns {
        collect::scan_all(&cfg.scan, memory)
    } else {
        collect::scan(&cfg.scan, memory)
    }
}

/// The snapshots of a capture file, narrowed to the scan's filters.
pub fn read_capture(cfg: &Config, file: &std::path::Path) -> Result<Vec<Snapshot>, Error> {
    let mut snaps = collect::capture::read(file)?;
    let f = &cfg.scan.filter;
    if !(f.ports.is_empty() && f.pids.is_empty() && f.processes.is_empty() && f.states.is_empty()) {
        for snap in &mut snaps {
            snap.narrow(f);
        }
    }
    Ok(snaps)
}

/// A snapshot classified and reported, with the pointers to trouble
/// elsewhere.
pub fn report<'a>(cfg: &Config, snap: &'a model::Snapshot) -> Report<'a> {
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

/// Every snapshot reported.
pub fn reports<'a>(cfg: &Config, snaps: &'a [Snapshot]) -> Vec<Report<'a>> {
    snaps.iter().map(|snap| report(cfg, snap)).collect()
}

/// A finding reached `--fail-on`.
pub fn failed(cfg: &Config, reports: &[Report]) -> bool {
    cfg.fail_on.is_some_and(|at| {
        reports
            .iter()
            .any(|r| r.findings.iter().any(|f| f.severity >= at))
    })
}
