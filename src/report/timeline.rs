//! Recordings: one compact JSON document per sample (`--record FILE`,
//! NDJSON), and what a night of them says (`zombiescan report FILE`): when
//! each state, finding, port and process began to rise, its peak and when.
//!
//! A recorder can be killed at any moment: every complete line reads back,
//! and a torn last line is counted and skipped, never fatal.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::model::{Host, StateCounts, TcpState};
use crate::report::Report;
use crate::units::rfc3339;

/// How many ports and processes a sample keeps, the largest first.
const KEEP: usize = 50;

/// One line of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// When the sample was taken, RFC 3339, and as Unix milliseconds.
    pub t: String,
    pub t_ms: u64,
    pub host: String,
    pub netns: String,
    pub total: u32,
    /// Non-zero states only.
    pub by_state: BTreeMap<String, u32>,
    pub ports: Vec<SamplePort>,
    pub processes: Vec<SampleProcess>,
    pub findings: Vec<SampleFinding>,
    /// Host counters: tw, orphan, files_allocated, ListenOverflows, ...
    pub counters: BTreeMap<String, i64>,
    /// What the recorder was asked to watch (`port 30020`), when filtered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// The listeners with a queue, and those of the ports asked for: their
    /// accept queue and backlog, TCP and unix.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<SampleListener>,
}

