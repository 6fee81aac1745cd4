//! `--watch`: what changed between samples. Sockets are followed across
//! samples by their inet_diag cookie (the /proc source has none: local and
//! remote address stand in), so that the report can say how long the
//! sockets of a state have been seen in it. Where the kernel tells how long
//! a socket has been in its state (CLOSE_WAIT, FIN_WAIT2, TIME_WAIT: the
//! ages the findings quote), a socket's age is the larger of that and what
//! the watch saw, so that the watch and a finding never disagree.
//! Otherwise the first sample cannot know: its ages are "at least".

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::UNIX_EPOCH;

use crate::model::{Snapshot, Socket, StateCounts, TcpState};

/// One state in a watch sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StateChange {
    pub now: u32,
    pub since_previous: i64,
    pub since_start: i64,
    /// Change per minute since the previous sample.
    pub per_minute: f64,
    /// Change over the last minute: since the latest sample at least a
    /// minute old, or since the first while the watch is younger.
    pub last_minute: i64,
    /// How long the oldest socket in this state has been seen in it.
    pub oldest_seen_ms: Option<u64>,
    /// The oldest was there at the first sample: it is at least that old.
    pub at_least: bool,
}

/// What one sample of a watch says.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct View {
    /// 1 for the first sample.
    pub sample: u32,
    pub elapsed_ms: u64,
    pub states: [StateChange; 11],
    /// The drop counters (ListenOverflows, …) that moved: (name, since
    /// the previous sample, since the first).
    pub drops: Vec<(&'static str, i64, i64)>,
}

const MINUTE_MS: u64 = 60_000;

#[derive(Default)]
pub struct Watch {
    start: Option<(u64, StateCounts)>,
    /// The samples of the last minute, and the latest one before it: its
    /// back is the previous sample.
    minute: VecDeque<(u64, StateCounts)>,
    /// The drop counters at the first sample and the previous one.
    counters_start: HashMap<&'static str, i64>,
    counters_previous: HashMap<&'static str, i64>,
    /// Socket key → (state, first seen in it, seen at the first sample).
    seen: HashMap<u64, (TcpState, u64, bool)>,
    samples: u32,
}

fn key(s: &Socket) -> u64 {
    match s.cookie {
        Some(c) => c.get(),
        None => {
            let mut h = DefaultHasher::new();
            (s.local, s.remote).hash(&mut h);
            h.finish()
        }
    }
}

