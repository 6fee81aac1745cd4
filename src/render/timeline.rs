//! The timeline of a recording: in the terminal with sparklines, as a
//! Markdown table for the ticket, and as one self-contained HTML page with
//! an SVG chart of the states over time.

use std::fmt::Write as _;
use std::io::{self, Write};

use comfy_table::presets::UTF8_BORDERS_ONLY;
use comfy_table::{Cell, CellAlignment, ContentArrangement, Table};

use crate::render::sanitize::markdown as md;
use crate::render::sanitize::terminal;
use crate::report::timeline::{Series, Timeline};

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The series in at most `width` bars, each the largest value of its span.
pub fn sparkline(values: &[u32], width: usize) -> String {
    if values.is_empty() {
        return String::new();
    }
    let max = values.iter().copied().max().unwrap_or(0).max(1);
    let n = values.len().min(width.max(1));
    (0..n)
        .map(|i| {
            let (a, b) = (
                i * values.len() / n,
                ((i + 1) * values.len() / n).max(i * values.len() / n + 1),
            );
            let v = values[a..b.min(values.len())]
                .iter()
                .copied()
                .max()
                .unwrap_or(0);
            BARS[(v as usize * (BARS.len() - 1)) / max as usize]
        })
        .collect()
}

/// `2026-11-25T03:04:05.123Z` as `03:04:05`, the date kept when the
/// recording spans more than a day.
fn clock(t: &str, with_date: bool) -> String {
    if with_date {
        t.get(..19).unwrap_or(t).replace('T', " ")
    } else {
        t.get(11..19).unwrap_or(t).to_string()
    }
}

struct Ctx<'a> {
    tl: &'a Timeline,
    with_date: bool,
}

impl Ctx<'_> {
    fn at(&self, i: usize) -> String {
        self.tl
            .times
            .get(i)
            .map_or(String::new(), |t| clock(t, self.with_date))
    }
    fn onset(&self, s: &Series) -> String {
        s.onset_at.map_or("-".to_string(), |i| self.at(i))
    }
}

fn sections(tl: &Timeline) -> [(&'static str, &[Series]); 6] {
    [
        ("States", &tl.states),
        ("Findings", &tl.findings),
        ("Refused or timed out (per interval)", &tl.drops),
        ("Accept queues", &tl.queues),
        ("Ports (rising)", &tl.ports),
        ("Processes (rising)", &tl.processes),
    ]
}

fn heading(tl: &Timeline, what: &str) -> String {
    match (tl.times.first(), tl.times.last()) {
        (Some(a), Some(b)) => format!("{what}: {} samples, {a} to {b}", tl.times.len()),
        _ => format!("{what}: no sample"),
    }
}

/// What the recording measured, in lines: where, what, how often, and
/// where samples are missing.
fn measured(tl: &Timeline) -> Vec<String> {
    let h = &tl.header;
    let mut out = Vec::new();
    let list = |v: &[String]| v.join(", ");
    if !h.hosts.is_empty() {
        out.push(format!("host {}", list(&h.hosts)));
    }
    if !h.netns.is_empty() {
        out.push(format!("namespace {}", list(&h.netns)));
    }
    out.push(if h.filters.is_empty() {
        "every socket".to_string()
    } else {
        format!("filter {}", list(&h.filters))
    });
    if let Some(p) = h.period_ms {
        out.push(format!("a sample every {}", human_ms(p)));
    }
    for (i, d) in h.gaps.iter().take(5) {
        out.push(format!(
            "gap: no sample for {} before {}",
            human_ms(*d),
            tl.times.get(*i).map_or("?", |t| t.as_str())
        ));
    }
    if h.gaps.len() > 5 {
        out.push(format!("and {} more gaps", h.gaps.len() - 5));
    }
    out
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        crate::units::human(ms)
    }
}

/// The recording's subject, for a page's title: host, namespace, filter.
fn subject(tl: &Timeline) -> String {
    let h = &tl.header;
    let mut parts: Vec<String> = h.hosts.iter().take(2).cloned().collect();
    if h.netns.len() == 1 {
        parts.extend(h.netns.iter().cloned());
    }
    parts.extend(h.filters.iter().take(2).cloned());
    parts.join(" · ")
}

