//! Following a scanned port one hop: the namespaces docker-proxy or NAT
//! forward it to (scanned with it), and, when nothing serves it here, where
//! it is served instead (a hint).

use std::fs;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::scan::{Inside, inside, label, own_netns};
use super::{PROC, ScanOptions, netlink, netns};
use crate::model::{Args, Filter, Folded, Forwarded, Hint, Netns, Snapshot, Socket};

/// A docker-proxy forwarding one of the scanned ports, from its command
/// line (`-host-port P -container-ip IP -container-port CP`).
#[derive(Debug)]
struct Forwarder {
    pid: u32,
    host_port: u16,
    container_ip: Option<IpAddr>,
    container_port: u16,
}

impl Forwarder {
    /// What a docker-proxy command line forwards.
    fn parse(pid: u32, cmdline: &[u8]) -> Option<Forwarder> {
        let args = Args::new(cmdline);
        let port = |flag: &str| args.value(&[flag])?.parse::<u16>().ok();
        Some(Forwarder {
            pid,
            host_port: port("-host-port")?,
            container_ip: args.value(&["-container-ip"]).and_then(|v| v.parse().ok()),
            container_port: port("-container-port")?,
        })
    }
}

/// The docker-proxy processes of this network namespace that forward one
/// of `ports`.
fn forwarders(ports: &[u16]) -> Vec<Forwarder> {
    let own = own_netns();
    let mut out = Vec::new();
    for entry in fs::read_dir(PROC).into_iter().flatten().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if fs::read(entry.path().join("comm")).ok().as_deref() != Some(b"docker-proxy\n")
            || netns::inode(&entry.path().join("ns/net")) != own
        {
            continue;
        }
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if let Some(f) = Forwarder::parse(pid, &cmdline)
            && ports.contains(&f.host_port)
        {
            out.push(f);
        }
    }
    out
}

/// The IPv4 addresses of the calling thread's namespace, from the local
/// table of `/proc/thread-self/net/fib_trie` ("|-- 172.17.0.2" followed
/// by "/32 host LOCAL").
pub fn local_addrs(fib_trie: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in fib_trie.lines() {
        let t = line.trim_start_matches([' ', '|', '-', '+']);
        if let Ok(ip) = t.trim().parse::<IpAddr>() {
            last = Some(ip);
        } else if line.contains("/32 host LOCAL")
            && let Some(ip) = last
            && !out.contains(&ip)
        {
            out.push(ip);
        }
    }
    out
}

/// A namespace a scanned port is served in, and its part of the scan.
pub(super) struct Followed {
    pub(super) netns: Netns,
    pub(super) inside: Inside,
    /// The scan's filter, with the ports served there.
    pub(super) filter: Filter,
    pub(super) forwarded: Vec<Forwarded>,
}

/// The namespaces other than this one where the scanned ports are served:
/// the container ports docker-proxy forwards them to (in the namespace
/// that holds the container's address), and the ports themselves when
/// nothing here listens on them (NAT rules forward them). Each is scanned
/// for those ports.
pub(super) fn follow(opts: &ScanOptions, here: &[Socket], folded: &Folded) -> Vec<Followed> {
    let ports = &opts.filter.ports;
    let fwd = forwarders(ports);
    let listened: Vec<u16> = here
        .iter()
        .filter(|s| s.state == crate::model::TcpState::Listen)
        .map(|s| s.local.port())
        .collect();
    // (port looked for there, host port, forwarder)
    let mut wanted: Vec<(u16, u16, Option<&Forwarder>)> = fwd
        .iter()
        .map(|f| (f.container_port, f.host_port, Some(f)))
        .collect();
    // NAT leaves no socket here for the connections it forwards: a port
    // with sockets but no listener is a client's (a database's, say).
    for &p in ports {
        let touched = here
            .iter()
            .any(|s| s.local.port() == p || s.remote.port() == p)
            || folded.groups.iter().any(|g| g.port == p);
        if !listened.contains(&p) && !touched && !fwd.iter().any(|f| f.host_port == p) {
            wanted.push((p, p, None));
        }
    }
    if wanted.is_empty() {
        return Vec::new();
    }
    let look: Vec<u16> = wanted.iter().map(|w| w.0).collect();
    let names = netns::names();
    let own = own_netns();
    let listen = crate::model::TcpState::Listen.mask_bit();
    let mut out = Vec::new();
    for (ino, (path, pids)) in netns::all(Path::new(PROC)) {
        if Some(ino) == own {
            continue;
        }
        let ways = netns::ways_in(ino, &path, &pids, &names, Path::new(PROC));
        let Some((path, fd)) = netns::open_ns(ino, &ways) else {
            continue;
        };
        let found = netns::run_in_file(&path, fd, || {
            let d = netlink::dump_sockets(listen, &look)?;
            let addrs = fs::read_to_string("/proc/thread-self/net/fib_trie")
                .map(|t| local_addrs(&t))
                .unwrap_or_default();
            Ok((d.sockets, addrs))
        });
        let Ok((listeners, addrs)) = found else {
            continue;
        };
        let mut forwarded = Vec::new();
        let mut there: Vec<u16> = Vec::new();
        for &(cport, host_port, f) in &wanted {
            // A container port names the namespace holding the container's
            // address; many containers may listen on the same port.
            if let Some(ip) = f.and_then(|f| f.container_ip)
                && !addrs.contains(&ip)
            {
                continue;
            }
            let ls: Vec<&Socket> = listeners
                .iter()
                .filter(|l| l.local.port() == cport)
                .collect();
            let Some(first) = ls.first() else { continue };
            forwarded.push(Forwarded {
                port: host_port,
                to: match f.and_then(|f| f.container_ip) {
                    Some(ip) => SocketAddr::new(ip, cport),
                    None => first.local.addr(),
                },
                by: f.map(|f| f.pid),
                netns: String::new(),
                queue: ls.iter().map(|l| l.recv_q).sum(),
                backlog: ls.iter().map(|l| l.send_q).sum(),
            });
            if !there.contains(&cport) {
                there.push(cport);
            }
        }
        if there.is_empty() {
            continue;
        }
        let sub = ScanOptions {
            filter: Filter {
                ports: there,
                ..opts.filter.clone()
            },
            netns: None,
            ..opts.clone()
        };
        let Ok(ins) = inside(Some(&path), &sub) else {
            continue;
        };
        let netns = label(Some(ino), None, &pids, &names);
        for f in &mut forwarded {
            f.netns = netns.label();
        }
        out.push(Followed {
            netns,
            inside: ins,
            filter: sub.filter,
            forwarded,
        });
    }
    // A port NAT may send anywhere is followed only where one namespace
    // serves it: several would be a guess.
    let nat_ports: Vec<u16> = out
        .iter()
        .flat_map(|f| f.forwarded.iter())
        .filter(|f| f.by.is_none())
        .map(|f| f.port)
        .collect();
    let ambiguous: Vec<u16> = nat_ports
        .iter()
        .copied()
        .filter(|p| nat_ports.iter().filter(|q| *q == p).count() > 1)
        .collect();
    if !ambiguous.is_empty() {
        for f in &mut out {
            f.forwarded
                .retain(|x| x.by.is_some() || !ambiguous.contains(&x.port));
        }
        out.retain(|f| !f.forwarded.is_empty());
    }
    out
}

