//! Folding as the dump streams: a scan that lists only flagged sockets (a
//! one-shot scan's, the exporter's, a recorder's) keeps a healthy
//! connection as 12 bytes of counts, never as a [`Socket`] (see
//! [`Folded`]). On a server with 100,000 connections that is most of a
//! scan's memory.

use std::collections::BTreeSet;

use crate::classify::{Thresholds, healthy};
use crate::model::{Direction, FastMap, FoldGroup, Folded, Host, Socket, direction};

/// What decides, socket by socket, and what it has folded so far.
pub struct Fold {
    thresholds: Thresholds,
    uptime_ms: Option<u64>,
    ephemeral: Option<(u16, u16)>,
    /// The namespace's listening ports: the dump reads its listeners
    /// first, so that each connection's direction is known as it streams.
    pub listening: BTreeSet<u16>,
    index: FastMap<FoldGroup, u32>,
    pub folded: Folded,
}

impl Fold {
    pub fn new(thresholds: &Thresholds, host: &Host) -> Fold {
        Fold {
            thresholds: thresholds.clone(),
            uptime_ms: host.uptime_ms,
            ephemeral: host.ephemeral_range(),
            listening: BTreeSet::new(),
            index: FastMap::default(),
            folded: Folded::default(),
        }
    }

    /// Folds `s` if it is healthy: whether it did.
    pub fn take(&mut self, s: &Socket) -> bool {
        if !healthy(s, &self.thresholds, self.uptime_ms) {
            return false;
        }
        let Ok(inode) = u32::try_from(s.inode) else {
            return false;
        };
        let dir = direction(s, &self.listening, self.ephemeral);
        let out = dir == Direction::Outbound;
        let local_port = s.local.port();
        let g = FoldGroup {
            family: s.family,
            direction: dir,
            port: if out { s.remote.port() } else { local_port },
            local: out.then(|| s.local.ip()),
            remote: out.then(|| s.remote.ip()),
            ephemeral: out
                && self
                    .ephemeral
                    .is_some_and(|(lo, hi)| (lo..=hi).contains(&local_port)),
        };
        self.folded.add(&mut self.index, g, inode);
        true
    }

    /// What was folded; the index of groups goes.
    pub fn finish(self) -> Folded {
        self.folded
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Finding, classify};
    use crate::model::{Family, Snapshot, TcpState, TimerKind};
    use crate::report::{Options, Report};
    use crate::testing::{silent, snapshot, sock, timer};

    /// `snap` as a folding scan would have read it: the listeners first,
    /// then every other socket folded where healthy.
    fn folded(snap: &Snapshot, t: &Thresholds) -> Snapshot {
        let mut out = snap.clone();
        let mut fold = Fold::new(t, &snap.host);
        fold.listening = snap.listening_ports();
        out.sockets.clear();
        for s in &snap.sockets {
            if s.state != TcpState::Listen && fold.take(s) {
                if let Some(f) = fold.folded.sockets.last_mut() {
                    f.owner = s.owner;
                }
            } else {
                out.sockets.push(s.clone());
            }
        }
        out.folded = fold.finish();
        out
    }

    /// What a finding says, without which sockets it lists (their indexes
    /// differ once the healthy ones are folded).
    fn said(findings: &[Finding]) -> Vec<String> {
        findings
            .iter()
            .map(|f| {
                format!(
                    "{:?} {} {:?} {:?} {} {:?}",
                    f.kind, f.count, f.pids, f.ports, f.explanation, f.evidence
                )
            })
            .collect()
    }

