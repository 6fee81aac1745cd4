//! The terminal report: an `ss -s`-style summary, then the per-port and
//! per-process tables. Colour only when asked (a terminal without NO_COLOR).

mod fit;
mod page;

use page::write_watch;
pub use page::{fit_screen, write_page};

use std::io::{self, Write};

use fit::{col, fit, push_row, wrap};

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use crate::classify::{Finding, Severity};
use crate::model::TcpState;
use crate::model::{Direction, Socket};
use crate::render::sanitize::terminal;
use crate::render::{filter_text, pids_text};
use crate::report::Report;
use crate::units::{human, rfc3339};

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

/// How the terminal output looks: colour, and the width it must fit
/// (`None`: not a terminal, and no COLUMNS: tables at their natural width).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Look {
    pub color: bool,
    pub width: Option<usize>,
    /// `--explain`: every finding in full (each caveat, the relief, the
    /// evidence and the sources), not the first sentences.
    pub explain: bool,
}

impl Look {
    /// The width prose is wrapped at: the screen's, at most 100.
    fn text_width(self) -> usize {
        self.width.map_or(100, |w| w.clamp(40, 100))
    }
}

fn new_table(color: bool) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY)
        .set_content_arrangement(ContentArrangement::Disabled);
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

/// A line of prose: wrapped to the screen when there is one.
fn say(out: &mut dyn Write, look: Look, text: &str) -> io::Result<()> {
    match look.width {
        Some(w) => writeln!(out, "{}", wrap(text, w, "  ")),
        None => writeln!(out, "{text}"),
    }
}

fn write_summary(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let color = look.color;
    let snap = r.snapshot;
    let h = &snap.host;
    // To the second: the JSON has the milliseconds.
    let at = rfc3339(snap.captured_at);
    let at = match at.split_once('.') {
        Some((secs, _)) => format!("{secs}Z"),
        None => at,
    };
    let owners = snap
        .owners_from
        .map_or(String::new(), |o| format!(" · owners {}", o.name()));
    let title = format!(
        "zombiescan · {} · kernel {} · {}{owners} · {at}",
        terminal(h.hostname.as_bytes()),
        terminal(h.kernel.as_bytes()),
        snap.source.name(),
    );
    let title = match look.width {
        Some(w) => wrap(&title, w, "  "),
        None => title,
    };
    if color {
        writeln!(out, "\x1b[1m{title}\x1b[0m")?;
    } else {
        writeln!(out, "{title}")?;
    }
    // Run under `ip netns exec NAME`, the namespace is zombiescan's own
    // but has a name: said, as --netns would.
    if !snap.netns.own || snap.netns.name.is_some() {
        say(out, look, &terminal(snap.netns.label().as_bytes()))?;
    }
    if let Some(f) = filter_text(snap) {
        say(out, look, &format!("filter: {}", terminal(f.as_bytes())))?;
    }
    let s = &r.summary;
    let by_state: Vec<String> = s
        .by_state
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{} {n}", st.name()))
        .collect();
    let tcp = format!(
        "TCP: {} sockets (ipv4 {}, ipv6 {}){}{}",
        s.total,
        s.ipv4,
        s.ipv6,
        if by_state.is_empty() { "" } else { ": " },
        by_state.join(", ")
    );
    say(out, look, &tcp)?;
    if s.unix > 0 {
        say(
            out,
            look,
            &format!(
                "unix: {} stream and seqpacket sockets, {} listening",
                s.unix, s.unix_listeners
            ),
        )?;
    }
    Ok(())
}

fn write_ports(r: &Report, states: &[TcpState], look: Look, out: &mut dyn Write) -> io::Result<()> {
    if r.ports.is_empty() {
        return Ok(());
    }
    let mut cols = vec![
        col("PORT", 0),
        col("DIRECTION", 3),
        col("PEER", 0),
        col("TOTAL", 2),
    ];
    cols.extend(states.iter().map(|s| col(s.name(), 0)));
    cols.extend([col("RECV-Q", 4), col("SEND-Q", 5), col("PIDS", 0)]);
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
                .map(|&s| state_cell(s, g.by_state.get(s), look.color)),
        );
        row.extend([num(g.recv_q), num(g.send_q), Cell::new(pids_text(&g.pids))]);
        push_row(&mut cols, row);
    }
    writeln!(out, "\n{}", fit(cols, look))
}

