//! A report to paste into a ticket: renders on GitHub and in Jira's
//! Markdown editor. Everything from a process is escaped: `|` would split a
//! table cell, a newline would end it.

use std::fmt::Write as _;
use std::io::{self, Write};

use crate::render::sanitize::terminal;
use crate::render::{filter_text, pids_text};
use crate::report::Report;
use crate::units::{human, rfc3339};

use crate::render::sanitize::markdown as escape;

/// A fenced code block that no backtick run inside `code` can close.
fn fenced(code: &str) -> String {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}\n{}\n{fence}", terminal(code.as_bytes()))
}

fn row(cells: &[String]) -> String {
    format!("| {} |", cells.join(" | "))
}

fn table(head: &[String], rows: &[Vec<String>], right_from: usize) -> String {
    let mut s = row(head);
    s.push('\n');
    let align: Vec<String> = (0..head.len())
        .map(|i| {
            if i >= right_from {
                "---:".to_string()
            } else {
                "---".to_string()
            }
        })
        .collect();
    s.push_str(&row(&align));
    for r in rows {
        s.push('\n');
        s.push_str(&row(r));
    }
    s
}

/// Writes one Markdown document for the reports: one per network
/// namespace with `--all-netns`, else one.
pub fn write(reports: &[Report], command_line: &str, out: &mut dyn Write) -> io::Result<()> {
    let Some(first) = reports.first() else {
        return Ok(());
    };
    let snap = first.snapshot;
    let h = &snap.host;
    let mut md = String::new();
    let title = snap
        .filter
        .ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if title.is_empty() {
        md.push_str("## zombiescan report\n\n");
    } else {
        let _ = writeln!(md, "## zombiescan report: port {title}\n");
    }
    let mut meta = vec![
        vec!["host".to_string(), escape(h.hostname.as_bytes())],
        vec!["kernel".to_string(), escape(h.kernel.as_bytes())],
        vec!["time".to_string(), rfc3339(snap.captured_at)],
        vec!["source".to_string(), snap.source.name().to_string()],
    ];
    if let Some(o) = snap.owners_from {
        meta.push(vec!["owners from".to_string(), o.name().to_string()]);
    }
    if let Some(f) = filter_text(snap) {
        meta.push(vec!["filter".to_string(), escape(f.as_bytes())]);
    }
    if reports.len() == 1 && (!snap.netns.own || snap.netns.name.is_some()) {
        meta.push(vec![
            "network namespace".to_string(),
            escape(snap.netns.label().as_bytes()),
        ]);
    }
    md.push_str(&table(&["".to_string(), "".to_string()], &meta, usize::MAX));
    let _ = writeln!(md, "\n\n{}\n", fenced(command_line));
    for r in reports {
        if reports.len() > 1 {
            let _ = writeln!(md, "### {}\n", escape(r.snapshot.netns.label().as_bytes()));
            body(&mut md, r, "####");
        } else {
            body(&mut md, r, "###");
        }
    }
    out.write_all(md.trim_end().as_bytes())?;
    out.write_all(b"\n")
}

