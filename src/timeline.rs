//! Recordings: one compact JSON document per sample (`--record FILE`,
//! NDJSON), and what a night of them says (`zombiescan report FILE`): when
//! each state, finding, port and process began to rise, its peak and when.
//!
//! A recorder can be killed at any moment: every complete line reads back,
//! and a torn last line is counted and skipped, never fatal.

use std::collections::BTreeMap;
use std::time::UNIX_EPOCH;

use serde::{Deserialize, Serialize};

use crate::model::{StateCounts, TcpState};
use crate::render::rfc3339;
use crate::report::Report;

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
}

fn nonzero(c: &StateCounts) -> BTreeMap<String, u32> {
    c.iter()
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s.name().to_string(), n))
        .collect()
}

/// The sample of a report.
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
    for k in [
        "ListenOverflows",
        "ListenDrops",
        "TCPAbortOnTimeout",
        "TCPTimeouts",
    ] {
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
            })
            .collect(),
        counters,
    }
}

/// A recording read back.
#[derive(Debug, Default)]
pub struct Recording {
    pub samples: Vec<Sample>,
    /// Lines that did not read (a torn last line, garbage).
    pub bad_lines: u32,
}

/// Parses NDJSON samples; a line that does not parse is counted.
pub fn parse(bytes: &[u8], rec: &mut Recording) {
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<Sample>(line) {
            Ok(s) => rec.samples.push(s),
            Err(_) => rec.bad_lines += 1,
        }
    }
}

/// One value over time and what it did.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    pub name: String,
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
    fn new(name: String, values: Vec<u32>) -> Series {
        let first = values.first().copied().unwrap_or(0);
        let last = values.last().copied().unwrap_or(0);
        let (peak_at, peak) =
            values.iter().copied().enumerate().fold(
                (0, 0),
                |best, (i, v)| if v > best.1 { (i, v) } else { best },
            );
        let low = values.iter().take(peak_at + 1).copied().min().unwrap_or(0);
        let onset_at = (peak > low).then(|| {
            values[..peak_at]
                .iter()
                .rposition(|&v| v == low)
                .map_or(0, |i| i + 1)
        });
        Series {
            name,
            values,
            first,
            last,
            peak,
            peak_at,
            onset_at,
        }
    }
}

/// What a recording says.
#[derive(Debug)]
pub struct Timeline {
    pub times: Vec<String>,
    pub states: Vec<Series>,
    pub findings: Vec<Series>,
    pub ports: Vec<Series>,
    pub processes: Vec<Series>,
    pub bad_lines: u32,
}

/// The samples taken at one moment: one per network namespace, with
/// `--all-netns`.
type Round<'a> = &'a [Sample];

/// Consecutive lines of the same time make a round.
fn rounds(samples: &[Sample]) -> Vec<Round<'_>> {
    samples.chunk_by(|a, b| a.t_ms == b.t_ms).collect()
}

