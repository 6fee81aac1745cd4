//! Where else to look. A `--port` scan shows the server on that port; when
//! the trouble is behind it (nginx in front of a uvicorn whose loop is
//! blocked), the scanned port looks calm while CLOSE_WAIT piles up on the
//! upstream's. The snapshot carries this namespace's few telling sockets
//! on every other port (`Snapshot::neighbours`: listeners, CLOSE_WAIT,
//! FIN_WAIT2, SYN_SENT); a port that shows trouble there is named, with
//! the command that looks at it.

use std::collections::BTreeMap;

use super::{Thresholds, queued, since_peer};
use crate::model::{Hint, Snapshot, TcpState};
use crate::units::human;

#[derive(Default)]
struct Port {
    backlog: u64,
    queue: u64,
    close_wait: u32,
    never_accepted: u32,
    oldest: Option<u32>,
    orphaned_fin_wait2: u32,
    syn_sent: u32,
}

/// One sentence per port of this namespace, outside the scan's filter,
/// that shows trouble: CLOSE_WAIT older than `--stall`, an accept queue
/// at half its backlog, SYNs retried. At most three, the worst first.
/// `netns` is the `--netns` argument the command must repeat.
pub fn pointers(snap: &Snapshot, t: &Thresholds, netns: Option<&str>) -> Vec<String> {
    let stall = t.stall.as_millis() as u32;
    let up = snap.host.uptime_ms;
    let mut ports: BTreeMap<u16, Port> = BTreeMap::new();
    for s in &snap.neighbours {
        match s.state {
            TcpState::Listen => {
                let p = ports.entry(s.local.port()).or_default();
                p.queue += u64::from(s.recv_q);
                p.backlog += u64::from(s.send_q);
            }
            TcpState::CloseWait => {
                let age = since_peer(s, up);
                if age.is_some_and(|a| a < stall) {
                    continue;
                }
                let p = ports.entry(s.local.port()).or_default();
                p.close_wait += 1;
                if queued(s) {
                    p.never_accepted += 1;
                }
                if let Some(a) = age {
                    p.oldest = Some(p.oldest.map_or(a, |o| o.max(a)));
                }
            }
            TcpState::FinWait2 if s.inode == 0 => {
                ports.entry(s.remote.port()).or_default().orphaned_fin_wait2 += 1;
            }
            TcpState::SynSent if s.timer.count >= 2 => {
                ports.entry(s.remote.port()).or_default().syn_sent += 1;
            }
            _ => {}
        }
    }
    let listening = snap.listening_ports();
    let mut trouble: Vec<(u16, Port)> = ports
        .into_iter()
        .filter(|(port, p)| {
            !listening.contains(port)
                && (p.close_wait > 0
                    || (p.backlog > 0 && p.queue * 2 >= p.backlog)
                    || (p.syn_sent > 0 && p.backlog > 0))
        })
        .collect();
    trouble.sort_by(|a, b| b.1.close_wait.cmp(&a.1.close_wait).then(a.0.cmp(&b.0)));
    let place = match netns {
        Some(n) => format!(" --netns {n}"),
        None => String::new(),
    };
    let mut out = Vec::new();
    for (port, p) in trouble.iter().take(3) {
        let mut what = Vec::new();
        if p.close_wait > 0 {
            let mut cw = format!("{} CLOSE_WAIT", p.close_wait);
            if let Some(o) = p.oldest {
                cw.push_str(&format!(" (the oldest {} ago)", human(u64::from(o))));
            }
            if p.never_accepted > 0 {
                cw.push_str(&format!(", {} never accepted", p.never_accepted));
            }
            what.push(cw);
        }
        if p.backlog > 0 && p.queue > 0 {
            what.push(format!(
                "an accept queue of {} for a backlog of {}",
                p.queue, p.backlog
            ));
        }
        if p.orphaned_fin_wait2 > 0 {
            what.push(format!(
                "{} orphaned FIN_WAIT2 waiting for it to close",
                p.orphaned_fin_wait2
            ));
        }
        if p.syn_sent > 0 {
            what.push(format!("{} SYNs retried toward it", p.syn_sent));
        }
        out.push(format!(
            "elsewhere in this namespace, port {port} shows trouble ({}): zombiescan{place} --port {port}",
            what.join("; ")
        ));
    }
    if trouble.len() > 3 {
        out.push(format!(
            "{} more ports of this namespace show trouble: zombiescan{place}",
            trouble.len() - 3
        ));
    }
    out
}