/// The sections of one report, headed at level `h`.
fn body(md: &mut String, r: &Report, h: &str) {
    let snap = r.snapshot;
    let host = &snap.host;
    for hint in &r.hints {
        let _ = writeln!(md, "**Hint:** {}\n", escape(hint.as_bytes()));
    }
    let _ = writeln!(md, "{h} Summary\n");
    let states = r.states_present();
    let _ = writeln!(
        md,
        "{} sockets (IPv4 {}, IPv6 {}).\n",
        r.summary.total, r.summary.ipv4, r.summary.ipv6
    );
    if !states.is_empty() {
        let head: Vec<String> = states.iter().map(|s| s.name().to_string()).collect();
        let counts: Vec<String> = states
            .iter()
            .map(|&s| r.summary.by_state.get(s).to_string())
            .collect();
        let _ = writeln!(md, "{}\n", table(&head, &[counts], 0));
    }
    let facts = super::host_facts(host);
    if !facts.is_empty() {
        let _ = writeln!(md, "Host: {}.\n", escape(facts.join("; ").as_bytes()));
    }

    let _ = writeln!(md, "{h} Findings\n");
    if r.findings.is_empty() {
        md.push_str("None.\n\n");
    }
    for f in &r.findings {
        let mut head = format!(
            "{h}# {} — {} ×{}",
            f.severity.name().to_uppercase(),
            f.kind.name(),
            f.count
        );
        if !f.ports.is_empty() {
            let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
            let _ = write!(head, " · port {}", ports.join(", "));
        }
        if !f.pids.is_empty() {
            let _ = write!(head, " · pid {}", pids_text(&f.pids));
        }
        let _ = writeln!(md, "{head}\n");
        let _ = writeln!(md, "{}\n", escape(f.explanation.as_bytes()));
        let _ = writeln!(md, "**Fix:** {}\n", escape(f.remediation.as_bytes()));
        let ev: Vec<String> = super::evidence(f)
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    escape(k.as_bytes()),
                    escape(v.to_string().as_bytes())
                )
            })
            .collect();
        let _ = writeln!(md, "Evidence: {}\n", ev.join(", "));
    }

    if !r.ports.is_empty() {
        let _ = writeln!(md, "{h} Ports\n");
        let mut head: Vec<String> = ["port", "direction", "peer", "total"]
            .map(String::from)
            .to_vec();
        head.extend(states.iter().map(|s| s.name().to_string()));
        head.extend(["Recv-Q", "Send-Q", "pids"].map(String::from));
        let rows: Vec<Vec<String>> = r
            .ports
            .iter()
            .map(|g| {
                let mut row = vec![
                    g.port.to_string(),
                    g.direction.name().to_string(),
                    g.remote.map_or(String::new(), |ip| ip.to_string()),
                    g.by_state.total().to_string(),
                ];
                row.extend(states.iter().map(|&s| g.by_state.get(s).to_string()));
                row.extend([
                    g.recv_q.to_string(),
                    g.send_q.to_string(),
                    pids_text(&g.pids),
                ]);
                row
            })
            .collect();
        let _ = writeln!(md, "{}\n", table(&head, &rows, usize::MAX));
    }
    if !r.unix.is_empty() {
        let _ = writeln!(md, "{h} Unix sockets\n");
        let head: Vec<String> = [
            "unix socket",
            "queue",
            "backlog",
            "accepted",
            "pids",
            "behind",
        ]
        .map(String::from)
        .to_vec();
        let rows: Vec<Vec<String>> = r
            .unix
            .iter()
            .map(|g| {
                let (q, b) = g.queue.map_or(("?".into(), "?".into()), |(q, b)| {
                    (q.to_string(), b.to_string())
                });
                vec![
                    escape(&g.path),
                    q,
                    b,
                    g.accepted.to_string(),
                    pids_text(&g.pids),
                    g.behind
                        .iter()
                        .map(|l| format!("port {}", l.port))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        let _ = writeln!(md, "{}\n", table(&head, &rows, usize::MAX));
    }
    if !r.processes.is_empty() {
        let _ = writeln!(md, "{h} Processes\n");
        let in_pod = r.processes.iter().any(|p| p.process.container.is_some());
        let mut head: Vec<String> = ["pid", "comm", "uid", "sockets"].map(String::from).to_vec();
        if in_pod {
            head.insert(2, "container".into());
        }
        head.extend(states.iter().map(|s| s.name().to_string()));
        head.extend(["FDs", "FD limit", "cmdline"].map(String::from));
        let rows: Vec<Vec<String>> = r
            .processes
            .iter()
            .map(|p| {
                let pr = p.process;
                let mut row = vec![
                    pr.pid.to_string(),
                    escape(&pr.comm),
                    pr.uid.map_or("?".to_string(), |u| u.to_string()),
                    (p.sockets + p.unix).to_string(),
                ];
                if in_pod {
                    let c = pr.container.as_deref().unwrap_or("");
                    row.insert(2, escape(c.as_bytes()));
                }
                row.extend(states.iter().map(|&s| p.by_state.get(s).to_string()));
                row.push(pr.fds_open.to_string());
                row.push(
                    pr.fd_limit
                        .map_or("unlimited".to_string(), |l| l.to_string()),
                );
                let cmd: Vec<u8> = pr.cmdline.iter().copied().take(120).collect();
                row.push(escape(&cmd));
                row
            })
            .collect();
        let _ = writeln!(md, "{}\n", table(&head, &rows, usize::MAX));
    }
    let listed = r.listed();
    if !listed.is_empty() {
        let title = if r.all_sockets {
            "Sockets"
        } else {
            "Flagged sockets"
        };
        let _ = writeln!(md, "{h} {title}\n");
        let head: Vec<String> = [
            "state", "local", "remote", "age", "Recv-Q", "Send-Q", "timer", "pids", "findings",
        ]
        .map(String::from)
        .to_vec();
        // Without --sockets, the 20 worst: the findings count them all.
        let limit = if r.all_sockets { usize::MAX } else { 20 };
        let rows: Vec<Vec<String>> = listed
            .iter()
            .take(limit)
            .map(|l| {
                let s = l.socket;
                vec![
                    s.state.name().to_string(),
                    s.local.to_string(),
                    s.remote.to_string(),
                    l.age_ms.map_or(String::new(), |a| human(u64::from(a))),
                    s.recv_q.to_string(),
                    s.send_q.to_string(),
                    escape(super::timer_words(&s.timer).as_bytes()),
                    pids_text(snap.owners_of(s)),
                    l.kinds
                        .iter()
                        .map(|k| escape(k.name().as_bytes()))
                        .collect::<Vec<_>>()
                        .join(", "),
                ]
            })
            .collect();
        let _ = writeln!(md, "{}\n", table(&head, &rows, usize::MAX));
        if listed.len() > limit {
            let _ = writeln!(
                md,
                "{} more: `--sockets` lists them all.\n",
                listed.len() - limit
            );
        }
    }
    if !r.limitations.is_empty() {
        let _ = writeln!(md, "{h} Limitations\n");
        for l in &r.limitations {
            let _ = writeln!(md, "- {}", escape(l.as_bytes()));
        }
        md.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_in_their_cell() {
        assert_eq!(escape(b"a|b"), "a\\|b");
        assert_eq!(escape(b"line\nbreak"), "line\\\\x0abreak");
        assert_eq!(
            escape(b"*bold* _x_ `c` <script>"),
            "\\*bold\\* \\_x\\_ \\`c\\` \\<script\\>"
        );
        assert!(!escape(b"x\r\ny|z").contains('\n'));
    }

    #[test]
    fn fence_outlasts_backticks() {
        assert_eq!(
            fenced("zombiescan --port 1"),
            "```\nzombiescan --port 1\n```"
        );
        assert!(fenced("a ```` b").starts_with("`````\n"));
    }
}