/// A listener's accept queue at a sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleListener {
    /// `port 30020`, `unix /run/app.sock`.
    pub at: String,
    pub queue: u32,
    pub backlog: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplePort {
    pub port: u16,
    pub direction: String,
    pub remote: Option<String>,
    pub by_state: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleProcess {
    pub pid: u32,
    pub comm: String,
    pub sockets: u32,
    pub fds_open: u32,
    pub fd_limit: Option<u64>,
    pub by_state: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SampleFinding {
    pub kind: String,
    pub severity: String,
    pub count: u32,
    pub ports: Vec<u16>,
    pub pids: Vec<u32>,
    /// The unix socket it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

fn nonzero(c: &StateCounts) -> BTreeMap<String, u32> {
    c.iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s.name().to_string(), n))
        .collect()
}

/// The sample of a report.
/// The filter in words, as a recording's header gives it.
fn filter_words(f: &crate::model::Filter) -> Option<String> {
    let mut parts = Vec::new();
    let join = |v: Vec<String>| v.join(",");
    if !f.ports.is_empty() {
        parts.push(format!(
            "port {}",
            join(f.ports.iter().map(u16::to_string).collect())
        ));
    }
    if !f.paths.is_empty() {
        let p = f
            .paths
            .iter()
            .map(|p| String::from_utf8_lossy(p).into_owned());
        parts.push(format!("unix {}", join(p.collect())));
    }
    if !f.pids.is_empty() {
        parts.push(format!(
            "pid {}",
            join(f.pids.iter().map(u32::to_string).collect())
        ));
    }
    if !f.processes.is_empty() {
        parts.push(format!("process {}", join(f.processes.clone())));
    }
    if !f.states.is_empty() {
        parts.push(format!(
            "state {}",
            join(f.states.iter().map(|s| s.name().to_string()).collect())
        ));
    }
    (!parts.is_empty()).then(|| parts.join(" · "))
}

/// The listeners worth a series: a queue, or a port asked for.
fn listeners(r: &Report) -> Vec<SampleListener> {
    let snap = r.snapshot;
    let mut by_port: BTreeMap<u16, (u32, u32)> = BTreeMap::new();
    for s in snap.sockets.iter().filter(|s| s.state == TcpState::Listen) {
        let e = by_port.entry(s.local.port()).or_default();
        e.0 = e.0.saturating_add(s.recv_q);
        e.1 = e.1.saturating_add(s.send_q);
    }
    let mut out: Vec<SampleListener> = by_port
        .into_iter()
        .filter(|(p, (q, _))| *q > 0 || snap.filter.ports.contains(p))
        .map(|(p, (queue, backlog))| SampleListener {
            at: format!("port {p}"),
            queue,
            backlog,
        })
        .collect();
    out.extend(r.unix.iter().filter_map(|g| {
        let (queue, backlog) = g.queue?;
        Some(SampleListener {
            at: format!("unix {}", String::from_utf8_lossy(&g.path)),
            queue,
            backlog,
        })
    }));
    out.truncate(KEEP);
    out
}

pub fn sample(r: &Report) -> Sample {
    let snap = r.snapshot;
    let mut counters = BTreeMap::new();
    for (k, v) in [("tw", "TCP"), ("orphan", "TCP")] {
        if let Some(n) = snap.host.sockstat(v, k) {
            counters.insert(k.to_string(), n as i64);
        }
    }
    if let Some(n) = snap.host.files_allocated {
        counters.insert("files_allocated".into(), n as i64);
    }
    for k in Host::DROP_COUNTERS {
        if let Some(v) = snap.host.tcp_ext.get(k) {
            counters.insert(k.to_string(), *v);
        }
    }
    Sample {
        t: rfc3339(snap.captured_at),
        t_ms: snap
            .captured_at
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        host: snap.host.hostname.clone(),
        netns: snap.netns.label(),
        total: r.summary.total,
        by_state: nonzero(&r.summary.by_state),
        ports: r
            .ports
            .iter()
            .take(KEEP)
            .map(|g| SamplePort {
                port: g.port,
                direction: g.direction.name().into(),
                remote: g.remote.map(|ip| ip.to_string()),
                by_state: nonzero(&g.by_state),
            })
            .collect(),
        processes: r
            .processes
            .iter()
            .take(KEEP)
            .map(|p| SampleProcess {
                pid: p.process.pid,
                comm: String::from_utf8_lossy(&p.process.comm).into_owned(),
                sockets: p.sockets,
                fds_open: p.process.fds_open,
                fd_limit: p.process.fd_limit,
                by_state: nonzero(&p.by_state),
            })
            .collect(),
        findings: r
            .findings
            .iter()
            .map(|f| SampleFinding {
                kind: f.kind.name().into(),
                severity: f.severity.name().into(),
                count: f.count,
                ports: f.ports.clone(),
                pids: f.pids.clone(),
                path: f
                    .path
                    .as_ref()
                    .map(|p| String::from_utf8_lossy(p).into_owned()),
            })
            .collect(),
        counters,
        filter: filter_words(&snap.filter),
        listeners: listeners(r),
    }
}

/// One value over time and what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
    /// The namespace it belongs to, when the recording holds several.
    pub netns: Option<String>,
    pub values: Vec<u32>,
    pub first: u32,
    pub last: u32,
    pub peak: u32,
    /// Index of the first sample at the peak.
    pub peak_at: usize,
    /// Index of the first sample of the rise that led to the peak: the
    /// sample after the last low point before it. `None` when it never
    /// rose.
    pub onset_at: Option<usize>,
}

impl Series {
    /// Its name, after its namespace's when there are several.
    pub fn label(&self) -> String {
        match &self.netns {
            Some(n) => format!("{n}: {}", self.name),
            None => self.name.clone(),
        }
    }

    #[cfg(test)]
    fn new(name: String, values: Vec<u32>) -> Series {
        let n = values.len();
        Span { start: 0, values }.series(name, n)
    }
}

/// A series as recorded: its values from the round it first appeared to
/// the last it was seen in; 0 before and after. A pid that lives for three
/// samples of a night costs three numbers, not one per sample of the night.
#[derive(Debug, Default)]
struct Span {
    start: usize,
    values: Vec<u32>,
}

impl Span {
    /// The value at round `i` of `n`.
    fn at(&self, i: usize) -> u32 {
        i.checked_sub(self.start)
            .and_then(|j| self.values.get(j))
            .copied()
            .unwrap_or(0)
    }

