//! The fallback source: `/proc/net/tcp` and `/proc/net/tcp6`.
//!
//! Format: proc(5) and `tcp4_seq_show`/`tcp6_seq_show` in net/ipv4/tcp_ipv4.c
//! and net/ipv6/tcp_ipv6.c. Columns: `sl local rem st tx_queue:rx_queue
//! tr:tm->when retrnsmt uid timeout inode ...`. Addresses are the kernel's
//! 32-bit words printed in host byte order. `tm->when` is in clock ticks
//! (USER_HZ). For keepalive and zero-window timers the probe count is in the
//! `timeout` column, for retransmits in `retrnsmt`.
//!
//! What this source cannot give: tcp_info (no idle times, no window, no
//! rtt), the socket cookie, and the accept-queue limit of a listener.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::error::{Error, Result};
use crate::model::{Family, Filter, Socket, TcpState, Timer, TimerKind};

/// Outcome of parsing one file.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Data lines that could not be decoded (truncated, garbage): skipped.
    pub bad_lines: u32,
}

fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s, 16).ok()
}

fn parse_addr(s: &str, family: Family) -> Option<SocketAddr> {
    let (ip, port) = s.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match family {
        Family::Ipv4 if ip.len() == 8 => IpAddr::V4(Ipv4Addr::from(hex_u32(ip)?.to_ne_bytes())),
        Family::Ipv6 if ip.len() == 32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                let word = hex_u32(ip.get(i * 8..i * 8 + 8)?)?;
                b[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(b))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses one data line; `None` when it is truncated or not a socket line.
pub fn parse_line(line: &str, family: Family, ticks_per_sec: u64) -> Option<Socket> {
    let mut f = line.split_ascii_whitespace();
    let _sl = f.next().filter(|s| s.ends_with(':'))?;
    let local = parse_addr(f.next()?, family)?;
    let remote = parse_addr(f.next()?, family)?;
    let st = u8::from_str_radix(f.next()?, 16).ok()?;
    let state = TcpState::from_kernel(st)?;
    let (tx, rx) = f.next()?.split_once(':')?;
    let (tr, when) = f.next()?.split_once(':')?;
    let retrnsmt = hex_u32(f.next()?)?;
    let uid: u32 = f.next()?.parse().ok()?;
    let probes: u32 = f.next()?.parse().ok()?;
    let inode: u64 = f.next()?.parse().ok()?;
    let kind = TimerKind::from_kernel(u8::from_str_radix(tr, 16).ok()?);
    let ticks = u64::from_str_radix(when, 16).ok()?;
    let count = match kind {
        TimerKind::Retransmit => retrnsmt,
        TimerKind::Keepalive | TimerKind::Persist => probes,
        TimerKind::Off | TimerKind::TimeWait => 0,
    };
    Some(Socket {
        family,
        state,
        local: local.into(),
        remote: remote.into(),
        recv_q: hex_u32(rx)?,
        send_q: hex_u32(tx)?,
        timer: Timer {
            kind,
            expires_ms: if kind == TimerKind::Off {
                0
            } else {
                u32::try_from(ticks.saturating_mul(1000) / ticks_per_sec.max(1)).unwrap_or(u32::MAX)
            },
            count: u8::try_from(count).unwrap_or(u8::MAX),
        },
        uid,
        inode,
        cookie: None,
        tcp_info: None,
        owner: 0,
    })
}

/// Parses a whole `/proc/net/tcp` (or `tcp6`) file, keeping the sockets the
/// filter's ports and states select. A missing header is an error; a bad
/// data line is counted and skipped.
pub fn parse(
    text: &[u8],
    family: Family,
    ticks_per_sec: u64,
    filter: &Filter,
    out: &mut Vec<Socket>,
) -> Result<Parsed> {
    let what = match family {
        Family::Ipv4 => "/proc/net/tcp",
        Family::Ipv6 => "/proc/net/tcp6",
    };
    let text =
        std::str::from_utf8(text).map_err(|e| Error::malformed(what, format!("not text: {e}")))?;
    let mut lines = text.lines();
    match lines.next() {
        Some(h) if h.trim_start().starts_with("sl") && h.contains("local_address") => {}
        Some(_) => {
            return Err(Error::malformed(
                what,
                "no header line: not a TCP socket table",
            ));
        }
        None => return Err(Error::malformed(what, "empty file")),
    }
    let mut parsed = Parsed::default();
    for line in lines {
        if line.trim().is_empty() {
            continue;
        }
        match parse_line(line, family, ticks_per_sec) {
            Some(s) if filter.matches_ports(&s) && filter.matches_state(&s) => out.push(s),
            Some(_) => {}
            None => parsed.bad_lines += 1,
        }
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ipv4_line() {
        let l = "   1: 0100007F:7544 0100007F:C350 01 00000010:00000020 01:0000012C 00000003  1000        0 4242 1 0000000000000000 20 4 30 10 -1";
        let s = parse_line(l, Family::Ipv4, 100).expect("line parses");
        assert_eq!(s.local.to_string(), "127.0.0.1:30020");
        assert_eq!(s.remote.to_string(), "127.0.0.1:50000");
        assert_eq!(s.state, TcpState::Established);
        assert_eq!((s.send_q, s.recv_q), (16, 32));
        assert_eq!(s.timer.kind, TimerKind::Retransmit);
        assert_eq!(s.timer.expires(), Duration::from_secs(3));
        assert_eq!(s.timer.count, 3);
        assert_eq!((s.uid, s.inode), (1000, 4242));
    }

    #[test]
    fn truncated_and_garbage_lines_are_none() {
        let full = "   1: 0100007F:7544 0100007F:C350 01 00000010:00000020 01:0000012C 00000003  1000        0 4242 1";
        for cut in [5, 20, 40, 60, 80] {
            assert_eq!(
                parse_line(&full[..cut], Family::Ipv4, 100),
                None,
                "cut at {cut}"
            );
        }
        assert_eq!(parse_line("hello world", Family::Ipv4, 100), None);
        assert_eq!(parse_line(full, Family::Ipv6, 100), None);
    }

    #[test]
    fn empty_and_headerless_files_are_errors() {
        let mut out = Vec::new();
        let f = Filter::default();
        assert!(parse(b"", Family::Ipv4, 100, &f, &mut out).is_err());
        assert!(parse(b"garbage\n1 2 3\n", Family::Ipv4, 100, &f, &mut out).is_err());
        assert!(parse(&[0xff, 0xfe, 0], Family::Ipv4, 100, &f, &mut out).is_err());
    }
}
