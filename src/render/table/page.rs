//! A watch on a terminal: a page for a glance, one line per finding, cut
//! to the screen.

use std::io::{self, Write};

use super::fit::{visible_width, wrap};
use super::{
    Look, alarming, header, new_table, num, say, write_ports, write_processes, write_summary,
};
use crate::classify::Severity;
use crate::model::TcpState;
use crate::render::pids_text;
use crate::render::sanitize::terminal;
use crate::report::Report;
use crate::units::human;
use comfy_table::{Cell, Color};

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

/// `--watch`: per state, the change since the previous sample and the
/// first, the rate, and how long the oldest has been seen in the state.
pub(super) fn write_watch(r: &Report, color: bool, out: &mut dyn Write) -> io::Result<()> {
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
            "LAST MIN",
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
            signed(c.last_minute),
            Cell::new(oldest),
        ]);
    }
    writeln!(out, "{t}")?;
    // Connections refused or timed out meanwhile: the counters that moved.
    let drops: Vec<String> = w
        .drops
        .iter()
        .map(|(k, prev, start)| format!("{k} +{prev} (+{start} since the first)"))
        .collect();
    if !drops.is_empty() {
        writeln!(out, "refused or timed out: {}", drops.join(" · "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
