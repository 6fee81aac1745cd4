//! The terminal report: an `ss -s`-style summary, then the per-port and
//! per-process tables. Colour only when asked (a terminal without NO_COLOR).

use std::io::{self, Write};

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table};

use crate::classify::Severity;
use crate::model::TcpState;
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
}

impl Look {
    /// The width prose is wrapped at: the screen's, at most 100.
    fn text_width(self) -> usize {
        self.width.map_or(100, |w| w.clamp(40, 100))
    }
}

/// A column of a table, and how readily it is left out when the table
/// does not fit: 0 never, higher first.
struct Col {
    name: String,
    cells: Vec<Cell>,
    drop: u8,
}

/// Adds one row: each cell to its column, in order.
fn push_row(cols: &mut [Col], row: Vec<Cell>) {
    for (c, cell) in cols.iter_mut().zip(row) {
        c.cells.push(cell);
    }
}

fn col(name: &str, drop: u8) -> Col {
    Col {
        name: name.to_string(),
        cells: Vec::new(),
        drop,
    }
}

/// Renders `cols` as a table that fits `look.width`: cells are never
/// broken (a pid or an address split over two lines is misread); the least
/// useful columns are left out first, and named; when even the essential
/// ones do not fit, each row becomes a block of `NAME value` lines.
fn fit(cols: Vec<Col>, look: Look) -> String {
    let render = |cols: &[Col]| -> String {
        let mut t = new_table(look.color);
        header(&mut t, cols.iter().map(|c| c.name.clone()));
        let rows = cols.first().map_or(0, |c| c.cells.len());
        for i in 0..rows {
            t.add_row(cols.iter().map(|c| c.cells[i].clone()));
        }
        t.to_string()
    };
    let Some(width) = look.width else {
        return render(&cols);
    };
    let too_wide = |text: &str| text.lines().any(|l| visible_width(l) > width);
    let mut text = render(&cols);
    if !too_wide(&text) {
        return text;
    }
    // Leave out the least useful columns, as long as what is left fits.
    let mut kept: Vec<usize> = (0..cols.len()).collect();
    let mut dropped = Vec::new();
    while too_wide(&text) {
        let Some(pos) = kept
            .iter()
            .enumerate()
            .filter(|&(_, &i)| cols[i].drop > 0)
            .max_by_key(|&(_, &i)| (cols[i].drop, i))
            .map(|(pos, _)| pos)
        else {
            // Even the essential columns do not fit: a block per row,
            // every column in it.
            return narrow(&cols, width);
        };
        dropped.push(cols[kept.remove(pos)].name.clone());
        let shown: Vec<Col> = kept
            .iter()
            .map(|&i| Col {
                name: cols[i].name.clone(),
                cells: cols[i].cells.clone(),
                drop: cols[i].drop,
            })
            .collect();
        text = render(&shown);
    }
    let note = format!(
        "(left out to fit {width} columns: {}; a wider terminal or --json shows them)",
        dropped.join(", ")
    );
    text.push('\n');
    text.push_str(&wrap(&note, width, " "));
    text
}

