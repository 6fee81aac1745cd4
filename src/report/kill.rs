//! `zombiescan kill`: which sockets to close, chosen from a scan's
//! findings and states, never a listener unless asked. The choice is pure
//! (a report in, targets out); destroying them is `collect::destroy`'s.

use std::time::Duration;

use crate::classify::{Kind, age_of};
use crate::model::{Socket, TcpState};
use crate::report::Report;

/// What to close.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Choice {
    /// Sockets in these states (`--state`).
    pub states: Vec<TcpState>,
    /// Sockets these findings flagged (`--finding`).
    pub kinds: Vec<Kind>,
    /// Only sockets at least this old, by the age their finding (or, for a
    /// state, the kernel) tells (`--older-than`).
    pub older_than: Option<Duration>,
    /// `--include-queued`: connections in an accept queue too.
    pub include_queued: bool,
}

/// A socket chosen, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct Target<'a> {
    pub socket: &'a Socket,
    /// The findings that flagged it, among those asked for.
    pub why: Vec<Kind>,
    /// Its age (ms), when known.
    pub age_ms: Option<u32>,
}

/// What a choice leaves out, for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Spared {
    /// Younger than `--older-than`.
    pub young: u32,
    /// Of an age zombiescan cannot tell (no tcp_info), with --older-than.
    pub age_unknown: u32,
    /// Unix sockets the selectors matched: SOCK_DESTROY closes none.
    pub unix: u32,
    /// Connections still in an accept queue, left alone: destroying one
    /// frees no queue slot (its owner never accepted it).
    pub queued: u32,
}

/// The sockets of `r` that `c` chooses. A LISTEN socket only with
/// `--state LISTEN`.
pub fn choose<'a>(r: &Report<'a>, c: &Choice) -> (Vec<Target<'a>>, Spared) {
    let snap = r.snapshot;
    let mut out = Vec::new();
    let mut spared = Spared::default();
    for (i, s) in snap.sockets.iter().enumerate() {
        let by_state = c.states.contains(&s.state);
        let why: Vec<Kind> = r
            .kinds_of(i)
            .iter()
            .filter(|k| c.kinds.contains(k))
            .collect();
        if !by_state && why.is_empty() {
            continue;
        }
        if s.state == TcpState::Listen && !c.states.contains(&TcpState::Listen) {
            continue;
        }
        if crate::classify::queued(s) && !c.include_queued {
            spared.queued += 1;
            continue;
        }
        let age_ms = age_of(why.iter().copied(), s, &snap.host);
        if let Some(min) = c.older_than {
            match age_ms {
                Some(a) if u128::from(a) >= min.as_millis() => {}
                Some(_) => {
                    spared.young += 1;
                    continue;
                }
                None => {
                    spared.age_unknown += 1;
                    continue;
                }
            }
        }
        out.push(Target {
            socket: s,
            why,
            age_ms,
        });
    }
    // The kernel's SOCK_DESTROY is for TCP (and UDP, raw) sockets only.
    spared.unix = r
        .unix_sockets_all()
        .filter(|(u, kinds)| {
            (c.states.contains(&u.state) || kinds.iter().any(|k| c.kinds.contains(&k)))
                && (u.state != TcpState::Listen || c.states.contains(&TcpState::Listen))
        })
        .count() as u32;
    (out, spared)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{Thresholds, classify};
    use crate::report::{Options, Report};
    use crate::testing::{silent, snapshot, sock};

    #[test]
    fn never_a_listener_unless_asked_and_never_younger_than_asked() {
        let mut l = sock(TcpState::Listen, "10.0.0.1:30020", "0.0.0.0:0", 1);
        l.send_q = 128;
        let cw = |port: u16, age: u32| {
            silent(
                sock(
                    TcpState::CloseWait,
                    "10.0.0.1:30020",
                    &format!("10.0.0.9:{port}"),
                    u64::from(port),
                ),
                age,
            )
        };
        let est = sock(
            TcpState::Established,
            "10.0.0.1:30020",
            "10.0.0.9:5000",
            5000,
        );
        let snap = snapshot(vec![l, cw(4000, 700_000), cw(4001, 20_000), est]);
        let f = classify(&snap, &Thresholds::default());
        let r = Report::new(&snap, f, &Options::default());
        let by_finding = Choice {
            kinds: vec![Kind::CloseWait],
            ..Choice::default()
        };
        let (t, _) = choose(&r, &by_finding);
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|t| t.why == [Kind::CloseWait]));
        let old = Choice {
            older_than: Some(Duration::from_secs(600)),
            ..by_finding.clone()
        };
        let (t, spared) = choose(&r, &old);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].socket.remote.port(), 4000);
        assert_eq!(t[0].age_ms, Some(700_000));
        assert_eq!(spared.young, 1);
        // Every state but LISTEN, unless LISTEN is named.
        let all = Choice {
            states: TcpState::ALL
                .iter()
                .copied()
                .filter(|s| *s != TcpState::Listen)
                .collect(),
            ..Choice::default()
        };
        assert!(
            choose(&r, &all)
                .0
                .iter()
                .all(|t| t.socket.state != TcpState::Listen)
        );
        let listen = Choice {
            states: vec![TcpState::Listen],
            ..Choice::default()
        };
        assert_eq!(choose(&r, &listen).0.len(), 1);
    }
}
