//! What every mode shares: scan (or read), classify, report.

use crate::classify::Finding;
use crate::collect;
use crate::config::Config;
use crate::error::Error;
use crate::model::Snapshot;
use crate::report::Report;
use crate::{classify, model};

/// Snapshots and their findings, classified once.
pub struct Scanned {
    pub snapshots: Vec<Snapshot>,
    findings: Vec<Vec<Finding>>,
}

impl Scanned {
    /// Classifies each snapshot.
    pub fn new(cfg: &Config, snapshots: Vec<Snapshot>) -> Scanned {
        let findings = snapshots
            .iter()
            .map(|s| classify::classify(s, &cfg.thresholds))
            .collect();
        Scanned {
            snapshots,
            findings,
        }
    }

    /// Every snapshot reported; findings that meet across namespaces
    /// (a FIN_WAIT2 here, its CLOSE_WAIT there) say so.
    pub fn reports(&self, cfg: &Config) -> Vec<Report<'_>> {
        let mut findings = self.findings.clone();
        let snaps: Vec<&Snapshot> = self.snapshots.iter().collect();
        classify::across(&snaps, &mut findings);
        self.snapshots
            .iter()
            .zip(findings)
            .map(|(snap, f)| report(cfg, snap, f))
            .collect()
    }
}

/// One scan, one snapshot per network namespace (`--all-netns`: each
/// namespace in use), classified. Where a finding blames processes, what
/// they wait on is looked up (their connections elsewhere, their blocked
/// threads) and the snapshot classified again with it: a healthy scan
/// pays nothing for it. A watch or the exporter passes the same `memory`
/// to each of its scans.
pub fn scan(cfg: &Config, memory: Option<&mut collect::procs::Memory>) -> Result<Scanned, Error> {
    let snaps = if cfg.all_netns {
        collect::scan_all(&cfg.scan, memory)?
    } else {
        collect::scan(&cfg.scan, memory)?
    };
    let mut scanned = Scanned::new(cfg, snaps);
    for (snap, findings) in scanned.snapshots.iter_mut().zip(&mut scanned.findings) {
        let pids = classify::blamed(findings);
        collect::waiting::probe(snap, &pids);
        if !snap.waiting.is_empty() {
            *findings = classify::classify(snap, &cfg.thresholds);
        }
    }
    Ok(scanned)
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

/// A snapshot reported with its findings, and the pointers to trouble
/// elsewhere.
fn report<'a>(cfg: &Config, snap: &'a model::Snapshot, findings: Vec<Finding>) -> Report<'a> {
    let mut r = Report::new(snap, findings, &cfg.report);
    // The command to look elsewhere enters the same namespace again.
    let enter = match &cfg.scan.netns {
        Some(arg) => Some(arg.as_str()),
        None => snap.netns.enter.as_deref(),
    };
    r.hints
        .extend(classify::pointers(snap, &cfg.thresholds, enter));
    r
}

/// A finding reached `--fail-on`.
pub fn failed(cfg: &Config, reports: &[Report]) -> bool {
    cfg.fail_on.is_some_and(|at| {
        reports
            .iter()
            .any(|r| r.findings.iter().any(|f| f.severity >= at))
    })
}
