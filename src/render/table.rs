//! The terminal report: an `ss -s`-style summary, then the per-port and
//! per-process tables. Colour only when asked (a terminal without NO_COLOR).

use std::io::{self, Write};

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use crate::classify::{Severity, human};
use crate::model::TcpState;
use crate::render::sanitize::terminal;
use crate::render::{filter_text, pids_text, rfc3339};
use crate::report::Report;

/// States worth an eye: coloured when non-zero.
fn alarming(s: TcpState) -> bool {
    matches!(
        s,
        TcpState::CloseWait
            | TcpState::SynSent
            | TcpState::FinWait2
            | TcpState::LastAck
            | TcpState::Closing
    )
}

fn new_table(color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Dynamic);
    if color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t
}

fn header(t: &mut Table, names: impl IntoIterator<Item = String>) {
    t.set_header(
        names
            .into_iter()
            .map(|n| Cell::new(n).add_attribute(Attribute::Bold)),
    );
}

fn num(n: impl ToString) -> Cell {
    Cell::new(n.to_string()).set_alignment(CellAlignment::Right)
}

fn state_cell(s: TcpState, n: u32, color: bool) -> Cell {
    let c = num(if n == 0 { String::new() } else { n.to_string() });
    if color && n > 0 && alarming(s) {
        c.fg(Color::Yellow)
    } else {
        c
    }
}

fn write_summary(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let snap = r.snapshot;
    let h = &snap.host;
    let title = format!(
        "zombiescan · {} · kernel {} · source {} · {}",
        terminal(h.hostname.as_bytes()),
        terminal(h.kernel.as_bytes()),
        snap.source.name(),
        rfc3339(snap.captured_at)
    );
    if color {
        writeln!(out, "\x1b[1m{title}\x1b[0m")?;
    } else {
        writeln!(out, "{title}")?;
    }
    if !snap.netns.own {
        writeln!(out, "{}", terminal(snap.netns.label().as_bytes()))?;
    }
    if let Some(f) = filter_text(snap) {
        writeln!(out, "filter: {}", terminal(f.as_bytes()))?;
    }
    let s = &r.summary;
    let by_state: Vec<String> = s
        .by_state
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{} {n}", st.name()))
        .collect();
    writeln!(
        out,
        "TCP: {} sockets (ipv4 {}, ipv6 {}){}{}",
        s.total,
        s.ipv4,
        s.ipv6,
        if by_state.is_empty() { "" } else { ": " },
        by_state.join(", ")
    )?;
    let host = super::host_facts(h);
    if !host.is_empty() {
        writeln!(out, "host: {}", terminal(host.join(" · ").as_bytes()))?;
    }
    Ok(())
}

fn write_ports(
    r: &Report,
    states: &[TcpState],
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    if r.ports.is_empty() {
        return Ok(());
    }
    let mut t = new_table(color);
    header(
        &mut t,
        ["PORT", "DIRECTION", "PEER", "TOTAL"]
            .into_iter()
            .map(String::from)
            .chain(states.iter().map(|s| s.name().to_string()))
            .chain(["RECV-Q", "SEND-Q", "PIDS"].into_iter().map(String::from)),
    );
    for g in &r.ports {
        let mut row = vec![
            num(g.port),
            Cell::new(g.direction.name()),
            Cell::new(g.remote.map_or(String::new(), |ip| ip.to_string())),
            num(g.by_state.total()),
        ];
        row.extend(
            states
                .iter()
                .map(|&s| state_cell(s, g.by_state.get(s), color)),
        );
        row.extend([num(g.recv_q), num(g.send_q), Cell::new(pids_text(&g.pids))]);
        t.add_row(row);
    }
    writeln!(out, "\n{t}")
}

fn write_processes(
    r: &Report,
    states: &[TcpState],
    color: bool,
    out: &mut dyn Write,
) -> io::Result<()> {
    if r.processes.is_empty() {
        return Ok(());
    }
    let mut t = new_table(color);
    header(
        &mut t,
        ["PID", "COMM", "UID", "SOCKETS"]
            .into_iter()
            .map(String::from)
            .chain(states.iter().map(|s| s.name().to_string()))
            .chain(["FDS", "FD LIMIT", "CMDLINE"].into_iter().map(String::from)),
    );
    for p in &r.processes {
        let pr = p.process;
        let mut row = vec![
            num(pr.pid),
            Cell::new(terminal(&pr.comm)),
            num(pr.uid.map_or("?".to_string(), |u| u.to_string())),
            num(p.sockets),
        ];
        row.extend(
            states
                .iter()
                .map(|&s| state_cell(s, p.by_state.get(s), color)),
        );
        row.push(num(pr.fds_open));
        row.push(num(pr
            .fd_limit
            .map_or("unlimited".to_string(), |l| l.to_string())));
        let mut cmd = terminal(&pr.cmdline);
        if cmd.chars().count() > 48 {
            cmd = cmd.chars().take(47).collect::<String>() + "…";
        }
        row.push(Cell::new(cmd));
        t.add_row(row);
    }
    writeln!(out, "\n{t}")
}