pub fn write_table(tl: &Timeline, what: &str, out: &mut dyn Write) -> io::Result<()> {
    let c = Ctx {
        tl,
        with_date: spans_days(tl),
    };
    writeln!(
        out,
        "zombiescan report · {}",
        terminal(heading(tl, what).as_bytes())
    )?;
    writeln!(out, "{}", terminal(measured(tl).join(" · ").as_bytes()))?;
    if !tl.story.is_empty() {
        writeln!(out, "\nwhat happened:")?;
        for e in &tl.story {
            writeln!(out, "  {}", terminal(e.as_bytes()))?;
        }
    }
    if tl.bad_lines > 0 {
        writeln!(
            out,
            "note: {} lines could not be read (a torn last line is normal after a kill)",
            tl.bad_lines
        )?;
    }
    for (title, series) in sections(tl) {
        if series.is_empty() {
            continue;
        }
        let mut t = Table::new();
        t.load_preset(UTF8_BORDERS_ONLY)
            .set_content_arrangement(ContentArrangement::Disabled)
            .force_no_tty();
        t.set_header(vec![
            title.to_uppercase(),
            "FIRST".into(),
            "ONSET".into(),
            "PEAK".into(),
            "AT".into(),
            "LAST".into(),
            "TREND".into(),
        ]);
        for s in series {
            let num = |n: u32| Cell::new(n).set_alignment(CellAlignment::Right);
            t.add_row(vec![
                Cell::new(terminal(s.label().as_bytes())),
                num(s.first),
                Cell::new(terminal(c.onset(s).as_bytes())),
                num(s.peak),
                Cell::new(terminal(c.at(s.peak_at).as_bytes())),
                num(s.last),
                Cell::new(sparkline(&s.values, 40)),
            ]);
        }
        writeln!(out, "\n{t}")?;
    }
    Ok(())
}

fn spans_days(tl: &Timeline) -> bool {
    match (tl.times.first(), tl.times.last()) {
        (Some(a), Some(b)) => a.get(..10) != b.get(..10),
        _ => false,
    }
}

pub fn write_markdown(tl: &Timeline, what: &str, out: &mut dyn Write) -> io::Result<()> {
    let c = Ctx {
        tl,
        with_date: spans_days(tl),
    };
    let mut s = format!(
        "## zombiescan timeline: {}\n\n{}\n\n{}\n\n",
        md(subject(tl).as_bytes()),
        md(heading(tl, what).as_bytes()),
        md(measured(tl).join(" · ").as_bytes())
    );
    if !tl.story.is_empty() {
        s.push_str("### What happened\n\n");
        for e in &tl.story {
            let _ = writeln!(s, "- {}", md(e.as_bytes()));
        }
        s.push('\n');
    }
    if tl.bad_lines > 0 {
        let _ = writeln!(
            s,
            "{} lines could not be read (a torn last line is normal after a kill).\n",
            tl.bad_lines
        );
    }
    for (title, series) in sections(tl) {
        if series.is_empty() {
            continue;
        }
        let _ = writeln!(s, "### {title}\n");
        s.push_str("| series | first | began to rise | peak | peak at | last | trend |\n");
        s.push_str("| --- | ---: | --- | ---: | --- | ---: | --- |\n");
        for x in series {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} |",
                md(x.label().as_bytes()),
                x.first,
                md(c.onset(x).as_bytes()),
                x.peak,
                md(c.at(x.peak_at).as_bytes()),
                x.last,
                sparkline(&x.values, 30)
            );
        }
        s.push('\n');
    }
    out.write_all(s.trim_end().as_bytes())?;
    out.write_all(b"\n")
}

use crate::render::sanitize::html as html_escape;