    fn add(&mut self, round: usize, v: u32) {
        if self.values.is_empty() {
            self.start = round;
        }
        let j = round.saturating_sub(self.start);
        if self.values.len() <= j {
            self.values.resize(j + 1, 0);
        }
        // A sum of counts saturates rather than wraps.
        self.values[j] = self.values[j].saturating_add(v);
    }

    /// The peak and its round, the first of equal peaks (round 0 for a
    /// series that stayed at 0).
    fn peak(&self, n: usize) -> (usize, u32) {
        let mut best = (0, 0);
        for (j, &v) in self.values.iter().enumerate() {
            if v > best.1 && self.start + j < n {
                best = (self.start + j, v);
            }
        }
        best
    }

    /// What the series did over `n` rounds, computed from the span alone.
    fn summary(&self, n: usize) -> Summary {
        let (peak_at, peak) = self.peak(n);
        // The lowest value up to the peak: 0 when the series started after
        // the first round.
        let low = if self.start > 0 {
            0
        } else {
            self.values
                .iter()
                .take(peak_at + 1)
                .copied()
                .min()
                .unwrap_or(0)
        };
        // The rise starts after the last round at that low before the peak.
        let onset_at =
            (peak > low).then(
                || match (self.start..peak_at).rev().find(|&i| self.at(i) == low) {
                    Some(i) => i + 1,
                    None => self.start,
                },
            );
        Summary {
            first: self.at(0),
            last: if n == 0 { 0 } else { self.at(n - 1) },
            peak,
            peak_at,
            onset_at,
        }
    }

    fn series(&self, name: String, n: usize) -> Series {
        let s = self.summary(n);
        Series {
            name,
            netns: None,
            values: (0..n).map(|i| self.at(i)).collect(),
            first: s.first,
            last: s.last,
            peak: s.peak,
            peak_at: s.peak_at,
            onset_at: s.onset_at,
        }
    }
}

/// [`Series`] without its values.
struct Summary {
    first: u32,
    last: u32,
    peak: u32,
    peak_at: usize,
    onset_at: Option<usize>,
}

/// What a recording says.
#[derive(Debug)]
pub struct Timeline {
    pub times: Vec<String>,
    pub states: Vec<Series>,
    pub findings: Vec<Series>,
    pub ports: Vec<Series>,
    pub processes: Vec<Series>,
    /// Connections refused or timed out: the growth of each drop counter
    /// (ListenOverflows, ListenDrops, TCPAbortOnTimeout, TCPTimeouts) per
    /// sample interval; a counter that went backwards (a namespace made
    /// anew, a reboot) counts from 0 again.
    pub drops: Vec<Series>,
    /// Each listener's accept queue over time, its backlog in its name.
    pub queues: Vec<Series>,
    /// What the recording measured, and how.
    pub header: Header,
    /// What changed when, in time order: each finding's first sample, peak
    /// and end, the drops, a queue at its backlog.
    pub story: Vec<String>,
    pub bad_lines: u32,
}

/// What a recording measured: on which hosts and namespaces, with which
/// filter, every how long, and where samples are missing.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Header {
    pub hosts: Vec<String>,
    pub netns: Vec<String>,
    pub filters: Vec<String>,
    /// The usual interval between samples (the median).
    pub period_ms: Option<u64>,
    /// Gaps: (the sample after the gap, how long it was), where an interval
    /// is more than twice the usual (a recorder stopped, a host asleep).
    pub gaps: Vec<(usize, u64)>,
}

/// Pathological states worth a series per port and process.
fn watched(state: &str) -> bool {
    [
        "CLOSE_WAIT",
        "SYN_SENT",
        "SYN_RECV",
        "FIN_WAIT2",
        "LAST_ACK",
        "CLOSING",
        "ESTABLISHED",
    ]
    .contains(&state)
}

/// Series by name, each one number per round so far.
type Columns = BTreeMap<String, Span>;