/// Wraps `text`, printed after `indent`-wide prefix, at `width` columns;
/// each line after the first is indented.
fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut col = indent.len();
    for word in text.split_whitespace() {
        let w = word.chars().count();
        if col > indent.len() && col + 1 + w > width {
            out.push('\n');
            out.push_str(indent);
            col = indent.len();
        } else if col > indent.len() {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += w;
    }
    out
}

fn write_findings(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    if r.findings.is_empty() {
        return writeln!(out, "\nno findings");
    }
    for f in &r.findings {
        let sev = f.severity.name().to_uppercase();
        let sev = match (color, f.severity) {
            (false, _) => sev,
            (true, Severity::Critical) => format!("\x1b[1;31m{sev}\x1b[0m"),
            (true, Severity::Warning) => format!("\x1b[1;33m{sev}\x1b[0m"),
            (true, Severity::Info) => format!("\x1b[1m{sev}\x1b[0m"),
        };
        let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
        let mut head = format!("{sev} {} ×{}", f.kind.name(), f.count);
        if !ports.is_empty() {
            head.push_str(&format!(" · port {}", ports.join(",")));
        }
        if !f.pids.is_empty() {
            head.push_str(&format!(" · pid {}", pids_text(&f.pids)));
        }
        writeln!(out, "\n{head}")?;
        writeln!(
            out,
            "  {}",
            wrap(&terminal(f.explanation.as_bytes()), 100, "  ")
        )?;
        writeln!(
            out,
            "  fix: {}",
            wrap(&terminal(f.remediation.as_bytes()), 100, "       ")
        )?;
        let ev: Vec<String> = f.evidence.iter().map(|(k, v)| format!("{k}={v}")).collect();
        writeln!(
            out,
            "  evidence: {}",
            wrap(&terminal(ev.join(" ").as_bytes()), 100, "            ")
        )?;
    }
    Ok(())
}

fn write_sockets(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let mut listed = r.sockets().peekable();
    if listed.peek().is_none() {
        return Ok(());
    }
    let mut t = new_table(color);
    header(
        &mut t,
        [
            "STATE", "LOCAL", "REMOTE", "RECV-Q", "SEND-Q", "TIMER", "PIDS", "FINDINGS",
        ]
        .map(String::from),
    );
    // Without --sockets, a long list of flagged sockets is cut: the findings
    // above already count them, the JSON lists them all.
    let limit = if r.all_sockets { usize::MAX } else { 20 };
    let mut more = 0usize;
    for (n, (s, kinds)) in listed.enumerate() {
        if n >= limit {
            more += 1;
            continue;
        }
        let timer = match s.timer.kind {
            crate::model::TimerKind::Off => "off".to_string(),
            k => format!("{},{}ms,{}", k.name(), s.timer.expires_ms, s.timer.count),
        };
        t.add_row(vec![
            if color && alarming(s.state) {
                Cell::new(s.state.name()).fg(Color::Yellow)
            } else {
                Cell::new(s.state.name())
            },
            Cell::new(s.local),
            Cell::new(s.remote),
            num(s.recv_q),
            num(s.send_q),
            Cell::new(timer),
            Cell::new(pids_text(r.snapshot.owners_of(s))),
            Cell::new(kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")),
        ]);
    }
    writeln!(out, "\n{t}")?;
    if more > 0 {
        writeln!(
            out,
            "({more} more flagged sockets: --sockets lists them all)"
        )?;
    }
    Ok(())
}

/// Columns a line takes on a terminal: its characters, without the colour
/// escapes (`ESC [ ... m`).
fn visible_width(line: &str) -> usize {
    let mut n = 0;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // A CSI sequence ends with a byte in @..~.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            n += 1;
        }
    }
    n
}

