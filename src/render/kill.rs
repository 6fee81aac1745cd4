//! What `zombiescan kill` chose and what became of it: a table, or JSON
//! (schema/zombiescan-kill.schema.json).

use std::io::{self, Write};

use serde::{Deserialize, Serialize};

use crate::model::{Destroyed, Snapshot};
use crate::render::sanitize::terminal;
use crate::report::kill::{Spared, Target};
use crate::units::human;

pub const KILL_SCHEMA_VERSION: u32 = 1;

/// One namespace's part of a kill: its snapshot, the sockets chosen, what
/// was spared, and (with --yes) what became of each.
pub struct Part<'a> {
    pub snapshot: &'a Snapshot,
    pub targets: Vec<Target<'a>>,
    pub spared: Spared,
    pub results: Option<Vec<Destroyed>>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KillDoc {
    pub schema_version: u32,
    /// No --yes: nothing was changed.
    pub dry_run: bool,
    pub sockets: Vec<KillSocket>,
    pub summary: KillSummary,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct KillSocket {
    /// The namespace's label when it is not zombiescan's own.
    pub netns: Option<String>,
    pub state: String,
    pub local: String,
    pub remote: String,
    pub pids: Vec<u32>,
    pub comm: Option<String>,
    pub age_s: Option<f64>,
    /// The findings that flagged it, among those asked for.
    pub why: Vec<String>,
    /// destroyed, already_gone or refused; null in a dry run.
    pub result: Option<String>,
    pub reason: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct KillSummary {
    pub chosen: u32,
    pub destroyed: u32,
    pub already_gone: u32,
    pub refused: u32,
    /// Younger than --older-than.
    pub spared_young: u32,
    /// Of unknown age, with --older-than.
    pub spared_age_unknown: u32,
    /// Unix sockets the selectors matched, which SOCK_DESTROY cannot close.
    #[serde(default)]
    pub unix_not_closed: u32,
    /// Connections still in an accept queue, left alone without
    /// --include-queued: destroying one frees no queue slot.
    #[serde(default)]
    pub spared_queued: u32,
}

fn result_words(d: &Destroyed) -> (&'static str, Option<&str>) {
    match d {
        Destroyed::Destroyed => ("destroyed", None),
        Destroyed::AlreadyGone => ("already_gone", None),
        Destroyed::Refused(why) => ("refused", Some(why)),
    }
}

pub fn document(parts: &[Part], dry_run: bool) -> KillDoc {
    let mut doc = KillDoc {
        schema_version: KILL_SCHEMA_VERSION,
        dry_run,
        sockets: Vec::new(),
        summary: KillSummary::default(),
    };
    for p in parts {
        let snap = p.snapshot;
        doc.summary.spared_young += p.spared.young;
        doc.summary.spared_age_unknown += p.spared.age_unknown;
        doc.summary.unix_not_closed += p.spared.unix;
        doc.summary.spared_queued += p.spared.queued;
        for (i, t) in p.targets.iter().enumerate() {
            let s = t.socket;
            let pids = snap.owners_of(s).to_vec();
            let result = p.results.as_ref().and_then(|r| r.get(i));
            let (res, reason) = result.map_or((None, None), |d| {
                let (w, r) = result_words(d);
                (Some(w.to_string()), r.map(str::to_string))
            });
            match result {
                Some(Destroyed::Destroyed) => doc.summary.destroyed += 1,
                Some(Destroyed::AlreadyGone) => doc.summary.already_gone += 1,
                Some(Destroyed::Refused(_)) => doc.summary.refused += 1,
                None => {}
            }
            doc.summary.chosen += 1;
            doc.sockets.push(KillSocket {
                netns: (!snap.netns.own).then(|| snap.netns.label()),
                state: s.state.name().into(),
                local: s.local.to_string(),
                remote: s.remote.to_string(),
                comm: pids
                    .first()
                    .and_then(|p| snap.processes.get(p))
                    .map(|p| String::from_utf8_lossy(&p.comm).into_owned()),
                pids,
                age_s: t.age_ms.map(|a| (f64::from(a) / 100.0).round() / 10.0),
                why: t.why.iter().map(|k| k.name().to_string()).collect(),
                result: res,
                reason,
            });
        }
    }
    doc
}

pub fn write_json(doc: &KillDoc, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer(&mut *out, doc).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

pub fn write_table(doc: &KillDoc, out: &mut dyn Write) -> io::Result<()> {
    let n = doc.summary.chosen;
    let sockets = if n == 1 { "socket" } else { "sockets" };
    if doc.dry_run {
        writeln!(
            out,
            "zombiescan kill: {n} {sockets} would be destroyed (a dry run: add --yes to destroy them)"
        )?;
    } else {
        writeln!(out, "zombiescan kill: {n} {sockets} chosen")?;
    }
    let mut rows: Vec<[String; 7]> = vec![[
        if doc.dry_run { "" } else { "RESULT" }.into(),
        "STATE".into(),
        "LOCAL".into(),
        "REMOTE".into(),
        "OWNER".into(),
        "AGE".into(),
        "WHY".into(),
    ]];
    for s in &doc.sockets {
        let owner = match (&s.comm, s.pids.as_slice()) {
            (Some(c), [p, ..]) => format!("{} ({p})", terminal(c.as_bytes())),
            (None, [p, ..]) => p.to_string(),
            _ => "-".into(),
        };
        let why = if s.why.is_empty() {
            format!("--state {}", s.state)
        } else {
            s.why.join(",")
        };
        let mut local = s.local.clone();
        if let Some(ns) = &s.netns {
            local = format!("{} {local}", terminal(ns.as_bytes()));
        }
        rows.push([
            s.result.clone().unwrap_or_default().replace('_', " "),
            s.state.clone(),
            local,
            s.remote.clone(),
            owner,
            s.age_s.map_or("-".into(), |a| human((a * 1000.0) as u64)),
            why,
        ]);
    }
    let skip = usize::from(doc.dry_run);
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<String> = (skip..7)
            .map(|c| format!("{:w$}", r[c], w = widths[c]))
            .collect();
        writeln!(out, "{}", cells.join("  ").trim_end())?;
        let reason = i
            .checked_sub(1)
            .and_then(|j| doc.sockets.get(j))
            .and_then(|s| s.reason.as_ref());
        if let Some(why) = reason {
            writeln!(out, "  {}", terminal(why.as_bytes()))?;
        }
    }
    let s = &doc.summary;
    if !doc.dry_run {
        writeln!(
            out,
            "{} destroyed, {} already gone, {} refused",
            s.destroyed, s.already_gone, s.refused
        )?;
    }
    if s.spared_queued > 0 {
        writeln!(
            out,
            "{} left alone in an accept queue: destroying one frees no queue slot (only the owner's accept(), \
             or a restart, does); --include-queued destroys them anyway",
            s.spared_queued
        )?;
    }
    if s.unix_not_closed > 0 {
        writeln!(
            out,
            "{} unix {} matched and left open: SOCK_DESTROY closes TCP sockets only; their owner must close them (or be restarted)",
            s.unix_not_closed,
            if s.unix_not_closed == 1 {
                "socket"
            } else {
                "sockets"
            }
        )?;
    }
    if s.spared_young + s.spared_age_unknown > 0 {
        writeln!(
            out,
            "spared: {} younger than --older-than, {} of unknown age",
            s.spared_young, s.spared_age_unknown
        )?;
    }
    Ok(())
}