/// Adds `v` to series `key` at round `round` (earlier rounds it missed are
/// 0).
fn bump(m: &mut Columns, key: &str, round: usize, v: u32) {
    match m.get_mut(key) {
        Some(span) => span.add(round, v),
        None => m.entry(key.to_string()).or_default().add(round, v),
    }
}

/// The series of one namespace that are named after what they concern.
#[derive(Debug, Default)]
struct Named {
    findings: Columns,
    ports: Columns,
    processes: Columns,
    drops: Columns,
    queues: Columns,
    /// The last value of each drop counter, and the last backlog of each
    /// listener.
    counters: BTreeMap<String, i64>,
    backlogs: BTreeMap<String, u32>,
}

/// The longest recording line read: a sample of a busy host is a few
/// kilobytes (the 50 largest ports and processes).
pub const MAX_LINE: usize = 1 << 20;

/// Consumes `input` up to the end of the current line.
fn skip_line(input: &mut impl std::io::BufRead) -> std::io::Result<()> {
    loop {
        let buf = input.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                input.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                input.consume(n);
            }
        }
    }
}

/// Reads a recording one sample at a time into its series, so that a night
/// of samples is never held whole: memory grows by one number per series
/// and round. Lines of the same time (one per namespace, with
/// `--all-netns`) make one round; the states add up over the namespaces,
/// and with more than one, the other series are named with theirs.
#[derive(Debug, Default)]
pub struct Builder {
    times: Vec<String>,
    t_ms: Vec<u64>,
    hosts: std::collections::BTreeSet<String>,
    filters: std::collections::BTreeSet<String>,
    last_t_ms: Option<u64>,
    states: Columns,
    by_netns: BTreeMap<String, Named>,
    /// Lines that did not read (a torn last line, garbage).
    pub bad_lines: u32,
}

