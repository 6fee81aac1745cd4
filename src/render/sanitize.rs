//! Process names are hostile: any user can name a process with escape
//! sequences or bidi overrides, and zombiescan often runs as root. Everything
//! from a process is escaped here before it reaches a terminal.

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
    }
}
