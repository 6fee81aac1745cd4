//! Every string from outside is hostile: any user can name a process with
//! escape sequences or bidi overrides, a capture or a recording can hold
//! anything, and zombiescan often runs as root. Everything from outside
//! (live /proc, a capture, a recording, an error's text) passes one of
//! these where it is rendered, by the rules of the format it goes into:
//! a terminal, Markdown, HTML, a Prometheus label value. (JSON needs none:
//! serde_json escapes what JSON must, and the data stays exact.)

/// Lossy UTF-8, with control characters and bidi controls escaped as
/// `\xNN` / `\u{NNNN}`.
pub fn terminal(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            if (c as u32) < 0x100 {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else {
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            }
        } else if is_bidi(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// Text safe in a Markdown paragraph or table cell: as [`terminal`] (a
/// newline cannot end a row), then Markdown punctuation backslashed and
/// `&` written as an entity (`&rlm;` would become a bidi mark).
pub fn markdown(raw: &[u8]) -> String {
    let text = terminal(raw);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '\\' | '|' | '*' | '_' | '`' | '<' | '>' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Text safe inside HTML: as [`terminal`], then the five HTML specials as
/// entities.
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in terminal(s.as_bytes()).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus label value: as [`terminal`] (no control or bidi character
/// reaches whoever `cat`s the file), then backslash, double quote and line
/// feed escaped as the text format wants.
pub fn prometheus_label(v: &str) -> String {
    let text = terminal(v.as_bytes());
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// Whether `c` is a control or bidi character: what no rendered output may
/// hold raw.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() || is_bidi(c)
}

fn is_bidi(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_control_and_bidi() {
        assert_eq!(terminal(b"uvicorn"), "uvicorn");
        assert_eq!(terminal(b"evil\x1b[31mred"), "evil\\x1b[31mred");
        assert_eq!(terminal(b"a\nb\tc"), "a\\x0ab\\x09c");
        assert_eq!(terminal("abc\u{202e}fed".as_bytes()), "abc\\u{202e}fed");
        assert_eq!(terminal(b"\xff\xfe"), "\u{fffd}\u{fffd}");
        // C1 controls (U+0080..U+009F) too.
        assert_eq!(terminal("a\u{9b}31m".as_bytes()), "a\\x9b31m");
    }

    #[test]
    fn each_format_by_its_rules() {
        assert_eq!(markdown(b"a|b"), "a\\|b");
        assert_eq!(markdown(b"line\nbreak"), "line\\\\x0abreak");
        assert_eq!(markdown(b"&rlm;x"), "&amp;rlm;x");
        assert_eq!(markdown(b"*bold* <b>"), "\\*bold\\* \\<b\\>");
        assert_eq!(
            html("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
        assert_eq!(html("\u{1b}[2J"), "\\x1b[2J");
        assert_eq!(prometheus_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(prometheus_label("two\nlines"), "two\\\\x0alines");
        assert_eq!(
            prometheus_label("\u{1b}]0;x\u{7}\r\u{202e}"),
            r"\\x1b]0;x\\x07\\x0d\\u{202e}"
        );
        for f in [
            markdown(b"\x1b\x07\r\xc2\x9b"),
            html("\u{202e}"),
            prometheus_label("\u{2066}"),
        ] {
            assert!(!f.chars().any(is_unsafe), "{f:?}");
        }
    }
}