const COLORS: [&str; 8] = [
    "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// A round top for a chart's axis: 1, 2 or 5 times a power of ten, so that
/// its four ticks are round numbers.
fn round_max(peak: u32) -> u32 {
    let mut step = 1u32;
    loop {
        for m in [1, 2, 5] {
            let top = step.saturating_mul(m).saturating_mul(4);
            if top >= peak || top == u32::MAX {
                return top.max(4);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// `series` over time as an SVG line chart, with round ticks and a time
/// label at every quarter.
fn chart(tl: &Timeline, series: &[Series], id: &str, label: &str) -> String {
    let (w, h, left, bottom, top, right) = (900.0, 320.0, 60.0, 40.0, 20.0, 250.0);
    let n = tl.times.len().max(2) - 1;
    let max = round_max(series.iter().map(|s| s.peak).max().unwrap_or(0));
    let x = |i: usize| left + (w - left - right) * i as f64 / n as f64;
    let y = |v: u32| top + (h - top - bottom) * (1.0 - f64::from(v) / f64::from(max));
    let mut svg = format!(
        "<h2>{label}</h2>\n<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"{id}\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{label}\">\n"
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#444\"/><line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#444\"/>",
        h - bottom,
        w - right,
        h - bottom,
        h - bottom
    );
    for k in 0..=4u32 {
        let v = max * k / 4;
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{:.1}\" font-size=\"11\" text-anchor=\"end\">{v}</text>",
            left - 6.0,
            y(v) + 4.0
        );
    }
    let marks: Vec<usize> = (0..=4).map(|q| n * q / 4).collect();
    let mut seen = Vec::new();
    for i in marks {
        if seen.contains(&i) {
            continue;
        }
        seen.push(i);
        if let Some(t) = tl.times.get(i) {
            let anchor = match i {
                0 => "start",
                _ if i == n => "end",
                _ => "middle",
            };
            let _ = writeln!(
                svg,
                "<text x=\"{:.1}\" y=\"{}\" font-size=\"11\" text-anchor=\"{anchor}\">{}</text>",
                x(i),
                h - bottom + 16.0,
                html_escape(&clock(t, spans_days(tl)))
            );
        }
    }
    for (k, s) in series.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        let points: Vec<String> = s
            .values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect();
        // Every line after the first is dashed, each with its own offset:
        // a state whose counts equal an earlier one's (FIN_WAIT2 on one
        // side, CLOSE_WAIT on the other) shows through the gaps.
        let dash = if k == 0 {
            String::new()
        } else {
            format!(" stroke-dasharray=\"8 4\" stroke-dashoffset=\"{}\"", 4 * k)
        };
        let _ = writeln!(
            svg,
            "<polyline class=\"state\" data-state=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            html_escape(&s.label()),
            points.join(" ")
        );
        let ly = top + 16.0 * k as f64;
        let _ = writeln!(
            svg,
            "<rect x=\"{}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{}\" y=\"{:.1}\" font-size=\"12\">{} (peak {})</text>",
            w - right + 10.0,
            ly,
            w - right + 26.0,
            ly + 5.0,
            html_escape(&s.label()),
            s.peak
        );
    }
    svg.push_str("</svg>\n");
    svg
}

pub fn write_html(tl: &Timeline, what: &str, out: &mut dyn Write) -> io::Result<()> {
    let c = Ctx {
        tl,
        with_date: spans_days(tl),
    };
    let title = html_escape(&format!("zombiescan timeline: {}", subject(tl)));
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{title}</title>\n<style>\nbody{{font-family:system-ui,sans-serif;margin:2em;color:#222}}\ntable{{border-collapse:collapse;margin:1em 0}}\ntd,th{{border:1px solid #ccc;padding:3px 8px}}\ntd.n{{text-align:right}}\ntd.trend{{font-family:monospace}}\n</style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    let _ = writeln!(s, "<p>{}</p>", html_escape(&heading(tl, what)));
    let _ = writeln!(s, "<p>{}</p>", html_escape(&measured(tl).join(" · ")));
    if !tl.story.is_empty() {
        s.push_str("<h2>What happened</h2>\n<ul>\n");
        for e in &tl.story {
            let _ = writeln!(s, "<li>{}</li>", html_escape(e));
        }
        s.push_str("</ul>\n");
    }
    if tl.bad_lines > 0 {
        let _ = writeln!(
            s,
            "<p>{} lines could not be read (a torn last line is normal after a kill).</p>",
            tl.bad_lines
        );
    }
    s.push_str(&chart(tl, &tl.states, "states", "TCP states over time"));
    if !tl.findings.is_empty() {
        s.push_str(&chart(
            tl,
            &tl.findings,
            "findings",
            "Findings over time (sockets)",
        ));
    }
    let trouble: Vec<Series> = tl.drops.iter().chain(&tl.queues).cloned().collect();
    if !trouble.is_empty() {
        s.push_str(&chart(
            tl,
            &trouble,
            "drops",
            "Refused or timed out per interval, and accept queues",
        ));
    }
    for (title, series) in sections(tl) {
        if series.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "<h2>{title}</h2>\n<table>\n<tr><th>series</th><th>first</th><th>began to rise</th><th>peak</th><th>peak at</th><th>last</th><th>trend</th></tr>"
        );
        for x in series {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"trend\">{}</td></tr>",
                html_escape(&x.label()),
                x.first,
                html_escape(&c.onset(x)),
                x.peak,
                html_escape(&c.at(x.peak_at)),
                x.last,
                sparkline(&x.values, 30)
            );
        }
        s.push_str("</table>\n");
    }
    s.push_str("</body>\n</html>\n");
    out.write_all(s.as_bytes())
}

/// The version of the timeline's JSON document
/// (schema/zombiescan-timeline.schema.json).
pub const TIMELINE_SCHEMA_VERSION: u32 = 1;

/// `report --json`: what the recording says, for scripts.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct TimelineDoc {
    pub schema_version: u32,
    pub files: Vec<String>,
    pub samples: usize,
    /// Lines that did not read (a torn last line, garbage, too long).
    pub unreadable_lines: u32,
    /// The time of each sample, as recorded.
    pub times: Vec<String>,
    pub states: Vec<SeriesJson>,
    pub findings: Vec<SeriesJson>,
    /// The 20 ports and the 20 processes that rose highest.
    pub ports: Vec<SeriesJson>,
    pub processes: Vec<SeriesJson>,
    /// Connections refused or timed out, per interval, by counter.
    #[serde(default)]
    pub drops: Vec<SeriesJson>,
    /// Each listener's accept queue (its backlog in its name).
    #[serde(default)]
    pub queues: Vec<SeriesJson>,
    /// What was measured: hosts, namespaces, filters, the period, gaps.
    #[serde(default)]
    pub measured: Vec<String>,
    /// What changed when, in time order.
    #[serde(default)]
    pub story: Vec<String>,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct SeriesJson {
    pub name: String,
    /// The namespace's label, when the recording holds several.
    pub netns: Option<String>,
    pub first: u32,
    pub last: u32,
    pub peak: u32,
    /// The time of the first sample at the peak.
    pub peak_at: String,
    /// The time the rise to the peak began; null when it never rose.
    pub onset_at: Option<String>,
    /// One value per sample, as `times`.
    pub values: Vec<u32>,
}

pub fn write_json(tl: &Timeline, files: &[String], out: &mut dyn Write) -> io::Result<()> {
    let at = |i: usize| tl.times.get(i).cloned().unwrap_or_default();
    let series = |v: &[Series]| -> Vec<SeriesJson> {
        v.iter()
            .map(|s| SeriesJson {
                name: s.name.clone(),
                netns: s.netns.clone(),
                first: s.first,
                last: s.last,
                peak: s.peak,
                peak_at: at(s.peak_at),
                onset_at: s.onset_at.map(at),
                values: s.values.clone(),
            })
            .collect()
    };
    let doc = TimelineDoc {
        schema_version: TIMELINE_SCHEMA_VERSION,
        files: files.to_vec(),
        samples: tl.times.len(),
        unreadable_lines: tl.bad_lines,
        times: tl.times.clone(),
        states: series(&tl.states),
        findings: series(&tl.findings),
        ports: series(&tl.ports),
        processes: series(&tl.processes),
        drops: series(&tl.drops),
        queues: series(&tl.queues),
        measured: measured(tl),
        story: tl.story.clone(),
    };
    serde_json::to_writer(&mut *out, &doc).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines() {
        assert_eq!(sparkline(&[0, 1, 2, 3, 4, 5, 6, 7], 8), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[0, 0, 7, 7], 2), "▁█");
        assert_eq!(sparkline(&[5; 3], 40), "███");
        assert_eq!(sparkline(&[], 10), "");
        assert_eq!(
            sparkline(&(0..100).collect::<Vec<_>>(), 10).chars().count(),
            10
        );
    }

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            html_escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
