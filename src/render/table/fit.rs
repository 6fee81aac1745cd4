//! Fitting text to a terminal: tables whose cells are never broken and
//! whose least useful columns go first, prose wrapped at word boundaries,
//! widths that ignore colour escapes.

use comfy_table::Cell;

use super::{Look, header, new_table};

/// A column of a table, and how readily it is left out when the table
/// does not fit: 0 never, higher first.
pub(super) struct Col {
    name: String,
    cells: Vec<Cell>,
    drop: u8,
}

/// Adds one row: each cell to its column, in order.
pub(super) fn push_row(cols: &mut [Col], row: Vec<Cell>) {
    for (c, cell) in cols.iter_mut().zip(row) {
        c.cells.push(cell);
    }
}

pub(super) fn col(name: &str, drop: u8) -> Col {
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
pub(super) fn fit(cols: Vec<Col>, look: Look) -> String {
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
        "(hidden at {width} columns: {}; --json has them)",
        dropped.join(", ")
    );
    text.push('\n');
    text.push_str(&wrap(&note, width, " "));
    text
}

/// One block per row: `NAME value` pairs, wrapped at `width` between pairs.
pub(super) fn narrow(cols: &[Col], width: usize) -> String {
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

/// Wraps `text`, printed after `indent`-wide prefix, at `width` columns;
/// each line after the first is indented.
pub(super) fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut col = indent.len();
    // A number stays with its unit ("34 min", "2 s"), and colour escapes
    // take no column.
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let unit = matches!(
            word,
            "s" | "ms" | "min" | "h" | "s," | "min," | "h," | "s)" | "min)" | "h)"
        );
        match words.last_mut() {
            Some(last) if unit && last.chars().all(|c| c.is_ascii_digit() || c == '.') => {
                last.push(' ');
                last.push_str(word);
            }
            _ => words.push(word.to_string()),
        }
    }
    for word in &words {
        let w = visible_width(word);
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

/// Columns a line takes on a terminal: its characters, without the colour
/// escapes (`ESC [ ... m`).
pub(super) fn visible_width(line: &str) -> usize {
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
    fn wrapping_keeps_numbers_with_their_units_and_ignores_colour() {
        let red = "\x1b[1;31mCRITICAL\x1b[0m";
        let text = format!("{red} close_wait ×17 · port 30020 · oldest 34 min");
        // 52 columns of text and 2 of indent: one line at 54, though its
        // bytes are more.
        assert_eq!(wrap(&text, 54, "  ").lines().count(), 1);
        assert_eq!(wrap(&text, 53, "  ").lines().count(), 2);
        let w = wrap("the oldest has waited 34 min to be accepted", 25, "  ");
        assert!(w.lines().any(|l| l.contains("34 min")), "{w}");
    }
}