/// One block per row: `NAME value` pairs, wrapped at `width` between pairs.
fn narrow(cols: &[Col], width: usize) -> String {
    let rows = cols.first().map_or(0, |c| c.cells.len());
    let mut out = Vec::new();
    for i in 0..rows {
        let pairs: Vec<String> = cols
            .iter()
            .map(|c| (c, c.cells[i].content()))
            .filter(|(_, v)| !v.is_empty())
            .map(|(c, v)| format!("{} {v}", c.name))
            .collect();
        let mut line = String::from("•");
        for p in pairs {
            if visible_width(&line) + 2 + p.chars().count() > width && line != "•" {
                out.push(line);
                line = " ".to_string();
            }
            line.push(' ');
            line.push_str(&p);
        }
        out.push(line);
    }
    out.join("\n")
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
    let title = format!(
        "zombiescan · {} · kernel {} · source {} · {}",
        terminal(h.hostname.as_bytes()),
        terminal(h.kernel.as_bytes()),
        snap.source.name(),
        rfc3339(snap.captured_at)
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
    let mut cols = vec![
        col("PID", 0),
        col("COMM", 0),
        col("UID", 8),
        col("SOCKETS", 7),
    ];
    cols.extend(states.iter().map(|s| col(s.name(), 0)));
    cols.extend([col("FDS", 0), col("FD LIMIT", 0), col("CMDLINE", 9)]);
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
    let mut cols = vec![
        col("STATE", 0),
        col("LOCAL", 0),
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
    let limit = if r.all_sockets { usize::MAX } else { 20 };
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

fn write_findings(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let color = look.color;
    let width = look.text_width();
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
            wrap(&terminal(f.explanation.as_bytes()), width, "  ")
        )?;
        writeln!(
            out,
            "  fix: {}",
            wrap(&terminal(f.remediation.as_bytes()), width, "       ")
        )?;
        let ev: Vec<String> = super::evidence(f)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            out,
            "  evidence: {}",
            wrap(&terminal(ev.join(" ").as_bytes()), width, "            ")
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

/// A finding in one line, for a watch page: severity, kind, count, port,
/// owner and the oldest age.
fn finding_line(r: &Report, f: &crate::classify::Finding, color: bool) -> String {
    let sev = f.severity.name().to_uppercase();
    let sev = match (color, f.severity) {
        (false, _) => sev,
        (true, Severity::Critical) => format!("\x1b[1;31m{sev}\x1b[0m"),
        (true, Severity::Warning) => format!("\x1b[1;33m{sev}\x1b[0m"),
        (true, Severity::Info) => format!("\x1b[1m{sev}\x1b[0m"),
    };
    let mut line = format!("{sev} {} ×{}", f.kind.name(), f.count);
    if !f.ports.is_empty() {
        let ports: Vec<String> = f.ports.iter().map(u16::to_string).collect();
        line.push_str(&format!(" · port {}", ports.join(",")));
    }
    if let Some(p) = f.pids.first().and_then(|p| r.snapshot.processes.get(p)) {
        line.push_str(&format!(
            " · {} (pid {})",
            terminal(&p.comm),
            pids_text(&f.pids)
        ));
    }
    let waited = f
        .evidence
        .get("oldest_wait_s")
        .and_then(serde_json::Value::as_f64);
    let oldest = f.oldest_ms.map(crate::units::secs).or(waited);
    if let Some(s) = oldest {
        line.push_str(&format!(" · oldest {}", human((s * 1000.0) as u64)));
    }
    line
}

/// A watch on a terminal is for a glance: the summary and the states
/// block, one line per finding, then the ports and processes, as much as
/// the screen holds (the caller cuts the page to it).
pub fn write_page(reports: &[Report], look: Look, out: &mut dyn Write) -> io::Result<()> {
    for (i, r) in reports.iter().enumerate() {
        if reports.len() > 1 {
            if i > 0 {
                writeln!(out)?;
            }
            let label = terminal(r.snapshot.netns.label().as_bytes());
            writeln!(out, "━━━━ {label} ━━━━")?;
        }
        write_summary(r, look, out)?;
        write_watch(r, look.color, out)?;
        for h in &r.hints {
            say(out, look, &format!("hint: {}", terminal(h.as_bytes())))?;
        }
        if r.findings.is_empty() {
            writeln!(out, "no findings")?;
        }
        for f in &r.findings {
            let line = finding_line(r, f, look.color);
            match look.width {
                Some(w) => writeln!(out, "{}", wrap(&line, w, "    "))?,
                None => writeln!(out, "{line}")?,
            }
        }
        let states = r.states_present();
        write_ports(r, &states, look, out)?;
        write_processes(r, &states, look, out)?;
    }
    Ok(())
}

/// `--all-netns`: one report per namespace, each under its label.
pub fn write_all(reports: &[Report], look: Look, out: &mut dyn Write) -> io::Result<()> {
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
        write(r, look, out)?;
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

pub fn write(r: &Report, look: Look, out: &mut dyn Write) -> io::Result<()> {
    let color = look.color;
    write_summary(r, look, out)?;
    write_watch(r, color, out)?;
    for h in &r.hints {
        say(out, look, &format!("hint: {}", terminal(h.as_bytes())))?;
    }
    write_findings(r, look, out)?;
    let states = r.states_present();
    write_ports(r, &states, look, out)?;
    write_processes(r, &states, look, out)?;
    write_sockets(r, look, out)?;
    if !r.limitations.is_empty() {
        writeln!(out)?;
        for l in &r.limitations {
            say(out, look, &format!("note: {}", terminal(l.as_bytes())))?;
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