/// For a `--port` scan of zombiescan's own namespace that finds no server
/// of its own (nothing, or only docker-proxy, listens): the namespaces where
/// a listener for that port (or the container port docker-proxy forwards
/// it to) lives, and the command that scans it.
pub(super) fn elsewhere(snap: &Snapshot, opts: &ScanOptions) -> Vec<Hint> {
    let is_proxy = |pid: &u32| {
        snap.processes
            .get(pid)
            .is_some_and(|p| p.comm == b"docker-proxy")
    };
    let real_listener = snap.sockets.iter().any(|s| {
        s.state == crate::model::TcpState::Listen && !snap.owners_of(s).iter().all(is_proxy)
    });
    let proxied = snap.processes.values().any(|p| p.comm == b"docker-proxy");
    // Sockets but no proxy: a client's port (a database's, say), not a
    // server gone missing.
    if real_listener || (snap.tcp_count() > 0 && !proxied) {
        return Vec::new();
    }
    let mut ports = opts.filter.ports.clone();
    let mut hints = Vec::new();
    for p in snap
        .processes
        .values()
        .filter(|p| p.comm == b"docker-proxy")
    {
        if let Some(f) = Forwarder::parse(p.pid, &p.cmdline)
            && opts.filter.ports.contains(&f.host_port)
        {
            hints.push(Hint::Proxied {
                proxy_pid: f.pid,
                host_port: f.host_port,
                container_ip: f.container_ip,
                container_port: f.container_port,
            });
            if !ports.contains(&f.container_port) {
                ports.push(f.container_port);
            }
        }
    }
    let names = netns::names();
    let own = own_netns();
    let mut unentered = Vec::new();
    for (ino, (path, pids)) in netns::all(Path::new(PROC)) {
        if Some(ino) == own {
            continue;
        }
        let listen = crate::model::TcpState::Listen.mask_bit();
        let ways = netns::ways_in(ino, &path, &pids, &names, Path::new(PROC));
        let dump = || netlink::dump_sockets(listen, &ports);
        let found = match netns::open_ns(ino, &ways) {
            Some((p, fd)) => netns::run_in_file(&p, fd, dump),
            // Not one way in opens: gone, or (not root) not ours to open,
            // which entering through its path says.
            None if nix::unistd::geteuid().is_root() => continue,
            None => netns::run_in(&path, dump),
        };
        let listeners = match found {
            Ok(netlink::Dump { sockets, .. }) => sockets,
            Err(_) => {
                unentered.push(label(Some(ino), None, &pids, &names).label());
                continue;
            }
        };
        let mut lports: Vec<u16> = listeners.iter().map(|s| s.local.port()).collect();
        lports.sort_unstable();
        lports.dedup();
        if lports.is_empty() {
            continue;
        }
        let netns = label(Some(ino), None, &pids, &names);
        let target = netns
            .name
            .clone()
            .or_else(|| pids.first().map(u32::to_string))
            .unwrap_or_else(|| path.display().to_string());
        let fullest = listeners.iter().max_by_key(|s| s.recv_q);
        hints.push(Hint::ListensIn {
            ports: lports,
            netns: netns.label(),
            enter: target,
            queue: fullest.map_or(0, |s| s.recv_q),
            backlog: fullest.map_or(0, |s| s.send_q),
        });
    }
    // Where several namespaces serve the port, the one in trouble first.
    hints.sort_by_key(|h| match h {
        Hint::ListensIn { queue, .. } => std::cmp::Reverse(*queue),
        _ => std::cmp::Reverse(u32::MAX),
    });
    if hints.is_empty() {
        hints.push(Hint::NothingListens {
            ports: opts.filter.ports.clone(),
            unentered,
            as_root: nix::unistd::geteuid().is_root(),
        });
    }
    hints
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespaces_own_addresses() {
        // fixtures/proc/fib_trie: a namespace with 10.231.9.2/24 on a veth.
        let text = include_str!("../../fixtures/proc/fib_trie");
        let want: Vec<IpAddr> = vec!["10.231.9.2".parse().unwrap(), "127.0.0.1".parse().unwrap()];
        assert_eq!(local_addrs(text), want);
        assert!(local_addrs("").is_empty());
    }
}