impl Builder {
    /// Reads NDJSON samples from `input`; a line that does not parse, or
    /// is longer than [`MAX_LINE`], is counted, never fatal.
    pub fn read(&mut self, mut input: impl std::io::BufRead) -> std::io::Result<()> {
        use std::io::{BufRead, Read};
        let mut line = Vec::new();
        loop {
            line.clear();
            let limit = MAX_LINE as u64 + 1;
            if (&mut input).take(limit).read_until(b'\n', &mut line)? == 0 {
                return Ok(());
            }
            if line.len() > MAX_LINE {
                self.bad_lines += 1;
                skip_line(&mut input)?;
                continue;
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<Sample>(&line) {
                Ok(s) => self.add(&s),
                Err(_) => self.bad_lines += 1,
            }
        }
    }

    /// Samples read so far.
    pub fn rounds(&self) -> usize {
        self.times.len()
    }

    pub fn add(&mut self, s: &Sample) {
        if self.last_t_ms != Some(s.t_ms) {
            self.times.push(s.t.clone());
            self.t_ms.push(s.t_ms);
            self.last_t_ms = Some(s.t_ms);
        }
        if self.hosts.len() < 16 {
            self.hosts.insert(s.host.clone());
        }
        if let Some(f) = &s.filter
            && self.filters.len() < 16
        {
            self.filters.insert(f.clone());
        }
        let round = self.times.len() - 1;
        for (k, v) in &s.by_state {
            bump(&mut self.states, k, round, *v);
        }
        let named = match self.by_netns.get_mut(&s.netns) {
            Some(n) => n,
            None => self.by_netns.entry(s.netns.clone()).or_default(),
        };
        for f in &s.findings {
            let mut name = if f.ports.is_empty() {
                f.kind.clone()
            } else {
                let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
                format!("{} port {}", f.kind, ports.join(","))
            };
            if let Some(p) = &f.path {
                name = format!("{name} unix {p}");
            }
            bump(&mut named.findings, &name, round, f.count);
        }
        for p in &s.ports {
            let at = match &p.remote {
                Some(r) => format!("{} {}:{}", p.direction, r, p.port),
                None => format!("{} port {}", p.direction, p.port),
            };
            for (st, n) in p.by_state.iter().filter(|(st, _)| watched(st)) {
                bump(&mut named.ports, &format!("{at} {st}"), round, *n);
            }
        }
        for k in Host::DROP_COUNTERS {
            let Some(&v) = s.counters.get(k) else {
                continue;
            };
            // The first sample is where counting starts; a counter that
            // went backwards started again from 0.
            let grew = match named.counters.insert(k.to_string(), v) {
                None => 0,
                Some(last) if v >= last => v - last,
                Some(_) => v,
            };
            bump(
                &mut named.drops,
                k,
                round,
                u32::try_from(grew.max(0)).unwrap_or(u32::MAX),
            );
        }
        for l in &s.listeners {
            named.backlogs.insert(l.at.clone(), l.backlog);
            bump(&mut named.queues, &l.at, round, l.queue);
        }
        for p in &s.processes {
            let who = format!("{} ({})", p.pid, p.comm);
            for (st, n) in p.by_state.iter().filter(|(st, _)| watched(st)) {
                bump(&mut named.processes, &format!("{who} {st}"), round, *n);
            }
            bump(
                &mut named.processes,
                &format!("{who} fds"),
                round,
                p.fds_open,
            );
        }
    }

    pub fn finish(self) -> Timeline {
        let n = self.times.len();
        let mut states: Vec<Series> = self
            .states
            .into_iter()
            .map(|(k, v)| v.series(k, n))
            .collect();
        states.sort_by_key(|s| TcpState::from_name(&s.name).map_or(usize::MAX, TcpState::index));
        let many = self.by_netns.len() > 1;
        let (mut findings, mut ports, mut processes) = (Vec::new(), Vec::new(), Vec::new());
        let (mut drops, mut queues) = (Vec::new(), Vec::new());
        let netns: Vec<String> = self.by_netns.keys().cloned().collect();
        for (netns, named) in self.by_netns {
            let ns = many.then(|| netns.clone());
            let of = |k: String| (ns.clone(), k);
            findings.extend(named.findings.into_iter().map(|(k, v)| {
                let mut s = v.series(k, n);
                s.netns = ns.clone();
                s
            }));
            drops.extend(
                named
                    .drops
                    .into_iter()
                    .map(|(k, v)| {
                        let mut s = v.series(k, n);
                        s.netns = ns.clone();
                        s
                    })
                    .filter(|s| s.peak > 0),
            );
            let backlogs = named.backlogs;
            queues.extend(named.queues.into_iter().map(|(k, v)| {
                let b = backlogs.get(&k).copied().unwrap_or(0);
                let mut s = v.series(format!("{k} accept queue (backlog {b})"), n);
                s.netns = ns.clone();
                s
            }));
            ports.extend(named.ports.into_iter().map(|(k, v)| (of(k), v)));
            processes.extend(named.processes.into_iter().map(|(k, v)| (of(k), v)));
        }
        // Of the ports and processes, the 20 that rose highest: only those
        // are spelt out round by round.
        type Key = (Option<String>, String);
        let rising = |v: Vec<(Key, Span)>| -> Vec<Series> {
            let mut v: Vec<(u32, Key, Span)> = v
                .into_iter()
                .filter_map(|(k, span)| {
                    let s = span.summary(n);
                    s.onset_at.map(|_| (s.peak, k, span))
                })
                .collect();
            v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            v.truncate(20);
            v.into_iter()
                .map(|(_, (ns, k), span)| {
                    let mut s = span.series(k, n);
                    s.netns = ns;
                    s
                })
                .collect()
        };
        let header = header(&self.t_ms, self.hosts, netns, self.filters);
        let story = story(&self.times, &self.t_ms, &findings, &drops, &queues);
        Timeline {
            times: self.times,
            states,
            findings,
            ports: rising(ports),
            processes: rising(processes),
            drops,
            queues,
            header,
            story,
            bad_lines: self.bad_lines,
        }
    }
}

/// The recording's header: hosts, namespaces, filters, its usual period
/// and the gaps in it.
fn header(
    t_ms: &[u64],
    hosts: std::collections::BTreeSet<String>,
    netns: Vec<String>,
    filters: std::collections::BTreeSet<String>,
) -> Header {
    let mut steps: Vec<u64> = t_ms.windows(2).map(|w| w[1].saturating_sub(w[0])).collect();
    let gaps_in = steps.clone();
    steps.sort_unstable();
    let period_ms = steps.get(steps.len() / 2).copied();
    let gaps = match period_ms {
        Some(p) if p > 0 => gaps_in
            .iter()
            .enumerate()
            .filter(|(_, d)| **d > 2 * p)
            .map(|(i, d)| (i + 1, *d))
            .collect(),
        _ => Vec::new(),
    };
    Header {
        hosts: hosts.into_iter().collect(),
        netns,
        filters: filters.into_iter().collect(),
        period_ms,
        gaps,
    }
}

/// `2026-11-25T03:04:05.123Z` as `03:04:05`.
fn hms(t: &str) -> &str {
    t.get(11..19).unwrap_or(t)
}

/// What changed when: each finding's first sample, its peak and its end;
/// the drops (how many, from when to when, the peak rate); a listener's
/// queue at its backlog. In time order.
fn story(
    times: &[String],
    t_ms: &[u64],
    findings: &[Series],
    drops: &[Series],
    queues: &[Series],
) -> Vec<String> {
    let at = |i: usize| times.get(i).map_or("?", |t| hms(t));
    let mut events: Vec<(usize, String)> = Vec::new();
    for f in findings {
        let Some(start) = f.values.iter().position(|&v| v > 0) else {
            continue;
        };
        let end = f.values.iter().rposition(|&v| v > 0).unwrap_or(start);
        let until = if end + 1 < f.values.len() {
            format!(", gone at {}", at(end + 1))
        } else {
            format!(", still {} at the end", f.last)
        };
        events.push((
            start,
            format!(
                "{} {} ({}), peak {} at {}{until}",
                at(start),
                f.label(),
                f.values[start],
                f.peak,
                at(f.peak_at)
            ),
        ));
    }
    for d in drops {
        let Some(start) = d.values.iter().position(|&v| v > 0) else {
            continue;
        };
        let end = d.values.iter().rposition(|&v| v > 0).unwrap_or(start);
        let total: u64 = d.values.iter().map(|&v| u64::from(v)).sum();
        // The peak rate: the most in one interval, per minute.
        let (mut best, mut best_at) = (0.0f64, start);
        for (i, &v) in d.values.iter().enumerate().skip(1) {
            let dt = t_ms
                .get(i)
                .zip(t_ms.get(i - 1))
                .map_or(0, |(a, b)| a.saturating_sub(*b));
            if dt > 0 {
                let rate = f64::from(v) * 60_000.0 / dt as f64;
                if rate > best {
                    (best, best_at) = (rate, i);
                }
            }
        }
        events.push((
            start,
            format!(
                "{}–{} {total} {} (connections refused or timed out), peak {:.0}/min at {}",
                at(start.saturating_sub(1)),
                at(end),
                d.label(),
                best,
                at(best_at)
            ),
        ));
    }
    for q in queues {
        let backlog: u32 = q
            .name
            .rsplit_once("(backlog ")
            .and_then(|(_, b)| b.trim_end_matches(')').parse().ok())
            .unwrap_or(0);
        if backlog == 0 {
            continue;
        }
        if let Some(full) = q.values.iter().position(|&v| v >= backlog) {
            let back = q.values[full..].iter().position(|&v| v < backlog);
            let until = back.map_or(String::new(), |b| {
                format!(", below it again at {}", at(full + b))
            });
            events.push((
                full,
                format!(
                    "{} {} full ({}/{backlog}){until}",
                    at(full),
                    q.label(),
                    q.values[full]
                ),
            ));
        }
    }
    events.sort_by_key(|(i, _)| *i);
    events.into_iter().map(|(_, e)| e).collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod story_tests;
