//! Listeners: a full accept queue, a growing SYN backlog.

use std::collections::BTreeMap;

use serde_json::Value;

use super::advice::{self, Ctx};
use super::{Finding, Kind, Severity, Thresholds, ratio, severity_by_ratio};
use crate::model::{Direction, Snapshot, Source, TcpState};

#[derive(Default)]
struct Port {
    listeners: Vec<usize>,
    queue: u64,
    backlog: u64,
    syn_recv: Vec<usize>,
    pids: Vec<u32>,
}

fn counter(snap: &Snapshot, name: &str) -> i64 {
    snap.host.tcp_ext.get(name).copied().unwrap_or(0)
}

pub fn classify(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    let mut ports: BTreeMap<u16, Port> = BTreeMap::new();
    for (i, s) in snap.sockets.iter().enumerate() {
        match s.state {
            TcpState::Listen => {
                let p = ports.entry(s.local.port()).or_default();
                p.listeners.push(i);
                p.queue += u64::from(s.recv_q);
                p.backlog += u64::from(s.send_q);
                for pid in snap.owners_of(s) {
                    if !p.pids.contains(pid) {
                        p.pids.push(*pid);
                    }
                }
            }
            TcpState::SynRecv => ports.entry(s.local.port()).or_default().syn_recv.push(i),
            _ => {}
        }
    }
    let somaxconn = snap.host.sysctl_u64("net.core.somaxconn");
    let overflows = counter(snap, "ListenOverflows");
    let drops = counter(snap, "ListenDrops");
    for (port, p) in ports {
        if p.listeners.is_empty() {
            continue;
        }
        let mut pids = p.pids.clone();
        pids.sort_unstable();
        let ctx = Ctx::new(snap, &pids, Direction::Inbound, None, port);
        let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
        if let Some(s) = ctx.server {
            ev.insert("server", s.name().into());
        }
        if let Some(v) = somaxconn {
            ev.insert("somaxconn", v.into());
        }
        ev.insert("listen_overflows", overflows.into());
        ev.insert("listen_drops", drops.into());

        // Netlink shows the backlog limit; /proc does not.
        let known_limit = snap.source == Source::Netlink && p.backlog > 0;
        let severity = if known_limit {
            if p.queue >= p.backlog {
                Some(Severity::Critical)
            } else {
                severity_by_ratio(ratio(p.queue, p.backlog), t.pressure_warn, f64::INFINITY)
            }
        } else if somaxconn.is_some_and(|m| p.queue >= m) {
            Some(Severity::Critical)
        } else if p.queue > 0 && overflows > 0 {
            Some(Severity::Warning)
        } else {
            None
        };
        if let Some(severity) = severity {
            let mut ev = ev.clone();
            ev.insert("accept_queue", p.queue.into());
            if known_limit {
                ev.insert("backlog", p.backlog.into());
            }
            let (explanation, remediation) = advice::accept_queue_full(
                &ctx,
                p.queue,
                known_limit.then_some(p.backlog),
                overflows,
                somaxconn,
            );
            out.push(Finding {
                kind: Kind::AcceptQueueFull,
                severity,
                count: p.queue as u32,
                ports: vec![port],
                pids: pids.clone(),
                evidence: ev,
                explanation,
                remediation,
                sockets: p.listeners.clone(),
            });
        }

        let n = p.syn_recv.len() as u64;
        let max_syn = snap.host.sysctl_u64("net.ipv4.tcp_max_syn_backlog");
        let limit = match (known_limit.then_some(p.backlog), max_syn) {
            (Some(b), Some(m)) => Some(b.min(m)),
            (b, m) => b.or(m),
        };
        let Some(limit) = limit.filter(|_| n > 0) else {
            continue;
        };
        if let Some(severity) =
            severity_by_ratio(ratio(n, limit), t.pressure_warn, t.pressure_critical)
        {
            let mut ev = ev;
            ev.insert("syn_recv", n.into());
            ev.insert("limit", limit.into());
            ev.insert("syncookies_sent", counter(snap, "SyncookiesSent").into());
            ev.insert("req_q_full_drop", counter(snap, "TCPReqQFullDrop").into());
            let syncookies = snap.host.sysctl_u64("net.ipv4.tcp_syncookies");
            let (explanation, remediation) =
                advice::syn_backlog(&ctx, n, limit, max_syn, syncookies);
            out.push(Finding {
                kind: Kind::SynBacklog,
                severity,
                count: n as u32,
                ports: vec![port],
                pids,
                evidence: ev,
                explanation,
                remediation,
                sockets: p.syn_recv,
            });
        }
    }
}
