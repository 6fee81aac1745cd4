//! Listeners: a full accept queue, a queue nobody drains, a growing SYN
//! backlog. Connections waiting in an accept queue are in the socket dump
//! (ESTABLISHED or CLOSE_WAIT, no inode) with their tcp_info: the time since
//! the kernel created one (its last_data_sent, as nothing was sent on it
//! yet) is how long it has waited to be accepted.

use std::collections::BTreeMap;

use serde_json::Value;

use super::advice::{self, Ctx, Holders};
use super::{
    Finding, Kind, Severity, Thresholds, human, known, queued, ratio, secs, severity_by_ratio,
};
use crate::model::{Direction, Snapshot, Source, TcpState};

#[derive(Default)]
struct Port {
    listeners: Vec<u32>,
    queue: u64,
    backlog: u64,
    syn_recv: Vec<u32>,
    pids: Vec<u32>,
    /// Connections waiting to be accepted, and the longest wait (ms).
    waiting: u32,
    oldest_wait: Option<u32>,
}

fn counter(snap: &Snapshot, name: &str) -> i64 {
    snap.host.tcp_ext.get(name).copied().unwrap_or(0)
}

/// A unix listener whose queue is full, or past `--pressure-warn` of its
/// backlog. Its queue holds one more than its backlog; past that a connect
/// fails at once (`unix_recvq_full` in net/unix/af_unix.c): no SYN is
/// retried and no counter kept, so the fill is all there is to go by.
fn unix(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    let somaxconn = snap.host.sysctl_u64("net.core.somaxconn");
    for (i, u) in snap.unix.iter().enumerate() {
        if u.state != TcpState::Listen || !u.queues || u.recv_q == 0 {
            continue;
        }
        let (queue, backlog) = (u64::from(u.recv_q), u64::from(u.send_q));
        let severity = if queue >= backlog {
            Severity::Critical
        } else if ratio(queue, backlog) >= t.pressure_warn {
            Severity::Warning
        } else {
            continue;
        };
        let mut pids = snap.unix_owners(u).to_vec();
        pids.sort_unstable();
        let holders = Holders {
            pids: pids.clone(),
            ..Holders::default()
        };
        let path = u.path();
        let mut ctx = Ctx::new(snap, holders, Direction::Inbound, None, 0);
        ctx.place = format!("unix socket {}", String::from_utf8_lossy(&path));
        let links: Vec<&crate::model::UnixLink> = snap
            .unix_links
            .iter()
            .filter(|l| l.name == u.name)
            .collect();
        let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
        if let Some(s) = ctx.server {
            ev.insert("server", s.name().into());
        }
        ev.insert("accept_queue", queue.into());
        ev.insert("backlog", backlog.into());
        if let Some(v) = somaxconn {
            ev.insert("somaxconn", v.into());
        }
        if let Some(l) = links.first() {
            ev.insert("behind_port", l.port.into());
        }
        let text = advice::unix_accept_queue_full(&ctx, queue, backlog, somaxconn, &links);
        let source = advice::pick(Kind::AcceptQueueFull, Direction::Inbound, ctx.server, None)
            .source(ctx.server);
        out.push(Finding {
            ports: links.iter().map(|l| l.port).collect(),
            pids,
            direction: Some(Direction::Inbound),
            path: Some(path),
            who: Some(ctx.who.clone()).filter(|w| !w.is_empty()),
            evidence: ev,
            advice_source: format!("{source}; {}", advice::UNIX_FULL_SOURCE),
            unix: vec![i as u32],
            ..Finding::new(Kind::AcceptQueueFull, severity, u.recv_q, text)
        });
    }
}