impl Watch {
    /// Takes the next sample: `counts` are the snapshot's per-state counts.
    pub fn observe(&mut self, snap: &Snapshot, counts: &StateCounts) -> View {
        let t = snap
            .captured_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.samples += 1;
        let first = self.samples == 1;
        let mut seen = HashMap::with_capacity(snap.sockets.len());
        for s in &snap.sockets {
            let k = key(s);
            let mut entry = match self.seen.get(&k) {
                Some(&(state, since, at_least)) if state == s.state => (state, since, at_least),
                _ => (s.state, t, first),
            };
            if let Some(age) = crate::classify::state_age(s, &snap.host) {
                let kernel_since = t.saturating_sub(u64::from(age));
                if kernel_since <= entry.1 {
                    entry = (s.state, kernel_since, false);
                }
            }
            seen.insert(k, entry);
        }
        self.seen = seen;
        let (t0, c0) = *self.start.get_or_insert((t, *counts));
        let (tp, cp) = self.minute.back().copied().unwrap_or((t, *counts));
        while self
            .minute
            .get(1)
            .is_some_and(|&(t1, _)| t1.saturating_add(MINUTE_MS) <= t)
        {
            self.minute.pop_front();
        }
        let (_, cm) = self.minute.front().copied().unwrap_or((t, *counts));
        let mut view = View {
            sample: self.samples,
            elapsed_ms: t.saturating_sub(t0),
            ..View::default()
        };
        for st in TcpState::ALL {
            let now = counts.get(st);
            let dp = i64::from(now) - i64::from(cp.get(st));
            let minutes = t.saturating_sub(tp) as f64 / 60_000.0;
            view.states[st.index()] = StateChange {
                now,
                since_previous: dp,
                since_start: i64::from(now) - i64::from(c0.get(st)),
                per_minute: if minutes > 0.0 {
                    dp as f64 / minutes
                } else {
                    0.0
                },
                last_minute: i64::from(now) - i64::from(cm.get(st)),
                oldest_seen_ms: None,
                at_least: false,
            };
        }
        for &(state, since, at_least) in self.seen.values() {
            let c = &mut view.states[state.index()];
            let age = t.saturating_sub(since);
            if c.oldest_seen_ms.is_none_or(|o| age > o) {
                c.oldest_seen_ms = Some(age);
                c.at_least = at_least;
            } else if c.oldest_seen_ms == Some(age) {
                c.at_least |= at_least;
            }
        }
        self.minute.push_back((t, *counts));
        for k in crate::model::Host::DROP_COUNTERS {
            let Some(&now) = snap.host.tcp_ext.get(k) else {
                continue;
            };
            let start = *self.counters_start.entry(k).or_insert(now);
            let prev = self.counters_previous.insert(k, now).unwrap_or(now);
            // A counter that went backwards (the namespace made anew)
            // counts from 0.
            let moved = |from: i64| if now >= from { now - from } else { now };
            if moved(start) > 0 {
                view.drops.push((k, moved(prev), moved(start)));
            }
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{silent, snapshot, sock};
    use std::time::Duration;

    /// A CLOSE_WAIT the kernel says is 52 s old is 52 s old on the first
    /// sample, not "at least 0 s", and ages with the watch after that.
    #[test]
    fn the_kernels_age_and_the_watchs_agree() {
        let cw = silent(
            sock(TcpState::CloseWait, "10.0.0.1:30020", "10.0.0.9:4000", 7),
            52_000,
        );
        let mut est = sock(TcpState::Established, "10.0.0.1:30020", "10.0.0.9:4001", 8);
        est.tcp_info.as_mut().expect("ti").last_data_recv = 90_000;
        let mut snap = snapshot(vec![cw, est]);
        snap.captured_at = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut counts = StateCounts::default();
        for s in &snap.sockets {
            counts.add(s.state);
        }
        let mut w = Watch::default();
        let v = w.observe(&snap, &counts);
        let c = v.states[TcpState::CloseWait.index()];
        assert_eq!((c.oldest_seen_ms, c.at_least), (Some(52_000), false));
        let e = v.states[TcpState::Established.index()];
        assert_eq!((e.oldest_seen_ms, e.at_least), (Some(0), true));
        // Five seconds on; the kernel's clock runs on too.
        snap.captured_at += Duration::from_secs(5);
        for s in &mut snap.sockets {
            let ti = s.tcp_info.as_mut().expect("ti");
            ti.last_data_recv += 5_000;
            ti.last_ack_recv += 5_000;
        }
        let v = w.observe(&snap, &counts);
        assert_eq!(
            v.states[TcpState::CloseWait.index()].oldest_seen_ms,
            Some(57_000)
        );
        let e = v.states[TcpState::Established.index()];
        assert_eq!((e.oldest_seen_ms, e.at_least), (Some(5_000), true));
    }

    /// One sample after a step the rate since the previous sample is 0;
    /// the last minute still holds the step until a minute has passed.
    #[test]
    fn the_last_minute_holds_a_step_for_a_minute() {
        let mut snap = snapshot(vec![]);
        let mut w = Watch::default();
        let mut at = |secs: u64, close_wait: u32, w: &mut Watch| {
            snap.captured_at = UNIX_EPOCH + Duration::from_secs(1_000_000 + secs);
            let mut counts = StateCounts::default();
            for _ in 0..close_wait {
                counts.add(TcpState::CloseWait);
            }
            let c = w.observe(&snap, &counts).states[TcpState::CloseWait.index()];
            (c.per_minute.round() as i64, c.last_minute, c.since_start)
        };
        assert_eq!(at(0, 0, &mut w), (0, 0, 0));
        assert_eq!(at(5, 15, &mut w), (180, 15, 15));
        assert_eq!(at(10, 15, &mut w), (0, 15, 15), "one sample after the step");
        assert_eq!(at(60, 15, &mut w), (0, 15, 15), "the step is 60 s old");
        assert_eq!(at(65, 15, &mut w), (0, 0, 15), "a minute without change");
        assert_eq!(at(70, 20, &mut w), (60, 5, 20));
    }

    /// The drop counters that moved since the first sample, with their
    /// step since the previous one; a counter that went backwards counts
    /// from 0.
    #[test]
    fn drops_between_samples() {
        let mut snap = snapshot(vec![]);
        let counts = StateCounts::default();
        let mut w = Watch::default();
        let mut at = |v: i64, w: &mut Watch| {
            snap.host.tcp_ext.insert("ListenOverflows".into(), v);
            w.observe(&snap, &counts).drops
        };
        assert!(at(10, &mut w).is_empty(), "nothing moved yet");
        assert_eq!(at(15, &mut w), vec![("ListenOverflows", 5, 5)]);
        assert_eq!(at(15, &mut w), vec![("ListenOverflows", 0, 5)]);
        assert_eq!(at(2, &mut w), vec![("ListenOverflows", 2, 2)], "made anew");
    }
}
