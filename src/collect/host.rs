//! Host context: file handles, socket counters and the sysctls the findings
//! cite. Formats: proc(5) for `/proc/sys/fs/file-nr`; `/proc/net/sockstat`
//! from net/ipv4/proc.c (`sockstat_seq_show`); `/proc/net/netstat` and
//! `/proc/net/snmp` as pairs of lines, names then values, per section
//! (`netstat_seq_show`, `snmp_seq_show`).
//!
//! The `/proc/net` files and `/proc/sys/net` belong to a network namespace:
//! they are read through the directory the caller names.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use crate::model::Host;

/// The sysctls the report and the findings cite, dotted names.
pub const SYSCTLS: [&str; 14] = [
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syn_retries",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_max_orphans",
    "net.ipv4.tcp_max_syn_backlog",
    "net.ipv4.tcp_retries2",
    "net.ipv4.tcp_max_tw_buckets",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.tcp_tw_reuse",
    "net.core.somaxconn",
    "fs.file-max",
];

/// `fs.file-nr`: allocated handles, free handles (always 0 since 2.6), max.
pub fn parse_file_nr(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_ascii_whitespace();
    let allocated = f.next()?.parse().ok()?;
    let _free = f.next()?;
    let max = f.next()?.parse().ok()?;
    Some((allocated, max))
}

/// `/proc/net/sockstat`: lines `SECTION: key value key value ...`.
pub fn parse_sockstat(text: &str, out: &mut BTreeMap<String, BTreeMap<String, u64>>) {
    for line in text.lines() {
        let Some((section, rest)) = line.split_once(':') else {
            continue;
        };
        let mut words = rest.split_ascii_whitespace();
        let entry = out.entry(section.trim().to_string()).or_default();
        while let (Some(k), Some(v)) = (words.next(), words.next()) {
            if let Ok(v) = v.parse() {
                entry.insert(k.to_string(), v);
            }
        }
    }
}

/// `/proc/net/netstat` or `/proc/net/snmp`: the counters of one section
/// (`TcpExt`, `Tcp`), from its header line and the value line after it.
pub fn parse_counters(text: &str, section: &str) -> BTreeMap<String, i64> {
    let prefix = format!("{section}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let mut out = BTreeMap::new();
    if let (Some(names), Some(values)) = (lines.next(), lines.next()) {
        for (n, v) in names[prefix.len()..]
            .split_ascii_whitespace()
            .zip(values[prefix.len()..].split_ascii_whitespace())
        {
            if let Ok(v) = v.parse() {
                out.insert(n.to_string(), v);
            }
        }
    }
    out
}

/// `/proc/uptime`'s first field, seconds since boot with two decimals, as
/// milliseconds (proc(5)).
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_ascii_whitespace().next()?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then_some((secs * 1000.0) as u64)
}

fn read_trimmed(path: impl AsRef<Path>) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

/// Reads the host context. `net_dir` is the `/proc/.../net` directory of
/// the namespace scanned. A file that cannot be read is named in the
/// returned notes and left out.
pub fn read(net_dir: &Path) -> (Host, Vec<String>) {
    let mut notes = Vec::new();
    let uts = nix::sys::utsname::uname().ok();
    let text = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let mut host = Host {
        hostname: text(nix::sys::utsname::UtsName::nodename),
        kernel: text(nix::sys::utsname::UtsName::release),
        ..Host::default()
    };
    match read_trimmed("/proc/sys/fs/file-nr")
        .as_deref()
        .map(parse_file_nr)
    {
        Some(Some((allocated, max))) => {
            host.files_allocated = Some(allocated);
            host.files_max = Some(max);
        }
        _ => notes.push("/proc/sys/fs/file-nr unreadable: host file-handle use unknown".into()),
    }
    host.uptime_ms = read_trimmed("/proc/uptime")
        .as_deref()
        .and_then(parse_uptime);
    for name in ["sockstat", "sockstat6"] {
        match fs::read_to_string(net_dir.join(name)) {
            Ok(t) => parse_sockstat(&t, &mut host.sockstat),
            Err(e) => notes.push(format!("{}: {e}", net_dir.join(name).display())),
        }
    }
    match fs::read_to_string(net_dir.join("netstat")) {
        Ok(t) => host.tcp_ext = parse_counters(&t, "TcpExt"),
        Err(e) => notes.push(format!("{}: {e}", net_dir.join("netstat").display())),
    }
    match fs::read_to_string(net_dir.join("snmp")) {
        Ok(t) => host.tcp = parse_counters(&t, "Tcp"),
        Err(e) => notes.push(format!("{}: {e}", net_dir.join("snmp").display())),
    }
    for name in SYSCTLS {
        let path = format!("/proc/sys/{}", name.replace('.', "/"));
        if let Some(v) = read_trimmed(&path) {
            host.sysctls.insert(
                name.to_string(),
                v.split_ascii_whitespace().collect::<Vec<_>>().join(" "),
            );
        }
    }
    (host, notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_nr() {
        assert_eq!(
            parse_file_nr("2176\t0\t9223372036854775807\n"),
            Some((2176, 9223372036854775807))
        );
        assert_eq!(parse_file_nr("2176"), None);
        assert_eq!(parse_file_nr(""), None);
    }

    #[test]
    fn uptime() {
        // proc(5): seconds up, seconds idle (a 6.18 kernel's /proc/uptime).
        assert_eq!(parse_uptime("533.45 588.54\n"), Some(533_450));
        assert_eq!(parse_uptime("-1 0"), None);
        assert_eq!(parse_uptime("inf 0"), None);
        assert_eq!(parse_uptime(""), None);
    }

    #[test]
    fn counters_pick_their_section() {
        let t = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 7 9\nIpExt: InNoRoutes\nIpExt: 3\n";
        let c = parse_counters(t, "TcpExt");
        assert_eq!(c.get("ListenOverflows"), Some(&7));
        assert_eq!(c.get("ListenDrops"), Some(&9));
        assert!(!c.contains_key("InNoRoutes"));
        assert!(parse_counters("TcpExt: A B\n", "TcpExt").is_empty());
        assert!(parse_counters("", "Tcp").is_empty());
    }

    #[test]
    fn sockstat_sections() {
        let mut m = BTreeMap::new();
        parse_sockstat(
            "sockets: used 5\nTCP: inuse 3 orphan 1 tw 2 alloc 4 mem 1\ngarbage\n",
            &mut m,
        );
        parse_sockstat("TCP6: inuse 2\n", &mut m);
        assert_eq!(m["TCP"]["orphan"], 1);
        assert_eq!(m["TCP"]["tw"], 2);
        assert_eq!(m["TCP6"]["inuse"], 2);
        assert_eq!(m["sockets"]["used"], 5);
    }
}