/// Builds series of `key -> value` per round, absent meaning 0; `f` gives
/// the pairs of one sample and the round adds them up.
fn series_of(rounds: &[Round], f: impl Fn(&Sample) -> Vec<(String, u32)>) -> Vec<Series> {
    let mut by_key: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for (i, round) in rounds.iter().enumerate() {
        for (k, v) in round.iter().flat_map(&f) {
            let vals = by_key.entry(k).or_insert_with(|| vec![0; rounds.len()]);
            vals[i] += v;
        }
    }
    by_key.into_iter().map(|(k, v)| Series::new(k, v)).collect()
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

impl Timeline {
    pub fn new(rec: &Recording) -> Timeline {
        let samples = &rec.samples;
        let rounds = rounds(samples);
        // With more than one namespace (--all-netns), the states add up
        // over the host and every other series says which namespace.
        let many = samples.iter().any(|s| s.netns != samples[0].netns);
        let place = |s: &Sample, what: String| {
            if many {
                format!("{}: {what}", s.netns)
            } else {
                what
            }
        };
        let samples = &rounds[..];
        let states = series_of(samples, |s| {
            s.by_state.iter().map(|(k, v)| (k.clone(), *v)).collect()
        });
        let mut states: Vec<Series> = states;
        states.sort_by_key(|s| TcpState::from_name(&s.name).map_or(usize::MAX, TcpState::index));
        let findings = series_of(samples, |s| {
            s.findings
                .iter()
                .map(|f| {
                    let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
                    let name = if ports.is_empty() {
                        f.kind.clone()
                    } else {
                        format!("{} port {}", f.kind, ports.join(","))
                    };
                    (place(s, name), f.count)
                })
                .collect()
        });
        let rising = |v: Vec<Series>| -> Vec<Series> {
            let mut v: Vec<Series> = v.into_iter().filter(|s| s.onset_at.is_some()).collect();
            v.sort_by(|a, b| b.peak.cmp(&a.peak).then(a.name.cmp(&b.name)));
            v.truncate(20);
            v
        };
        let ports = rising(series_of(samples, |s| {
            s.ports
                .iter()
                .flat_map(|p| {
                    let at = place(
                        s,
                        match &p.remote {
                            Some(r) => format!("{} {}:{}", p.direction, r, p.port),
                            None => format!("{} port {}", p.direction, p.port),
                        },
                    );
                    p.by_state
                        .iter()
                        .filter(|(st, _)| watched(st))
                        .map(move |(st, n)| (format!("{at} {st}"), *n))
                })
                .collect()
        }));
        let processes = rising(series_of(samples, |s| {
            s.processes
                .iter()
                .flat_map(|p| {
                    let who = place(s, format!("{} ({})", p.pid, p.comm));
                    let fds = (format!("{who} fds"), p.fds_open);
                    p.by_state
                        .iter()
                        .filter(|(st, _)| watched(st))
                        .map(move |(st, n)| (format!("{who} {st}"), *n))
                        .chain(std::iter::once(fds))
                })
                .collect()
        }));
        Timeline {
            times: rounds.iter().map(|r| r[0].t.clone()).collect(),
            states,
            findings,
            ports,
            processes,
            bad_lines: rec.bad_lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onset_is_the_start_of_the_rise_to_the_peak() {
        let s = Series::new("x".into(), vec![3, 3, 2, 2, 5, 9, 9, 4]);
        assert_eq!((s.first, s.last, s.peak, s.peak_at), (3, 4, 9, 5));
        assert_eq!(
            s.onset_at,
            Some(4),
            "after the last low point before the peak"
        );
        assert_eq!(Series::new("flat".into(), vec![4, 4, 4]).onset_at, None);
        assert_eq!(Series::new("falling".into(), vec![9, 5, 1]).onset_at, None);
        assert_eq!(
            Series::new("from start".into(), vec![0, 1, 2]).onset_at,
            Some(1)
        );
        assert_eq!(Series::new("empty".into(), vec![]).onset_at, None);
    }

    #[test]
    fn a_recording_of_every_namespace_is_read_round_by_round() {
        // Two rounds of two namespaces: CLOSE_WAIT rises in "b" only.
        let line = |t: u64, ns: &str, cw: u32| {
            format!(
                r#"{{"t":"2026-11-25T03:00:0{t}.000Z","t_ms":{t},"host":"h","netns":"{ns}","total":{cw},"by_state":{{"CLOSE_WAIT":{cw}}},"ports":[{{"port":8000,"direction":"inbound","remote":null,"by_state":{{"CLOSE_WAIT":{cw}}}}}],"processes":[],"findings":[],"counters":{{}}}}"#
            )
        };
        let text = [
            line(1, "a", 1),
            line(1, "b", 2),
            line(2, "a", 1),
            line(2, "b", 6),
        ]
        .join("\n");
        let mut rec = Recording::default();
        parse(text.as_bytes(), &mut rec);
        let tl = Timeline::new(&rec);
        assert_eq!(tl.times.len(), 2, "two rounds, not four samples");
        let cw = tl
            .states
            .iter()
            .find(|s| s.name == "CLOSE_WAIT")
            .expect("state");
        assert_eq!(cw.values, [3, 7], "the states add up over the namespaces");
        let names: Vec<&str> = tl.ports.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["b: inbound port 8000 CLOSE_WAIT"], "only b's rose");
        assert_eq!(tl.ports[0].values, [2, 6]);
    }

    #[test]
    fn torn_and_garbage_lines_are_counted() {
        let good = r#"{"t":"2026-11-25T03:00:00.000Z","t_ms":1,"host":"h","netns":"n","total":1,"by_state":{"LISTEN":1},"ports":[],"processes":[],"findings":[],"counters":{}}"#;
        let text = format!("{good}\n{good}\ngarbage\n{}", &good[..40]);
        let mut rec = Recording::default();
        parse(text.as_bytes(), &mut rec);
        assert_eq!((rec.samples.len(), rec.bad_lines), (2, 2));
    }
}
