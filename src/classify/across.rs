//! Findings that meet across the namespaces of one run (`--all-netns`): a
//! FIN_WAIT2 in one namespace whose other ends sit in CLOSE_WAIT in
//! another is not "somewhere else": it is in this report.

use std::collections::{BTreeSet, HashSet};

use super::{Finding, Kind, advice, fin_timeout};
use crate::model::{Endpoint, Snapshot, TcpState};

/// Links each FIN_WAIT2 finding of `findings[i]` (about `snaps[i]`) to the
/// CLOSE_WAIT sockets at the other end of its connections in the other
/// snapshots: the namespace, how many, who holds them.
pub fn across(snaps: &[&Snapshot], findings: &mut [Vec<Finding>]) {
    if snaps.len() < 2 {
        return;
    }
    for (i, snap) in snaps.iter().enumerate() {
        for f in findings[i].iter_mut().filter(|f| f.kind == Kind::FinWait2) {
            // The other end of a connection has the same two endpoints,
            // swapped.
            let ends: HashSet<(Endpoint, Endpoint)> = f
                .sockets
                .iter()
                .filter_map(|&k| snap.sockets.get(k as usize))
                .map(|s| (s.remote, s.local))
                .collect();
            if ends.is_empty() {
                continue;
            }
            for (j, other) in snaps.iter().enumerate() {
                if j == i {
                    continue;
                }
                let matched: Vec<_> = other
                    .sockets
                    .iter()
                    .filter(|s| {
                        s.state == TcpState::CloseWait && ends.contains(&(s.local, s.remote))
                    })
                    .collect();
                let Some(first) = matched.first() else {
                    continue;
                };
                let pids: Vec<u32> = matched
                    .iter()
                    .flat_map(|s| other.owners_of(s))
                    .copied()
                    .collect::<BTreeSet<u32>>()
                    .into_iter()
                    .collect();
                let label = if other.netns.initial == Some(true) {
                    format!("the host's namespace ({})", other.netns.label())
                } else {
                    other.netns.label()
                };
                let held = advice::named(other, &pids)
                    .map_or(String::new(), |who| format!(", held by {who}"));
                let n = matched.len();
                f.explanation.push_str(&format!(
                    " Their other ends are in {label}, scanned in this run: {n} in CLOSE_WAIT{held}."
                ));
                if f.evidence.get("orphaned").is_some_and(|o| *o == f.count) {
                    f.remediation = format!(
                        "Nothing leaks on this side: the peer is the server on {} in {label}, scanned in this \
                         run, which never closed its side: see its part of this report. Lowering {} frees \
                         these sooner.",
                        first.local,
                        fin_timeout(snap)
                    );
                }
                f.evidence.insert("peer_netns", label.into());
                f.evidence.insert("peer_close_wait", n.into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Thresholds, classify};
    use super::*;
    use crate::testing::{silent, snapshot, sock};

    /// A client namespace's orphaned FIN_WAIT2 and the server namespace's
    /// CLOSE_WAIT on the same connections: the client's finding names the
    /// server's namespace and owner instead of "run zombiescan where it
    /// runs".
    #[test]
    fn a_fin_wait2_finds_its_close_wait_in_another_namespace() {
        let t = Thresholds::default();
        let mut fw = silent(
            sock(TcpState::FinWait2, "10.0.0.9:40001", "10.0.0.1:30020", 0),
            90_000,
        );
        fw.owner = 0;
        let mut client = snapshot(vec![fw]);
        client.netns.own = true;
        let cw = silent(
            sock(TcpState::CloseWait, "10.0.0.1:30020", "10.0.0.9:40001", 7),
            90_000,
        );
        let mut unrelated = cw.clone();
        unrelated.remote = "10.0.0.8:40001".parse().expect("addr");
        let mut server = snapshot(vec![cw, unrelated]);
        server.netns.own = false;
        server.netns.name = Some("web1".into());
        server.netns.inode = Some(4026532301);
        let snaps = [&client, &server];
        let mut findings: Vec<Vec<Finding>> = snaps.iter().map(|s| classify(s, &t)).collect();
        let before = findings[0]
            .iter()
            .find(|f| f.kind == Kind::FinWait2)
            .expect("fin_wait2")
            .remediation
            .clone();
        assert!(before.contains("run zombiescan where it runs"), "{before}");
        across(&snaps, &mut findings);
        let f = findings[0]
            .iter()
            .find(|f| f.kind == Kind::FinWait2)
            .expect("fin_wait2");
        assert!(
            f.explanation.contains(
                "Their other ends are in netns 4026532301 (ip netns web1), scanned in this run: 1 in \
                 CLOSE_WAIT, held by uvicorn (pid 100)."
            ),
            "{}",
            f.explanation
        );
        assert!(
            !f.remediation.contains("run zombiescan where it runs"),
            "{}",
            f.remediation
        );
        assert!(
            f.remediation
                .contains("the server on 10.0.0.1:30020 in netns 4026532301")
        );
        assert_eq!(f.evidence["peer_close_wait"], 1);
        // One namespace alone links nothing.
        let mut alone = vec![classify(&client, &t)];
        across(&[&client], &mut alone);
        assert!(!alone[0][0].evidence.contains_key("peer_netns"));
    }
}