/// The lines of `text` that fit a screen of `rows` × `cols`, as `top`
/// shows what fits: a line wider than the screen takes more than one row.
/// The last row says how many lines did not fit.
pub fn fit_screen(text: &str, rows: usize, cols: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let cols = cols.max(1);
    let height = |l: &str| visible_width(l).div_ceil(cols).max(1);
    if lines.iter().map(|l| height(l)).sum::<usize>() <= rows {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    let mut shown = 0;
    for l in &lines {
        let h = height(l);
        if used + h > rows.saturating_sub(1) {
            break;
        }
        out.push_str(l);
        out.push('\n');
        used += h;
        shown += 1;
    }
    let more = format!(
        "… {} more lines: a taller terminal, or --json, shows them",
        lines.len() - shown
    );
    out.push_str(&more.chars().take(cols).collect::<String>());
    out.push('\n');
    out
}

/// `--all-netns`: one report per namespace, each under its label.
pub fn write_all(reports: &[Report], color: bool, out: &mut dyn Write) -> io::Result<()> {
    for (i, r) in reports.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let label = terminal(r.snapshot.netns.label().as_bytes());
        let own = if r.snapshot.netns.own {
            " · zombiescan's own"
        } else {
            ""
        };
        writeln!(out, "━━━━ {label}{own} ━━━━")?;
        write(r, color, out)?;
    }
    Ok(())
}

/// `--watch`: per state, the change since the previous sample and the
/// first, the rate, and how long the oldest has been seen in the state.
fn write_watch(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    let Some(w) = &r.watch else { return Ok(()) };
    writeln!(
        out,
        "sample {} · {} since the first",
        w.sample,
        human(w.elapsed_ms)
    )?;
    let mut t = new_table(color);
    header(
        &mut t,
        [
            "STATE",
            "NOW",
            "Δ PREVIOUS",
            "Δ START",
            "PER MIN",
            "OLDEST SEEN",
        ]
        .map(String::from),
    );
    let signed = |n: i64| {
        num(if n > 0 {
            format!("+{n}")
        } else {
            n.to_string()
        })
    };
    for st in TcpState::ALL {
        let c = &w.states[st.index()];
        if c.now == 0 && c.since_start == 0 && c.since_previous == 0 {
            continue;
        }
        let oldest = c.oldest_seen_ms.map_or(String::new(), |ms| {
            if c.at_least {
                format!("at least {}", human(ms))
            } else {
                human(ms)
            }
        });
        t.add_row(vec![
            if color && alarming(st) {
                Cell::new(st.name()).fg(Color::Yellow)
            } else {
                Cell::new(st.name())
            },
            num(c.now),
            signed(c.since_previous),
            signed(c.since_start),
            num(format!("{:+.0}", c.per_minute)),
            Cell::new(oldest),
        ]);
    }
    writeln!(out, "{t}")
}

pub fn write(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
    write_summary(r, color, out)?;
    write_watch(r, color, out)?;
    for h in &r.hints {
        writeln!(out, "hint: {}", terminal(h.as_bytes()))?;
    }
    write_findings(r, color, out)?;
    let states = r.states_present();
    write_ports(r, &states, color, out)?;
    write_processes(r, &states, color, out)?;
    write_sockets(r, color, out)?;
    if !r.limitations.is_empty() {
        writeln!(out)?;
        for l in &r.limitations {
            writeln!(out, "note: {}", terminal(l.as_bytes()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_escapes_take_no_columns() {
        assert_eq!(visible_width("\x1b[1m\x1b[33mCLOSE_WAIT\x1b[0m 412"), 14);
        assert_eq!(visible_width("Δ PREVIOUS ━━"), 13);
        assert_eq!(visible_width(""), 0);
    }

    #[test]
    fn a_page_is_cut_to_the_screen_and_says_what_is_left() {
        let page: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(fit_screen(&page, 10, 80), page, "fits as it is");
        let cut = fit_screen(&page, 5, 80);
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[..4], ["line 1", "line 2", "line 3", "line 4"]);
        assert!(lines[4].starts_with("… 6 more lines"), "{}", lines[4]);
        // A line of 100 columns takes 3 rows of 40; the note is cut to 40.
        let wide = format!("{}\nshort\nshort\n", "x".repeat(100));
        let cut = fit_screen(&wide, 4, 40);
        let lines: Vec<&str> = cut.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[1].starts_with("… 2 more lines"));
        assert_eq!(lines[1].chars().count(), 40);
    }
}
