//! `zombiescan kill`: scan, choose, and with `yes` destroy, each part in
//! its own namespace.

use std::io::Write;

use crate::cli::Format;
use crate::config::Config;
use crate::error::{Error, Outcome, RunError};
use crate::model::Socket;
use crate::report::kill::{Choice, choose};
use crate::{collect, pipeline, render};

pub fn run(
    cfg: &Config,
    choice: &Choice,
    yes: bool,
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    let scanned = pipeline::scan(cfg, None)?;
    let reports = scanned.reports(cfg);
    let mut parts = Vec::new();
    for r in &reports {
        let (targets, spared) = choose(r, choice);
        let results = if yes && !targets.is_empty() {
            let sockets: Vec<&Socket> = targets.iter().map(|t| t.socket).collect();
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
        return Err(Error::Refused(format!(
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
