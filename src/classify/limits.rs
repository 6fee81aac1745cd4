//! Limits: file descriptors per process and per host, local ports per
//! destination, and the kernel's TIME_WAIT and orphan tables.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use super::advice;
use super::{Finding, Kind, Severity, Thresholds, pct, ratio, severity_by_ratio};
use crate::model::{Direction, Snapshot, TcpState, direction};

fn round2(r: f64) -> Value {
    Value::from((r * 100.0).round() / 100.0)
}

fn fds(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    let mut close_wait: BTreeMap<u32, u32> = BTreeMap::new();
    let mut waiting: BTreeMap<u16, u32> = BTreeMap::new();
    for s in &snap.sockets {
        if super::queued(s) {
            *waiting.entry(s.local.port()).or_insert(0) += 1;
        } else if s.state == TcpState::CloseWait {
            for pid in snap.owners_of(s) {
                *close_wait.entry(*pid).or_insert(0) += 1;
            }
        }
    }
    for p in snap.processes.values() {
        let Some(limit) = p.fd_limit else { continue };
        let r = ratio(u64::from(p.fds_open), limit);
        let Some(severity) = severity_by_ratio(r, t.fd_warn, t.fd_critical) else {
            continue;
        };
        let cw = close_wait.get(&p.pid).copied().unwrap_or(0);
        let server = advice::Server::detect(p);
        let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
        ev.insert("scope", "process".into());
        ev.insert("fds_open", p.fds_open.into());
        ev.insert("fd_limit", limit.into());
        ev.insert("ratio", round2(r));
        ev.insert("close_wait", cw.into());
        if let Some(s) = server {
            ev.insert("server", s.name().into());
        }
        let ports: Vec<u16> = {
            let mut v: Vec<u16> = snap
                .sockets
                .iter()
                .filter(|s| s.state == TcpState::Listen && snap.owners_of(s).contains(&p.pid))
                .map(|s| s.local.port())
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        let queued: u32 = ports.iter().filter_map(|p| waiting.get(p)).sum();
        if queued > 0 {
            ev.insert("in_accept_queue", queued.into());
        }
        let text = advice::fd_process(p, limit, &pct(r), cw, queued);
        out.push(Finding {
            ports,
            pids: vec![p.pid],
            evidence: ev,
            advice_source: advice::pick(Kind::FdExhaustion, Direction::Inbound, server, None)
                .source(server),
            ..Finding::new(Kind::FdExhaustion, severity, p.fds_open, text)
        });
    }
    let h = &snap.host;
    if let (Some(used), Some(max)) = (h.files_allocated, h.files_max) {
        let r = ratio(used, max);
        if let Some(severity) = severity_by_ratio(r, t.fd_warn, t.fd_critical) {
            let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
            ev.insert("scope", "host".into());
            ev.insert("files_allocated", used.into());
            ev.insert("file_max", max.into());
            ev.insert("ratio", round2(r));
            let text = advice::fd_host(used, max, &pct(r));
            out.push(host_finding(Kind::FdExhaustion, severity, used, ev, text));
        }
    }
}

/// Outbound sockets to one destination.
#[derive(Default)]
struct Dest {
    sockets: Vec<u32>,
    /// Healthy connections a one-shot scan folded: counted, not listed.
    folded: u32,
    pids: Vec<u32>,
    time_wait: u32,
}

fn ephemeral(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    let Some((lo, hi)) = snap.host.ephemeral_range() else {
        return;
    };
    let size = u64::from(hi - lo) + 1;
    let listening = snap.listening_ports();
    // A local port can be reused towards another destination: the limit is
    // per (local address, remote address, remote port).
    let mut per_dest: BTreeMap<(IpAddr, SocketAddr), Dest> = BTreeMap::new();
    for (i, s) in snap.sockets.iter().enumerate() {
        let p = s.local.port();
        if s.state == TcpState::Listen
            || !(lo..=hi).contains(&p)
            || direction(s, &listening, Some((lo, hi))) != Direction::Outbound
        {
            continue;
        }
        let e = per_dest.entry((s.local.ip(), s.remote.addr())).or_default();
        e.sockets.push(i as u32);
        for pid in snap.owners_of(s) {
            if !e.pids.contains(pid) {
                e.pids.push(*pid);
            }
        }
        if s.state == TcpState::TimeWait {
            e.time_wait += 1;
        }
    }
    let folded = snap.folded_by_group(|g| g.ephemeral, |_| {});
    for (g, (n, pids)) in snap.folded.groups.iter().zip(folded) {
        let (Some(local), Some(remote)) = (g.local, g.remote) else {
            continue;
        };
        if n == 0 {
            continue;
        }
        let e = per_dest
            .entry((local, SocketAddr::new(remote, g.port)))
            .or_default();
        e.folded += n;
        for pid in pids {
            if !e.pids.contains(&pid) {
                e.pids.push(pid);
            }
        }
    }
    for (
        (local, remote),
        Dest {
            sockets,
            folded,
            mut pids,
            time_wait,
        },
    ) in per_dest
    {
        let n = sockets.len() as u64 + u64::from(folded);
        let r = ratio(n, size);
        let Some(severity) = severity_by_ratio(r, t.pressure_warn, t.pressure_critical) else {
            continue;
        };
        pids.sort_unstable();
        let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
        ev.insert("sockets", n.into());
        ev.insert("time_wait", time_wait.into());
        ev.insert("local_address", local.to_string().into());
        ev.insert("ip_local_port_range", format!("{lo} {hi}").into());
        ev.insert("ratio", round2(r));
        let text = advice::ephemeral(n, time_wait, local, remote, lo, hi, &pct(r));
        out.push(Finding {
            ports: vec![remote.port()],
            pids,
            remote: Some(remote),
            evidence: ev,
            sockets,
            advice_source: advice::host(Kind::EphemeralPortExhaustion).source(None),
            ..Finding::new(Kind::EphemeralPortExhaustion, severity, n as u32, text)
        });
    }
}

/// A kernel table near its limit: sockstat's TCP `key` (evidence `name`)
/// against `sysctl`.
fn table(
    snap: &Snapshot,
    t: &Thresholds,
    (kind, key, name, sysctl): (Kind, &str, &'static str, &'static str),
    out: &mut Vec<Finding>,
) {
    let h = &snap.host;
    let (Some(n), Some(max)) = (h.sockstat("TCP", key), h.sysctl_u64(sysctl)) else {
        return;
    };
    let r = ratio(n, max);
    let Some(severity) = severity_by_ratio(r, t.pressure_warn, t.pressure_critical) else {
        return;
    };
    let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
    ev.insert(name, n.into());
    ev.insert(sysctl.rsplit('.').next().unwrap_or(sysctl), max.into());
    ev.insert("ratio", round2(r));
    let fin_timeout = h.sysctl_u64("net.ipv4.tcp_fin_timeout");
    let text = if kind == Kind::TimeWaitPressure {
        advice::time_wait_pressure(n, max, &pct(r))
    } else {
        advice::orphan_pressure(n, max, &pct(r), fin_timeout)
    };
    out.push(host_finding(kind, severity, n, ev, text));
}

/// A host-wide finding: no port, no pid, no socket of its own.
fn host_finding(
    kind: Kind,
    severity: Severity,
    count: u64,
    evidence: BTreeMap<&'static str, Value>,
    text: (String, String),
) -> Finding {
    Finding {
        evidence,
        advice_source: advice::host(kind).source(None),
        ..Finding::new(kind, severity, count.min(u64::from(u32::MAX)) as u32, text)
    }
}

pub fn classify(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    fds(snap, t, out);
    ephemeral(snap, t, out);
    table(
        snap,
        t,
        (
            Kind::TimeWaitPressure,
            "tw",
            "time_wait",
            "net.ipv4.tcp_max_tw_buckets",
        ),
        out,
    );
    table(
        snap,
        t,
        (
            Kind::OrphanPressure,
            "orphan",
            "orphans",
            "net.ipv4.tcp_max_orphans",
        ),
        out,
    );
}

#[cfg(test)]
mod tests {
    use super::super::{Kind, Severity, Thresholds, classify};
    use crate::model::TcpState;
    use crate::testing::{process, snapshot, sock};

    #[test]
    fn fd_ratios_at_their_edges() {
        let t = Thresholds::default();
        let at = |open, limit: Option<u64>| {
            let mut snap = snapshot(vec![sock(
                TcpState::Listen,
                "0.0.0.0:30020",
                "0.0.0.0:0",
                1,
            )]);
            snap.processes
                .insert(100, process(100, "uvicorn", "uvicorn app:app", open, limit));
            classify(&snap, &t)
                .into_iter()
                .find(|f| f.kind == Kind::FdExhaustion)
                .map(|f| (f.severity, f.ports, f.evidence["fd_limit"].clone()))
        };
        assert_eq!(at(79, Some(100)), None);
        assert_eq!(at(80, Some(100)).map(|f| f.0), Some(Severity::Warning));
        assert_eq!(at(95, Some(100)).map(|f| f.0), Some(Severity::Critical));
        assert_eq!(at(100_000, None), None, "unlimited");
        assert_eq!(
            at(80, Some(100)).map(|f| f.1),
            Some(vec![30020]),
            "the ports it listens on"
        );

        let mut snap = snapshot(vec![]);
        snap.host.files_allocated = Some(960_000);
        let f = classify(&snap, &t);
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].kind, f[0].severity),
            (Kind::FdExhaustion, Severity::Critical)
        );
        assert_eq!(f[0].evidence["scope"], "host");
    }

    #[test]
    fn ephemeral_ports_per_destination() {
        let t = Thresholds::default();
        let conns = |n: u16, tw: u16, dest: &str| -> Vec<crate::model::Socket> {
            (0..n)
                .map(|i| {
                    let state = if i < tw {
                        TcpState::TimeWait
                    } else {
                        TcpState::Established
                    };
                    let inode = if state == TcpState::TimeWait {
                        0
                    } else {
                        u64::from(i) + 1
                    };
                    sock(state, &format!("10.0.0.1:{}", 40000 + i), dest, inode)
                })
                .collect()
        };
        let run = |sockets: Vec<crate::model::Socket>| {
            let mut snap = snapshot(sockets);
            snap.host
                .sysctls
                .insert("net.ipv4.ip_local_port_range".into(), "40000 40009".into());
            classify(&snap, &t)
                .into_iter()
                .filter(|f| f.kind == Kind::EphemeralPortExhaustion)
                .map(|f| (f.severity, f.count, f.evidence["time_wait"].clone()))
                .collect::<Vec<_>>()
        };
        assert!(run(conns(4, 0, "10.0.0.5:5432")).is_empty());
        assert_eq!(
            run(conns(5, 3, "10.0.0.5:5432")),
            vec![(Severity::Warning, 5, 3.into())]
        );
        assert_eq!(run(conns(9, 9, "10.0.0.5:5432"))[0].0, Severity::Critical);
        // Two destinations each below the threshold.
        let mut two = conns(4, 0, "10.0.0.5:5432");
        two.extend(conns(4, 0, "10.0.0.6:5432"));
        assert!(run(two).is_empty());
    }

    #[test]
    fn host_tables() {
        let t = Thresholds::default();
        let mut snap = snapshot(vec![]);
        let tcp = snap.host.sockstat.entry("TCP".into()).or_default();
        tcp.insert("tw".into(), 131_072);
        tcp.insert("orphan".into(), 60_000);
        let f = classify(&snap, &t);
        let got: Vec<(Kind, Severity)> = f.iter().map(|f| (f.kind, f.severity)).collect();
        assert!(got.contains(&(Kind::TimeWaitPressure, Severity::Warning)));
        assert!(got.contains(&(Kind::OrphanPressure, Severity::Critical)));
        snap.host
            .sockstat
            .get_mut("TCP")
            .expect("tcp")
            .insert("tw".into(), 10);
        snap.host
            .sockstat
            .get_mut("TCP")
            .expect("tcp")
            .insert("orphan".into(), 3);
        assert!(
            classify(&snap, &t).is_empty(),
            "a handful of TIME_WAIT is fine"
        );
    }
}
