//! Renderers: each takes a [`Report`](crate::report::Report) and writes text.
//! Only this module formats output.

pub mod json;
pub mod kill;
pub mod markdown;
pub mod prometheus;
pub mod sanitize;
pub mod table;
pub mod timeline;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::classify::Finding;
use crate::model::{Host, Snapshot};
use crate::units::human;
use sanitize::terminal;

/// A finding's evidence as every format shows it: its per-kind figures
/// and, under their stable wire names, its direction, remote endpoint,
/// oldest age (`oldest_s`) and namespace.
pub fn evidence(f: &Finding) -> BTreeMap<&'static str, Value> {
    let mut ev = f.evidence.clone();
    if let Some(d) = f.direction {
        ev.insert("direction", d.name().into());
    }
    if let Some(r) = f.remote {
        ev.insert("remote", r.to_string().into());
    }
    if let Some(ms) = f.oldest_ms {
        ev.insert("oldest_s", crate::units::secs(ms).into());
    }
    if let Some(ns) = &f.netns {
        ev.insert("netns", ns.clone().into());
    }
    if let Some(p) = &f.path {
        ev.insert("path", String::from_utf8_lossy(p).into_owned().into());
    }
    ev
}

/// Pids as a short list: `1,2,3,4,5,6,+3`.
pub fn pids_text(pids: &[u32]) -> String {
    const MAX: usize = 6;
    let mut s: Vec<String> = pids.iter().take(MAX).map(u32::to_string).collect();
    if pids.len() > MAX {
        s.push(format!("+{}", pids.len() - MAX));
    }
    s.join(",")
}

/// The host-wide facts under the counts, the same in every rendering: the
/// TCP socket totals, the file handles, and the counters of dropped or
/// aborted connections that are not zero.
pub fn host_facts(h: &Host) -> Vec<String> {
    let mut facts = Vec::new();
    // /proc/net/sockstat mixes the namespace's counts (inuse, tw) with
    // the host's (orphan, alloc: net/ipv4/proc.c sockstat_seq_show): each
    // said as whose it is.
    if let Some(tcp) = h.sockstat.get("TCP") {
        let n = |k: &str| tcp.get(k).copied().unwrap_or(0);
        facts.push(format!(
            "TCP in this namespace: inuse {}, tw {}",
            n("inuse"),
            n("tw")
        ));
        facts.push(format!(
            "host-wide: orphan {}, alloc {}",
            n("orphan"),
            n("alloc")
        ));
    }
    if let (Some(a), Some(m)) = (h.files_allocated, h.files_max) {
        facts.push(format!("file handles {a} of {m}"));
    }
    // TCPTimeouts counts every retransmission timeout, rarely 0: left to
    // the recording and Prometheus, out of the one-line summary.
    for k in Host::DROP_COUNTERS.iter().filter(|k| **k != "TCPTimeouts") {
        if let Some(v) = h.tcp_ext.get(*k).filter(|v| **v != 0) {
            facts.push(format!("{k} {v}"));
        }
    }
    facts
}

/// The filter in words, or `None` when nothing was filtered.
pub fn filter_text(snap: &Snapshot) -> Option<String> {
    let f = &snap.filter;
    let mut parts = Vec::new();
    let join = |v: Vec<String>| v.join(",");
    if !f.ports.is_empty() {
        parts.push(format!(
            "port {}",
            join(f.ports.iter().map(u16::to_string).collect())
        ));
    }
    if !f.pids.is_empty() {
        parts.push(format!(
            "pid {}",
            join(f.pids.iter().map(u32::to_string).collect())
        ));
    }
    if !f.processes.is_empty() {
        parts.push(format!(
            "process {}",
            terminal(join(f.processes.clone()).as_bytes())
        ));
    }
    if !f.states.is_empty() {
        parts.push(format!(
            "state {}",
            join(f.states.iter().map(|s| s.name().to_string()).collect())
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// A socket's timer in words: "retransmit #3, next in 1.2 s",
/// "keepalive in 1.8 h", "zero-window probe #2 in 0.4 s", "TIME_WAIT, 41 s
/// left".
pub fn timer_words(t: &crate::model::Timer) -> String {
    use crate::model::TimerKind;
    let ms = u64::from(t.expires_ms);
    let when = if ms < 1000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        human(ms)
    };
    match t.kind {
        TimerKind::Off => "-".into(),
        TimerKind::Retransmit if t.count > 0 => format!("retransmit #{}, next in {when}", t.count),
        TimerKind::Retransmit => format!("retransmit in {when}"),
        TimerKind::Keepalive if t.count > 0 => {
            format!("keepalive probe #{}, next in {when}", t.count)
        }
        TimerKind::Keepalive => format!("keepalive in {when}"),
        TimerKind::Persist if t.count > 0 => {
            format!("zero-window probe #{}, next in {when}", t.count)
        }
        TimerKind::Persist => format!("zero-window probe in {when}"),
        TimerKind::TimeWait => format!("{when} left"),
    }
}