/// A hint of the collector's in words.
pub fn hint(h: &Hint) -> String {
    let ports = |p: &[u16], sep: &str| p.iter().map(u16::to_string).collect::<Vec<_>>().join(sep);
    match h {
        Hint::Followed(f) => match f.by {
            Some(pid) => format!(
                "port {} is forwarded by docker-proxy (pid {pid}) to {}, served in {}: its report comes first",
                f.port, f.to, f.netns
            ),
            None => format!(
                "nothing listens on port {} here: the one listener on it is {} in {} (its report comes \
                 first), where NAT rules would send it (Docker without its userland proxy, a Kubernetes \
                 hostPort or NodePort)",
                f.port, f.to, f.netns
            ),
        },
        Hint::Proxied {
            proxy_pid,
            host_port,
            container_ip,
            container_port,
        } => format!(
            "port {host_port} is forwarded by docker-proxy (pid {proxy_pid}) to {}:{container_port}",
            container_ip.map_or("the container".to_string(), |ip| ip.to_string())
        ),
        Hint::ListensIn {
            ports: p,
            netns,
            enter,
            queue,
            backlog,
        } => {
            // Its accept queue says which of several is in trouble
            // (full: more waiting than the backlog, as the kernel counts).
            let queue = match (*queue, *backlog) {
                (_, 0) => String::new(),
                (q, b) if q > b => format!(" (accept queue full: {q} waiting, backlog {b})"),
                (0, _) => " (accept queue empty)".to_string(),
                (q, b) => format!(" ({q} waiting to be accepted, backlog {b})"),
            };
            format!(
                "a server listens on port {} in {netns}{queue}: zombiescan --netns {enter} --port {}",
                ports(p, ","),
                ports(p, " --port ")
            )
        }
        Hint::NothingListens {
            ports: p,
            unentered,
            as_root,
        } if unentered.is_empty() => format!(
            "nothing listens on port {} in this network namespace or any other",
            ports(p, ",")
        ),
        Hint::NothingListens {
            ports: p,
            unentered,
            as_root,
        } => {
            let root = if *as_root {
                ""
            } else {
                " (run as root to look into them)"
            };
            let shown: Vec<&str> = unentered.iter().take(3).map(String::as_str).collect();
            let more = match unentered.len() {
                n if n > 3 => format!(" and {} more", n - 3),
                _ => String::new(),
            };
            format!(
                "nothing listens on port {} in this network namespace; {} other {} could not be \
                 entered{root}: {}{more}",
                ports(p, ","),
                unentered.len(),
                if unentered.len() == 1 {
                    "namespace"
                } else {
                    "namespaces"
                },
                shown.join(", ")
            )
        }
        Hint::Text(t) => t.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Thresholds;
    use super::*;
    use crate::model::{TcpState, TimerKind};
    use crate::testing::{silent, snapshot, sock, timer};

    /// nginx on 30020 in front of a blocked upstream on 8000: the scan of
    /// 30020 points at 8000.
    #[test]
    fn a_calm_port_points_at_the_upstream_in_trouble() {
        let mut front = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1);
        front.send_q = 511;
        let mut snap = snapshot(vec![front]);
        snap.filter.ports = vec![30020];
        let mut up = sock(TcpState::Listen, "127.0.0.1:8000", "0.0.0.0:0", 2);
        up.send_q = 2048;
        up.recv_q = 3;
        let mut n = vec![up];
        for i in 0..4u16 {
            n.push(silent(
                sock(
                    TcpState::CloseWait,
                    "127.0.0.1:8000",
                    &format!("127.0.0.1:{}", 50000 + i),
                    if i < 3 { 0 } else { 10 + u64::from(i) },
                ),
                20_000,
            ));
            let mut fw = sock(
                TcpState::FinWait2,
                &format!("127.0.0.1:{}", 50000 + i),
                "127.0.0.1:8000",
                0,
            );
            fw.timer = timer(TimerKind::TimeWait, 0);
            n.push(fw);
        }
        // A young CLOSE_WAIT elsewhere is no trouble.
        n.push(sock(
            TcpState::CloseWait,
            "127.0.0.1:9000",
            "127.0.0.1:40000",
            99,
        ));
        snap.neighbours = n;
        let p = pointers(&snap, &Thresholds::default(), None);
        assert_eq!(
            p,
            vec![
                "elsewhere in this namespace, port 8000 shows trouble (4 CLOSE_WAIT (the oldest 20 s ago), \
                 3 never accepted; an accept queue of 3 for a backlog of 2048; 4 orphaned FIN_WAIT2 \
                 waiting for it to close): zombiescan --port 8000"
            ]
        );
        assert!(
            pointers(&snap, &Thresholds::default(), Some("web"))[0]
                .ends_with("zombiescan --netns web --port 8000")
        );
        snap.neighbours.clear();
        assert!(pointers(&snap, &Thresholds::default(), None).is_empty());
    }

    /// Two namespaces serve the port: each hint says its accept queue, so
    /// the one in trouble shows.
    #[test]
    fn a_namespace_serving_the_port_says_its_accept_queue() {
        let at = |queue, backlog| {
            hint(&Hint::ListensIn {
                ports: vec![30020],
                netns: "netns 4026532301 (ip netns web1)".into(),
                enter: "web1".into(),
                queue,
                backlog,
            })
        };
        assert_eq!(
            at(17, 16),
            "a server listens on port 30020 in netns 4026532301 (ip netns web1) (accept queue full: 17 \
             waiting, backlog 16): zombiescan --netns web1 --port 30020"
        );
        assert!(at(0, 4096).contains("(accept queue empty)"));
        assert!(at(3, 16).contains("(3 waiting to be accepted, backlog 16)"));
        assert!(
            !at(0, 0).contains("queue"),
            "a capture of an earlier version"
        );
    }
}