fn write_processes(
    r: &Report,
    states: &[TcpState],
    look: Look,
    out: &mut dyn Write,
) -> io::Result<()> {
    if r.processes.is_empty() {
        return Ok(());
    }
    let in_pod = r.processes.iter().any(|p| p.process.container.is_some());
    let mut cols = vec![
        col("PID", 0),
        col("COMM", 0),
        col("UID", 8),
        col("SOCKETS", 7),
    ];
    if in_pod {
        cols.insert(2, col("CONTAINER", 0));
    }
    cols.extend(states.iter().map(|s| col(s.name(), 0)));
    cols.extend([col("FDS", 0), col("FD LIMIT", 0), col("CMDLINE", 9)]);
    for p in &r.processes {
        let pr = p.process;
        let mut row = vec![
            num(pr.pid),
            Cell::new(terminal(&pr.comm)),
            num(pr.uid.map_or("?".to_string(), |u| u.to_string())),
            num(p.sockets + p.unix),
        ];
        if in_pod {
            let c = pr.container.as_deref().unwrap_or("");
            row.insert(2, Cell::new(terminal(c.as_bytes())));
        }
        row.extend(
            states
                .iter()
                .map(|&s| state_cell(s, p.by_state.get(s), look.color)),
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
        push_row(&mut cols, row);
    }
    writeln!(out, "\n{}", fit(cols, look))
}

fn write_sockets(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let snap = r.snapshot;
    let listed = r.listed();
    if listed.is_empty() {
        return Ok(());
    }
    // A column that reads the same on every row says least: it goes first
    // when the table does not fit (the port is in the findings above).
    let same = |f: &dyn Fn(&Socket) -> String| {
        listed
            .first()
            .is_some_and(|a| listed.iter().all(|l| f(l.socket) == f(a.socket)))
    };
    let local_drop = if same(&|s| s.local.to_string()) { 9 } else { 0 };
    let mut cols = vec![
        col("STATE", 0),
        col("LOCAL", local_drop),
        col("REMOTE", 0),
        col("AGE", 0),
        col("RECV-Q", 5),
        col("SEND-Q", 4),
        col("TIMER", 6),
        col("PIDS", 0),
        col("FINDINGS", 3),
    ];
    // Without --sockets, a long list of flagged sockets is cut: the findings
    // above already count them, the JSON lists them all.
    let limit = match (r.all_sockets, look.explain) {
        (true, _) => usize::MAX,
        (false, true) => 20,
        (false, false) => 5,
    };
    let more = listed.len().saturating_sub(limit);
    for l in listed.iter().take(limit) {
        let (s, kinds, age) = (l.socket, l.kinds, l.age_ms);
        let row = vec![
            if look.color && alarming(s.state) {
                Cell::new(s.state.name()).fg(Color::Yellow)
            } else {
                Cell::new(s.state.name())
            },
            Cell::new(s.local),
            Cell::new(s.remote),
            num(age.map_or(String::new(), |a| human(u64::from(a)))),
            num(s.recv_q),
            num(s.send_q),
            Cell::new(super::timer_words(&s.timer)),
            Cell::new(pids_text(snap.owners_of(s))),
            Cell::new(kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")),
        ];
        push_row(&mut cols, row);
    }
    writeln!(out, "\n{}", fit(cols, look))?;
    if more > 0 {
        let s = if more == 1 { "socket" } else { "sockets" };
        say(
            out,
            look,
            &format!("({more} more flagged {s}: --sockets lists them all)"),
        )?;
    }
    Ok(())
}

/// The severity, coloured when asked.
fn severity(f: &Finding, color: bool) -> String {
    let sev = f.severity.name().to_uppercase();
    match (color, f.severity) {
        (false, _) => sev,
        (true, Severity::Critical) => format!("\x1b[1;31m{sev}\x1b[0m"),
        (true, Severity::Warning) => format!("\x1b[1;33m{sev}\x1b[0m"),
        (true, Severity::Info) => format!("\x1b[1m{sev}\x1b[0m"),
    }
}

/// Where a finding is: its port, unix socket or remote endpoint.
fn place(f: &Finding) -> String {
    if let Some(p) = &f.path {
        return format!("unix {}", terminal(p));
    }
    if let (Some(Direction::Outbound), Some(r)) = (f.direction, f.remote) {
        return format!("to {r}");
    }
    match f.ports.as_slice() {
        [] => "host".to_string(),
        ports => format!(
            "port {}",
            ports
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(",")
        ),
    }
}

/// Who a finding blames: as its words name them (a server's workers by
/// their role), else the first process's name, and the pids.
fn who(r: &Report, f: &Finding) -> Option<String> {
    if let Some(w) = f.who.as_deref().filter(|w| !w.is_empty()) {
        return Some(terminal(w.as_bytes()));
    }
    let p = f.pids.first().and_then(|p| r.snapshot.processes.get(p))?;
    let n = if f.pids.len() == 1 { "pid" } else { "pids" };
    Some(format!(
        "{} ({n} {})",
        terminal(&p.comm),
        pids_text(&f.pids)
    ))
}

/// The first `n` sentences of `text`: up to a period (or a closing
/// parenthesis after one) followed by a space and a word, a server's name
/// in lower case included.
fn sentences(text: &str, n: usize) -> &str {
    let b = text.as_bytes();
    let mut seen = 0;
    for i in 0..b.len().saturating_sub(2) {
        if b[i] == b'.' && b[i + 1] == b' ' && b[i + 2].is_ascii_alphanumeric() {
            seen += 1;
            if seen == n {
                return &text[..=i];
            }
        }
    }
    text
}

/// A long sentence up to its first clause (a colon or a semicolon) that
/// leaves it under 220 characters, then "…": the rest is `--explain`'s.
fn brief(sentence: &str) -> String {
    const LONG: usize = 220;
    if sentence.chars().count() <= LONG {
        return sentence.to_string();
    }
    let stop = sentence
        .char_indices()
        .take_while(|(i, _)| *i < LONG)
        .filter(|(i, c)| (*c == ':' || *c == ';') && sentence[i + 1..].starts_with(' '))
        .map(|(i, _)| i)
        .last();
    match stop {
        Some(i) => format!("{} …", &sentence[..i]),
        None => sentence.to_string(),
    }
}

/// `text` cut to `width` columns, with "…" when cut.
fn cut(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// The verdict: one line per finding, worst first (severity, kind, count,
/// where, who), and under it the first thing to do.
fn write_verdict(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    if r.findings.is_empty() {
        return writeln!(out, "\nno findings");
    }
    let width = look.width.unwrap_or(usize::MAX);
    writeln!(out)?;
    for f in &r.findings {
        let mut head = format!("{} ×{} · {}", f.kind.name(), f.count, place(f));
        if let Some(w) = who(r, f) {
            head.push_str(&format!(" · {w}"));
        }
        let sev = f.severity.name().len();
        writeln!(
            out,
            "{} {}",
            severity(f, look.color),
            cut(&head, width.saturating_sub(sev + 1))
        )?;
        let first = sentences(&f.remediation, 1);
        writeln!(
            out,
            "  → {}",
            cut(&terminal(first.as_bytes()), width.saturating_sub(4))
        )?;
    }
    Ok(())
}

/// Each finding in a few lines: the first sentences of why and of what to
/// do; with `--explain`, all of it, the evidence and the sources.
fn write_findings(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    if r.findings.is_empty() {
        return Ok(());
    }
    let width = look.text_width();
    // Information needs no more than its verdict line, but in the long form.
    for f in r
        .findings
        .iter()
        .filter(|f| look.explain || f.severity > Severity::Info)
    {
        let head = format!("{} · {}", f.kind.name(), place(f));
        if look.color {
            writeln!(out, "\n\x1b[1m{head}\x1b[0m")?;
        } else {
            writeln!(out, "\n{head}")?;
        }
        let (why, fix) = if look.explain {
            (f.explanation.to_string(), f.remediation.to_string())
        } else {
            // Two sentences of why, unless they make a paragraph; the
            // first of what to do, up to a clause when it runs long.
            let two = sentences(&f.explanation, 2);
            let why = if two.chars().count() > 260 {
                brief(sentences(&f.explanation, 1))
            } else {
                two.to_string()
            };
            (why, brief(sentences(&f.remediation, 1)))
        };
        writeln!(out, "  {}", wrap(&terminal(why.as_bytes()), width, "  "))?;
        writeln!(
            out,
            "  fix: {}",
            wrap(&terminal(fix.as_bytes()), width, "       ")
        )?;
        if !look.explain {
            continue;
        }
        let ev: Vec<String> = super::evidence(f)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            out,
            "  evidence: {}",
            wrap(&terminal(ev.join(" ").as_bytes()), width, "            ")
        )?;
        if !f.advice_source.is_empty() {
            writeln!(
                out,
                "  source: {}",
                wrap(&terminal(f.advice_source.as_bytes()), width, "          ")
            )?;
        }
    }
    if !look.explain {
        say(
            out,
            look,
            "(--explain: every caveat, the relief, the evidence and the sources)",
        )?;
    }
    Ok(())
}

/// `--all-netns`: one report per namespace, each under its label.
pub fn write_all(reports: &[Report], look: Look, out: &mut dyn Write) -> io::Result<()> {
    // The worst first: a summary of the namespaces with findings, then
    // each namespace, those with the worst findings first.
    let worst = |r: &Report| r.findings.first().map(|f| f.severity);
    let mut order: Vec<&Report> = reports.iter().collect();
    order.sort_by(|a, b| {
        worst(b)
            .cmp(&worst(a))
            .then(b.findings.len().cmp(&a.findings.len()))
    });
    let troubled: Vec<&&Report> = order.iter().filter(|r| !r.findings.is_empty()).collect();
    writeln!(
        out,
        "zombiescan · {} network namespaces · {} with findings",
        reports.len(),
        troubled.len()
    )?;
    for r in &troubled {
        let f = &r.findings[0];
        let line = format!(
            "{} {} · {} · {} {}",
            f.severity.name().to_uppercase(),
            r.snapshot.netns.label(),
            f.kind.name(),
            r.findings.len(),
            if r.findings.len() == 1 {
                "finding"
            } else {
                "findings"
            }
        );
        writeln!(
            out,
            "  {}",
            cut(
                &terminal(line.as_bytes()),
                look.width.unwrap_or(usize::MAX).saturating_sub(2)
            )
        )?;
    }
    for r in order {
        writeln!(out)?;
        let ns = &r.snapshot.netns;
        let whose = match (ns.initial, ns.own) {
            (Some(true), _) => " · the host's",
            (_, true) => " · zombiescan's own",
            _ => "",
        };
        writeln!(out, "━━━━ {}{whose} ━━━━", terminal(ns.label().as_bytes()))?;
        write(r, look, out)?;
    }
    Ok(())
}

/// The host's counters, under the findings.
fn write_host(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let h = &r.snapshot.host;
    writeln!(out)?;
    let host = super::host_facts(h);
    if !host.is_empty() {
        say(
            out,
            look,
            &format!("host: {}", terminal(host.join(" · ").as_bytes())),
        )?;
    }
    Ok(())
}

/// The unix listeners: a path where the ports table has a port.
fn write_unix(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    if r.unix.is_empty() {
        return Ok(());
    }
    let mut cols = vec![
        col("UNIX SOCKET", 0),
        col("QUEUE", 0),
        col("ACCEPTED", 3),
        col("PIDS", 0),
        col("BEHIND", 2),
    ];
    for g in &r.unix {
        let queue = g.queue.map_or("?".to_string(), |(q, b)| format!("{q}/{b}"));
        let behind: Vec<String> = g
            .behind
            .iter()
            .map(|l| format!("port {}", l.port))
            .collect();
        let queue = if look.color && g.queue.is_some_and(|(q, b)| q > 0 && q >= b) {
            Cell::new(queue).fg(Color::Red)
        } else {
            num(queue)
        };
        push_row(
            &mut cols,
            vec![
                Cell::new(terminal(&g.path)),
                queue,
                num(g.accepted),
                Cell::new(pids_text(&g.pids)),
                Cell::new(behind.join(",")),
            ],
        );
    }
    writeln!(out, "\n{}", fit(cols, look))
}

pub fn write(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let color = look.color;
    write_summary(r, look, out)?;
    // What the scan could not see comes before what it concludes.
    for l in &r.limitations {
        say(out, look, &format!("note: {}", terminal(l.as_bytes())))?;
    }
    write_watch(r, color, out)?;
    write_verdict(r, look, out)?;
    if !r.hints.is_empty() {
        writeln!(out)?;
    }
    for h in &r.hints {
        say(out, look, &format!("hint: {}", terminal(h.as_bytes())))?;
    }
    write_findings(r, look, out)?;
    write_host(r, look, out)?;
    let states = r.states_present();
    write_ports(r, &states, look, out)?;
    write_unix(r, look, out)?;
    write_processes(r, &states, look, out)?;
    write_sockets(r, look, out)?;
    Ok(())
}
