//! The terminal: its size, and a page redrawn in place.

use std::io::Write;

use crate::config::Config;
use crate::render;

/// How the table output looks: colour, the long form, and the width to
/// fit. A terminal on stdout gives its own; else COLUMNS; else, piped to
/// `less` or `cat`, the terminal the user sits at (`/dev/tty`, or stderr);
/// else 80. A terminal that reports 0 columns (script(1), some CI runners)
/// counts as none.
pub fn look(cfg: &Config) -> render::table::Look {
    let cols = if cfg.tty {
        size().map(|(_, c)| c)
    } else {
        None
    };
    let env = || {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
    };
    let behind = || {
        std::fs::File::open("/dev/tty")
            .ok()
            .and_then(|t| size_of(std::os::fd::AsRawFd::as_raw_fd(&t)))
            .or_else(|| size_of(2))
            .map(|(_, c)| c)
    };
    render::table::Look {
        color: cfg.color,
        width: Some(cols.or_else(env).or_else(behind).unwrap_or(80)),
        explain: cfg.explain,
    }
}

/// The rows and columns of the terminal on stdout.
pub fn size() -> Option<(usize, usize)> {
    size_of(1)
}

/// The rows and columns of the terminal open on `fd`.
fn size_of(fd: std::os::fd::RawFd) -> Option<(usize, usize)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `struct winsize` to the pointer given.
    let r = unsafe { nix::libc::ioctl(fd, nix::libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0 && ws.ws_col > 0).then(|| (ws.ws_row.into(), ws.ws_col.into()))
}

/// Draws `page` over the last one, as top does: home, each line over the
/// last sample's and the rest of it cleared, then the rest of the screen
/// (clearing the whole screen first would flicker). No line feed after the
/// last line: on the bottom row it would scroll the top line away.
pub fn redraw(page: &str, out: &mut dyn Write) -> std::io::Result<()> {
    let page = match size() {
        Some((rows, cols)) => render::table::fit_screen(page, rows, cols),
        None => page.to_owned(),
    };
    out.write_all(b"\x1b[H")?;
    for (i, line) in page.lines().enumerate() {
        if i > 0 {
            out.write_all(b"\n")?;
        }
        out.write_all(line.as_bytes())?;
        out.write_all(b"\x1b[K")?;
    }
    out.write_all(b"\x1b[J")?;
    out.flush()
}