    /// A server with healthy, idle, leaked and queued connections and a
    /// client pool near its ephemeral ports: folded, the report counts,
    /// groups, owns and finds exactly what it does with every socket kept,
    /// and keeps in full only what a finding or a listener needs.
    #[test]
    fn a_folded_scan_reports_what_a_full_one_does() {
        let t = Thresholds {
            // Four connections to one destination are "near" the range.
            pressure_warn: 0.0001,
            ..Thresholds::default()
        };
        let mut sockets = vec![sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1)];
        for i in 0..5 {
            let remote = format!("10.0.0.9:{}", 40_001 + i);
            sockets.push(sock(
                TcpState::Established,
                "10.0.0.1:30020",
                &remote,
                10 + i as u64,
            ));
        }
        let mut v6 = sock(TcpState::Established, "[::1]:30020", "[::1]:40100", 16);
        v6.family = Family::Ipv6;
        sockets.push(v6);
        // Idle for two hours: a finding.
        let mut idle = silent(
            sock(
                TcpState::Established,
                "10.0.0.1:30020",
                "10.0.0.9:40200",
                17,
            ),
            7_200_000,
        );
        idle.tcp_info.as_mut().expect("tcp_info").last_data_sent = 7_200_000;
        sockets.push(idle);
        sockets.push(silent(
            sock(TcpState::CloseWait, "10.0.0.1:30020", "10.0.0.9:40300", 20),
            120_000,
        ));
        // Unread bytes, and a connection still in the accept queue.
        let mut unread = sock(
            TcpState::Established,
            "10.0.0.1:30020",
            "10.0.0.9:40400",
            21,
        );
        unread.recv_q = 100;
        sockets.push(unread);
        sockets.push(sock(
            TcpState::Established,
            "10.0.0.1:30020",
            "10.0.0.9:40500",
            0,
        ));
        // A keepalive that went unanswered: half-open.
        let mut ka = sock(
            TcpState::Established,
            "10.0.0.1:30020",
            "10.0.0.9:40600",
            22,
        );
        ka.timer = timer(TimerKind::Keepalive, 2);
        sockets.push(ka);
        // The pool: four healthy connections to PostgreSQL, one TIME_WAIT.
        for i in 0..4 {
            let local = format!("10.0.0.1:{}", 33_000 + i);
            sockets.push(sock(
                TcpState::Established,
                &local,
                "10.0.0.5:5432",
                30 + i as u64,
            ));
        }
        let mut tw = sock(TcpState::TimeWait, "10.0.0.1:33100", "10.0.0.5:5432", 0);
        tw.tcp_info = None;
        sockets.push(tw);
        let mut full = snapshot(sockets);
        // Forked workers share one connection; another's owner is unknown.
        full.shared.insert(11, vec![100, 101]);
        full.processes.insert(
            101,
            crate::testing::process(101, "uvicorn", "uvicorn app:app", 9, Some(1024)),
        );
        full.sockets
            .iter_mut()
            .find(|s| s.inode == 12)
            .expect("12")
            .owner = 0;

        let fold = folded(&full, &t);
        let mut kept: Vec<u64> = fold.sockets.iter().map(|s| s.inode).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            vec![0, 0, 1, 17, 20, 21, 22],
            "listener, findings, queue, TIME_WAIT"
        );
        assert_eq!(fold.folded.sockets.len(), 10);
        assert_eq!(fold.tcp_count(), full.tcp_count());

        let (fa, fb) = (classify(&full, &t), classify(&fold, &t));
        assert!(
            fa.iter()
                .any(|f| f.kind == crate::classify::Kind::EphemeralPortExhaustion)
        );
        assert_eq!(said(&fa), said(&fb));
        let a = Report::new(&full, fa, &Options::default());
        let b = Report::new(&fold, fb, &Options::default());
        assert_eq!(format!("{:?}", a.summary), format!("{:?}", b.summary));
        assert_eq!(a.ports, b.ports);
        assert_eq!(a.unowned, b.unowned);
        assert_eq!(a.unowned, 1);
        let rows = |r: &Report| -> Vec<String> {
            r.processes
                .iter()
                .map(|p| format!("{} {} {:?}", p.process.pid, p.sockets, p.by_state))
                .collect()
        };
        assert_eq!(rows(&a), rows(&b));
        // The flagged sockets are listed, the same ones; but the pool's
        // healthy connections, which the ephemeral-port finding counts,
        // are not listed once folded: its TIME_WAIT socket is.
        let listed = |r: &Report| -> Vec<u64> {
            let mut v: Vec<u64> = r.listed().iter().map(|l| l.socket.inode).collect();
            v.sort_unstable();
            v
        };
        assert_eq!(listed(&a), vec![0, 17, 20, 22, 30, 31, 32, 33]);
        assert_eq!(listed(&b), vec![0, 17, 20, 22]);
    }
}
