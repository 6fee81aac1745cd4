//! `--watch` and `--record`: sample until `--count` or a signal; on a
//! terminal the page is redrawn in place, and each sample can be appended
//! to a recording.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{STOP, term};
use crate::cli::Format;
use crate::config::{Config, Watch};
use crate::error::{Error, Outcome, RunError};
use crate::report::{Report, timeline, watch};
use crate::{collect, pipeline, render};

pub fn run(cfg: &Config, w: &Watch, out: &mut dyn Write) -> Result<Outcome, RunError> {
    // One per network namespace: --all-netns follows each on its own.
    let mut watches: HashMap<Option<u64>, watch::Watch> = HashMap::new();
    let mut memory = collect::procs::Memory::default();
    let mut failed_any = false;
    let mut n = 0u32;
    let redraw = cfg.tty && cfg.format == Format::Table;
    let quiet = w.record.is_some() && !cfg.tty;
    loop {
        let started = Instant::now();
        let scanned = pipeline::scan(cfg, Some(&mut memory))?;
        let mut reports = scanned.reports(cfg);
        for r in &mut reports {
            // The ages and rates are shown, never recorded.
            if w.observes(cfg.tty) {
                let seen = watches.entry(r.snapshot.netns.inode).or_default();
                r.watch = Some(seen.observe(r.snapshot, &r.summary.by_state));
            }
            if let Some(path) = &w.record {
                record(path, w.record_max, r)?;
            }
        }
        failed_any |= pipeline::failed(cfg, &reports);
        if redraw {
            let mut page = Vec::new();
            render::table::write_page(&reports, term::look(cfg), &mut page)?;
            term::redraw(&String::from_utf8_lossy(&page), out)?;
        } else if !quiet {
            if n > 0 {
                out.write_all(b"\n")?;
            }
            super::write(cfg, &reports, out)?;
            out.flush()?;
        }
        n += 1;
        let Some(interval) = w.interval else { break };
        if w.count.is_some_and(|c| n >= c) {
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

/// Appends one sample line to the recording, rotating it past its size
/// limit. One write of a whole line, then fsync: a recorder killed at any
/// moment leaves complete lines, and at most a torn last one.
fn record(path: &Path, max: Option<u64>, r: &Report) -> Result<(), RunError> {
    let failed = |e| Error::write(path, e);
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