pub fn classify(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    unix(snap, t, out);
    let mut ports: BTreeMap<u16, Port> = BTreeMap::new();
    for (i, s) in snap.sockets.iter().enumerate() {
        match s.state {
            TcpState::Listen => {
                let p = ports.entry(s.local.port()).or_default();
                p.listeners.push(i as u32);
                p.queue += u64::from(s.recv_q);
                p.backlog += u64::from(s.send_q);
                for pid in snap.owners_of(s) {
                    if !p.pids.contains(pid) {
                        p.pids.push(*pid);
                    }
                }
            }
            TcpState::SynRecv => ports
                .entry(s.local.port())
                .or_default()
                .syn_recv
                .push(i as u32),
            _ if queued(s) => {
                let p = ports.entry(s.local.port()).or_default();
                p.waiting += 1;
                let wait = s
                    .tcp_info
                    .as_ref()
                    .and_then(|ti| known(ti.last_data_sent(), snap.host.uptime_ms));
                if let Some(w) = wait {
                    p.oldest_wait = Some(p.oldest_wait.map_or(w, |o| o.max(w)));
                }
            }
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
        let holders = Holders {
            pids: pids.clone(),
            ..Holders::default()
        };
        let ctx = Ctx::new(snap, holders, Direction::Inbound, None, port);
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
        let by_fill = if known_limit {
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
        // A queue that does not move, however short: the application
        // stopped accepting.
        let stalled = p
            .oldest_wait
            .filter(|w| *w >= t.stall.as_millis() as u32)
            .map(|_| Severity::Warning);
        if let Some(severity) = by_fill.max(stalled) {
            let mut ev = ev.clone();
            ev.insert("accept_queue", p.queue.into());
            if known_limit {
                ev.insert("backlog", p.backlog.into());
            }
            if let Some(w) = p.oldest_wait {
                ev.insert("oldest_wait_s", secs(w));
            }
            let since = snap.netns.counted_since();
            let wait = p.oldest_wait.map(|w| human(u64::from(w)));
            let (explanation, remediation) = advice::accept_queue_full(
                &ctx,
                p.queue,
                known_limit.then_some(p.backlog),
                (overflows, since),
                somaxconn,
                wait.as_deref(),
            );
            out.push(Finding {
                ports: vec![port],
                pids: pids.clone(),
                who: Some(ctx.who.clone()).filter(|w| !w.is_empty()),
                evidence: ev,
                advice_source: advice::pick(
                    Kind::AcceptQueueFull,
                    Direction::Inbound,
                    ctx.server,
                    None,
                )
                .source(ctx.server),
                sockets: p.listeners.clone(),
                ..Finding::new(
                    Kind::AcceptQueueFull,
                    severity,
                    p.queue as u32,
                    (explanation, remediation),
                )
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
                ports: vec![port],
                pids,
                evidence: ev,
                sockets: p.syn_recv,
                advice_source: advice::host(Kind::SynBacklog).source(None),
                ..Finding::new(
                    Kind::SynBacklog,
                    severity,
                    n as u32,
                    (explanation, remediation),
                )
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Severity, Thresholds, classify};
    use crate::model::{Source, TcpState};
    use crate::testing::{snapshot, sock};

    fn queue(q: u32, backlog: u32) -> Option<Severity> {
        let mut l = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1);
        l.recv_q = q;
        l.send_q = backlog;
        classify(&snapshot(vec![l]), &Thresholds::default())
            .into_iter()
            .find(|f| f.kind == Kind::AcceptQueueFull)
            .map(|f| f.severity)
    }

    #[test]
    fn accept_queue_edges() {
        assert_eq!(queue(0, 4), None);
        assert_eq!(queue(1, 4), None);
        assert_eq!(queue(2, 4), Some(Severity::Warning));
        assert_eq!(queue(4, 4), Some(Severity::Critical));
        assert_eq!(queue(5, 4), Some(Severity::Critical));
    }

    #[test]
    fn accept_queue_from_proc_without_a_limit() {
        let mut l = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1);
        l.recv_q = 3;
        l.send_q = 0;
        l.tcp_info = None;
        let mut snap = snapshot(vec![l]);
        snap.source = Source::Proc;
        let t = Thresholds::default();
        assert!(
            classify(&snap, &t).is_empty(),
            "no overflow seen: nothing to say"
        );
        snap.host.tcp_ext.insert("ListenOverflows".into(), 12);
        let f = classify(&snap, &t);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::AcceptQueueFull, Severity::Warning)
        );
        assert!(f[0].explanation.contains("does not show"));
        snap.sockets[0].recv_q = 4096;
        assert_eq!(
            classify(&snap, &t)[0].severity,
            Severity::Critical,
            "at somaxconn"
        );
    }

    #[test]
    fn syn_backlog_against_the_smaller_limit() {
        let mut l = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1);
        l.send_q = 4096;
        let mut sockets = vec![l];
        for i in 0..600u16 {
            let mut s = sock(
                TcpState::SynRecv,
                "10.0.0.1:30020",
                &format!("10.9.0.1:{}", 1000 + i),
                0,
            );
            s.tcp_info = None;
            sockets.push(s);
        }
        let f = classify(&snapshot(sockets), &Thresholds::default());
        let syn: Vec<_> = f.iter().filter(|f| f.kind == Kind::SynBacklog).collect();
        assert_eq!(syn.len(), 1);
        assert_eq!((syn[0].severity, syn[0].count), (Severity::Warning, 600));
        assert_eq!(
            syn[0].evidence["limit"], 1024,
            "tcp_max_syn_backlog is the smaller"
        );
    }

    /// Connections that waited in the queue longer than --stall: the
    /// server stopped accepting, whatever the fill ratio.
    #[test]
    fn a_queue_that_does_not_move_below_half_its_backlog() {
        let mut l = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1);
        l.recv_q = 2;
        l.send_q = 2048;
        let child = |port: u16, waited: u32| {
            let mut c = sock(
                TcpState::Established,
                "10.0.0.1:30020",
                &format!("10.0.0.9:{port}"),
                0,
            );
            c.tcp_info.as_mut().expect("ti").last_data_sent = waited;
            c
        };
        let t = Thresholds::default();
        let young = snapshot(vec![l.clone(), child(4000, 500), child(4001, 9_000)]);
        assert!(classify(&young, &t).is_empty());
        let mut snap = snapshot(vec![l, child(4000, 500), child(4001, 52_000)]);
        snap.processes.insert(
            100,
            crate::testing::process(
                100,
                "python3",
                "/venv/bin/python3 /venv/bin/gunicorn -w 2 --backlog 2048 app:app",
                10,
                Some(1024),
            ),
        );
        snap.netns.own = false;
        snap.netns.initial = Some(false);
        let f = classify(&snap, &t);
        assert_eq!(
            (f[0].kind, f[0].severity, f[0].count),
            (Kind::AcceptQueueFull, Severity::Warning, 2)
        );
        assert_eq!(f[0].evidence["oldest_wait_s"], 52.0);
        assert!(f[0].explanation.contains("the oldest has waited 52 s"));
        assert!(
            f[0].explanation
                .contains("since this network namespace was created")
        );
        // Run inside a namespace (ip netns exec), it is still not the
        // host's: not "since boot" because it is zombiescan's own.
        snap.netns.own = true;
        assert!(
            classify(&snap, &t)[0]
                .explanation
                .contains("since this network namespace was created")
        );
        snap.netns.initial = Some(true);
        assert!(classify(&snap, &t)[0].explanation.contains("since boot"));
        assert!(
            f[0].remediation.contains("--workers 2 (its command line)"),
            "{}",
            f[0].remediation
        );
        assert!(f[0].explanation.contains("--threads (default 1)"));
    }
}
