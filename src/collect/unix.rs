//! Unix-domain sockets: the upstream behind a proxy (`proxy_pass
//! http://unix:/run/app.sock`, `gunicorn --bind unix:`, `uvicorn --uds`).
//!
//! The default source is a unix_diag dump over `NETLINK_SOCK_DIAG`
//! (sock_diag(7), include/uapi/linux/unix_diag.h, net/unix/diag.c): each
//! socket's name, peer and queues. For a listener `UNIX_DIAG_RQLEN` gives
//! the connections waiting to be accepted and the backlog
//! (`sk_max_ack_backlog`), for a connection the bytes queued each way.
//! `/proc/net/unix` (proc(5)) is the fallback: names and states, but no
//! queues and no peers.
//!
//! A `--port` scan keeps the unix sockets behind the port: the listeners
//! the port's owners hold connections to (their end's peer is the server's
//! end, which carries the listener's name), and the listeners their
//! configuration names (nginx's `unix:` upstreams, read from the files the
//! running master was started with); [`select`] says which way each was
//! found.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netlink_packet_core::{NLM_F_DUMP, NLM_F_REQUEST, NlasIterator};
use netlink_packet_sock_diag::constants::{
    AF_UNIX, SOCK_DIAG_BY_FAMILY, UDIAG_SHOW_ICONS, UDIAG_SHOW_NAME, UDIAG_SHOW_PEER,
    UDIAG_SHOW_RQLEN, UNIX_DIAG_ICONS, UNIX_DIAG_NAME, UNIX_DIAG_PEER, UNIX_DIAG_RQLEN,
};

use super::netlink::Dumper;
use crate::error::{Error, Result};
use crate::model::{
    Args, Direction, Filter, Snapshot, TcpState, UnixLink, UnixLinkHow, UnixSocket, UnixType,
};

/// `sizeof(struct unix_diag_msg)`: family, type, state, pad, inode, cookie.
const UNIX_DIAG_MSG_LEN: usize = 16;

/// What `/proc/net/unix` cannot show, said in the report.
pub const PROC_UNIX_LIMITS: &str = "source proc: unix sockets without queues or peers \
(/proc/net/unix has neither): a full unix listener is not seen";

/// `struct nlmsghdr` and `struct unix_diag_req` asking for every unix
/// socket (all states) with its name, peer and queues.
pub fn request(seq: u32) -> Vec<u8> {
    const LEN: usize = 16 + 24;
    let mut buf = Vec::with_capacity(LEN);
    buf.extend_from_slice(&(LEN as u32).to_ne_bytes());
    buf.extend_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // sdiag_family, sdiag_protocol, pad; udiag_states; udiag_ino;
    // udiag_show; udiag_cookie[2].
    buf.extend_from_slice(&[AF_UNIX, 0, 0, 0]);
    buf.extend_from_slice(&u32::MAX.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    buf.extend_from_slice(
        &(UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN).to_ne_bytes(),
    );
    buf.extend_from_slice(&[0xff; 8]);
    buf
}

fn ne_u32(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off + 4)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes one `struct unix_diag_msg` and its attributes: `None` for a
/// datagram socket (not a connection).
pub fn parse_unix_diag_msg(p: &[u8]) -> Result<Option<UnixSocket>> {
    if p.len() < UNIX_DIAG_MSG_LEN || p[0] != AF_UNIX {
        return Err(Error::malformed(
            "unix_diag_msg",
            format!(
                "{} bytes of family {}",
                p.len(),
                p.first().copied().unwrap_or(0)
            ),
        ));
    }
    let Some(kind) = UnixType::from_kernel(u32::from(p[1])) else {
        return Ok(None);
    };
    let state = TcpState::from_kernel(p[2])
        .ok_or_else(|| Error::malformed("unix_diag_msg", format!("state {}", p[2])))?;
    let mut u = UnixSocket {
        kind,
        state,
        name: Vec::new(),
        inode: u64::from(ne_u32(p, 4).unwrap_or(0)),
        peer: 0,
        recv_q: 0,
        send_q: 0,
        queues: false,
        pending: Vec::new(),
        owner: 0,
    };
    for nla in NlasIterator::new(&p[UNIX_DIAG_MSG_LEN..]) {
        let nla = nla.map_err(|e| Error::malformed("unix_diag attribute", e.to_string()))?;
        let v = nla.value();
        match nla.kind() & 0x3fff {
            // A path keeps the NUL its bind() passed; an abstract name is
            // all its bytes.
            UNIX_DIAG_NAME if v.first() == Some(&0) => u.name = v.to_vec(),
            UNIX_DIAG_NAME => {
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                u.name = v[..end].to_vec();
            }
            UNIX_DIAG_PEER => u.peer = u64::from(ne_u32(v, 0).unwrap_or(0)),
            UNIX_DIAG_ICONS => {
                u.pending = v
                    .chunks_exact(4)
                    .map(|c| u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
                    .filter(|&i| i != 0)
                    .collect();
            }
            UNIX_DIAG_RQLEN => {
                u.recv_q = ne_u32(v, 0).unwrap_or(0);
                u.send_q = ne_u32(v, 4).unwrap_or(0);
                u.queues = v.len() >= 8;
            }
            _ => {}
        }
    }
    Ok(Some(u))
}

/// Decodes one datagram of a unix_diag dump into `out`; returns whether
/// the dump is complete, and counts what could not be decoded.
pub fn parse_datagram(buf: &[u8], out: &mut Vec<UnixSocket>) -> Result<super::netlink::Datagram> {
    super::netlink::walk_datagram(buf, &[SOCK_DIAG_BY_FAMILY], |p| {
        match parse_unix_diag_msg(p) {
            Ok(Some(u)) => {
                out.push(u);
                true
            }
            Ok(None) => true,
            Err(_) => false,
        }
    })
}

/// Every unix stream and seqpacket socket of the calling thread's network
/// namespace, and whether the dump was interrupted.
pub fn dump() -> Result<(Vec<UnixSocket>, bool)> {
    let mut dumper = Dumper::open()?;
    let mut out = Vec::new();
    let mut interrupted = false;
    dumper.dump_request(&request(1), |dg| {
        let d = parse_datagram(dg, &mut out)?;
        interrupted |= d.interrupted;
        Ok(d.done)
    })?;
    Ok((out, interrupted))
}

/// Parses `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode
/// Path`. `Flags` 0x10000 (`__SO_ACCEPTCON`) marks a listener; `St` is the
/// socket state (1 unconnected, 2 connecting, 3 connected); the path of an
/// abstract socket starts with `@`. No queues, no peers.
pub fn parse_proc(text: &[u8]) -> Vec<UnixSocket> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n').skip(1) {
        let mut f = line.splitn(8, |&b| b == b' ').filter(|w| !w.is_empty());
        let (Some(_num), Some(_refs), Some(_proto), Some(flags), Some(ty), Some(st), Some(ino)) = (
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
            f.next(),
        ) else {
            continue;
        };
        let hex = |w: &[u8]| {
            std::str::from_utf8(w)
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
        };
        let (Some(flags), Some(ty), Some(st)) = (hex(flags), hex(ty), hex(st)) else {
            continue;
        };
        let Some(kind) = UnixType::from_kernel(ty) else {
            continue;
        };
        // A connection waiting in a listener's queue has no inode yet (its
        // server end, listed under the listener's name): not a socket of
        // anyone's.
        let Some(inode) = std::str::from_utf8(ino)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|&i| i != 0)
        else {
            continue;
        };
        let path = f.next().map(|p| p.trim_ascii()).unwrap_or_default();
        let name = match path.split_first() {
            Some((b'@', rest)) => [&[0u8][..], rest].concat(),
            _ => path.to_vec(),
        };
        let state = if flags & 0x10000 != 0 {
            TcpState::Listen
        } else {
            match st {
                2 => TcpState::SynSent,
                3 => TcpState::Established,
                _ => TcpState::Close,
            }
        };
        out.push(UnixSocket {
            kind,
            state,
            name,
            inode,
            peer: 0,
            recv_q: 0,
            send_q: 0,
            queues: false,
            pending: Vec::new(),
            owner: 0,
        });
    }
    out
}

/// The unix sockets a scan with `filter` keeps of those its namespace
/// holds, once their owners are known: all of them without a port or path
/// filter; with `--path`, those of that name and their client ends; with
/// `--port`, those behind the port. The listeners behind each scanned port
/// (every listening port without `--port`) are recorded in `unix_links`,
/// with the way each was found. `root` is where `/proc` is.
pub fn select(snap: &mut Snapshot, filter: &Filter, root: &Path) {
    let ports: Vec<u16> = if filter.ports.is_empty() {
        snap.listening_ports().into_iter().collect()
    } else {
        filter.ports.clone()
    };
    snap.unix_links = links(snap, &ports, root);
    if filter.ports.is_empty() && filter.paths.is_empty() {
        return;
    }
    let names: BTreeSet<Vec<u8>> = filter
        .paths
        .iter()
        .filter_map(|p| {
            snap.unix
                .iter()
                .find(|u| u.named(p))
                .map(|u| u.name.clone())
        })
        .chain(snap.unix_links.iter().map(|l| l.name.clone()))
        .collect();
    // The server ends carry the name; the client ends are their peers, or
    // wait in a listener's queue.
    let server_ends: BTreeSet<u64> = snap
        .unix
        .iter()
        .filter(|u| names.contains(&u.name))
        .flat_map(|u| std::iter::once(u.inode).chain(u.pending.iter().copied()))
        .collect();
    snap.unix.retain(|u| {
        names.contains(&u.name)
            || server_ends.contains(&u.inode)
            || (u.peer != 0 && server_ends.contains(&u.peer))
    });
    if !filter.states.is_empty() {
        snap.unix.retain(|u| filter.states.contains(&u.state));
    }
    // The processes that held only the unix sockets left out go too.
    let mut holders: BTreeSet<u32> = BTreeSet::new();
    for s in &snap.sockets {
        holders.extend(snap.owners_of(s));
    }
    for (f, _) in snap.folded.iter() {
        holders.extend(snap.folded_owners(f));
    }
    for u in &snap.unix {
        holders.extend(snap.unix_owners(u));
    }
    snap.processes.retain(|pid, _| holders.contains(pid));
}

/// The unix listeners behind `ports`: those the ports' processes hold
/// connections to, then those their configuration names.
fn links(snap: &Snapshot, ports: &[u16], root: &Path) -> Vec<UnixLink> {
    let listeners: std::collections::HashMap<u64, &UnixSocket> = snap
        .unix
        .iter()
        .filter(|u| u.state == TcpState::Listen && !u.name.is_empty())
        .map(|u| (u.inode, u))
        .collect();
    if listeners.is_empty() {
        return Vec::new();
    }
    // Each listener, by the processes holding client ends of it: an
    // accepted connection's client end has the server's end (named as its
    // listener) as its peer; a waiting one is in the listener's pending.
    let by_inode: std::collections::HashMap<u64, &UnixSocket> =
        snap.unix.iter().map(|u| (u.inode, u)).collect();
    let mut waiting: std::collections::HashMap<u64, &[u8]> = std::collections::HashMap::new();
    for l in listeners.values() {
        for p in &l.pending {
            waiting.insert(*p, &l.name);
        }
    }
    let listened: BTreeSet<&[u8]> = listeners.values().map(|l| l.name.as_slice()).collect();
    let mut clients: std::collections::BTreeMap<&[u8], BTreeSet<u32>> =
        std::collections::BTreeMap::new();
    for u in snap.unix.iter().filter(|u| u.name.is_empty()) {
        let name = match by_inode.get(&u.peer) {
            Some(server) if u.peer != 0 => Some(server.name.as_slice()),
            _ => waiting.get(&u.inode).copied(),
        };
        if let Some(name) = name.filter(|n| listened.contains(n)) {
            clients
                .entry(name)
                .or_default()
                .extend(snap.unix_owners(u).iter().copied());
        }
    }
    let mut out: Vec<UnixLink> = Vec::new();
    let mut configs: std::collections::HashMap<u32, Vec<(String, Vec<u8>)>> =
        std::collections::HashMap::new();
    for &port in ports {
        // The processes serving the port: those holding its listener, else
        // any holding one of its sockets.
        let mut proxies: BTreeSet<u32> = snap
            .sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen && s.local.port() == port)
            .flat_map(|s| snap.owners_of(s).iter().copied())
            .collect();
        if proxies.is_empty() {
            proxies = snap
                .sockets
                .iter()
                .filter(|s| s.local.port() == port)
                .flat_map(|s| snap.owners_of(s).iter().copied())
                .chain(
                    snap.folded
                        .iter()
                        .filter(|(_, g)| g.direction == Direction::Inbound && g.port == port)
                        .flat_map(|(f, _)| snap.folded_owners(f).iter().copied()),
                )
                .collect();
        }
        if proxies.is_empty() {
            continue;
        }
        let mut add = |name: &[u8], mut pids: Vec<u32>, how: UnixLinkHow| match out
            .iter_mut()
            .find(|l| l.name == name && l.port == port)
        {
            Some(l) => {
                l.proxy_pids.append(&mut pids);
                l.proxy_pids.sort_unstable();
                l.proxy_pids.dedup();
            }
            None => out.push(UnixLink {
                name: name.to_vec(),
                port,
                proxy_pids: pids,
                how,
            }),
        };
        for (name, holders) in &clients {
            let pids: Vec<u32> = holders.intersection(&proxies).copied().collect();
            if !pids.is_empty() {
                add(name, pids, UnixLinkHow::Connected);
            }
        }
        // Configuration: nginx's running master names its upstreams.
        for pid in &proxies {
            let Some(p) = snap.processes.get(pid) else {
                continue;
            };
            let Some(conf) = nginx_conf(&p.cmdline) else {
                continue;
            };
            let found = configs
                .entry(*pid)
                .or_insert_with(|| nginx_upstreams(root, *pid, &conf));
            for (file, path) in found.iter() {
                if listened.contains(path.as_slice()) {
                    let pids = proxies.iter().copied().collect();
                    add(path, pids, UnixLinkHow::Config(file.clone()));
                }
            }
        }
    }
    out
}

/// The configuration file of an nginx master, from its command line as
/// nginx rewrites it (`nginx: master process /usr/sbin/nginx -c FILE`):
/// `-c FILE`, else Debian's compiled-in default. `None` for another
/// process (a worker names no file: its master does).
pub fn nginx_conf(cmdline: &[u8]) -> Option<PathBuf> {
    if !cmdline.starts_with(b"nginx: master process") {
        return None;
    }
    let args = Args::new(cmdline);
    Some(PathBuf::from(
        args.value(&["-c"]).unwrap_or("/etc/nginx/nginx.conf"),
    ))
}

/// At most this many files, each read up to this many bytes: a
/// configuration is text a person wrote.
const MAX_FILES: usize = 64;
const MAX_FILE: u64 = 1 << 20;

/// The `unix:` upstreams of an nginx configuration (`proxy_pass
/// http://unix:/run/app.sock:/;`, `server unix:/run/app.sock;` in an
/// `upstream`, and the same for uwsgi, fastcgi, scgi and grpc), with the
/// file that names each. Files are read as the process sees them, under
/// `/proc/PID/root`, following `include` (a `*` in the last part matches
/// any name); a relative path is relative to the main file's directory,
/// as nginx's configuration prefix is.
pub fn nginx_upstreams(root: &Path, pid: u32, conf: &Path) -> Vec<(String, Vec<u8>)> {
    let proc_root = root.join(pid.to_string()).join("root");
    let prefix = conf.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut todo = vec![conf.to_path_buf()];
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let mut out = Vec::new();
    while let Some(file) = todo.pop() {
        if seen.len() >= MAX_FILES || !seen.insert(file.clone()) {
            continue;
        }
        let inside = proc_root.join(file.strip_prefix("/").unwrap_or(&file));
        let Ok(text) = read_bounded(&inside) else {
            continue;
        };
        let (upstreams, includes) = nginx_words(&text);
        for u in upstreams {
            out.push((file.display().to_string(), u));
        }
        for inc in includes {
            let inc = if inc.is_absolute() {
                inc
            } else {
                prefix.join(inc)
            };
            todo.extend(expand(&proc_root, &inc));
        }
    }
    out
}

fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_FILE)
        .read_to_end(&mut buf)?;
    Ok(buf)
}

/// An `include` pattern: the file itself, or with a `*` in its last part
/// the names of its directory that match.
fn expand(proc_root: &Path, pattern: &Path) -> Vec<PathBuf> {
    let name = pattern
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Some((head, tail)) = name.split_once('*') else {
        return vec![pattern.to_path_buf()];
    };
    let dir = pattern.parent().unwrap_or(Path::new("/"));
    let inside = proc_root.join(dir.strip_prefix("/").unwrap_or(dir));
    let mut out: Vec<PathBuf> = std::fs::read_dir(inside)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            (n.len() >= head.len() + tail.len() && n.starts_with(head) && n.ends_with(tail))
                .then(|| dir.join(n))
        })
        .take(MAX_FILES)
        .collect();
    out.sort();
    out
}

/// The `unix:` paths and the `include` arguments of an nginx file, comments
/// left out.
pub fn nginx_words(text: &[u8]) -> (Vec<Vec<u8>>, Vec<PathBuf>) {
    let mut upstreams = Vec::new();
    let mut includes = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let mut rest = line;
        while let Some(i) = find(rest, b"unix:") {
            let after = &rest[i + 5..];
            let end = after
                .iter()
                .position(|&b| matches!(b, b':' | b';' | b' ' | b'\t' | b'"' | b'\'' | b'}'))
                .unwrap_or(after.len());
            if end > 0 {
                upstreams.push(after[..end].to_vec());
            }
            rest = &after[end..];
        }
        let words: Vec<&[u8]> = line
            .split(|&b| b == b' ' || b == b'\t' || b == b';')
            .filter(|w| !w.is_empty())
            .collect();
        for pair in words.windows(2) {
            if pair[0] == b"include" {
                let w = pair[1].trim_ascii_start();
                let w = w.strip_prefix(b"\"").unwrap_or(w);
                let w = w.strip_suffix(b"\"").unwrap_or(w);
                includes.push(PathBuf::from(String::from_utf8_lossy(w).into_owned()));
            }
        }
    }
    (upstreams, includes)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unix_diag message as the kernel frames it.
    fn msg(ty: u8, state: u8, inode: u32, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut p = vec![AF_UNIX, ty, state, 0];
        p.extend_from_slice(&inode.to_ne_bytes());
        p.extend_from_slice(&[0; 8]);
        for (kind, v) in attrs {
            p.extend_from_slice(&((v.len() + 4) as u16).to_ne_bytes());
            p.extend_from_slice(&kind.to_ne_bytes());
            p.extend_from_slice(v);
            while p.len() % 4 != 0 {
                p.push(0);
            }
        }
        p
    }

    #[test]
    fn a_listener_with_its_queue_and_a_connection_with_its_peer() {
        let rq = |a: u32, b: u32| [a.to_ne_bytes(), b.to_ne_bytes()].concat();
        let l = msg(
            1,
            10,
            77,
            &[
                (UNIX_DIAG_NAME, b"/run/app.sock\0".to_vec()),
                (UNIX_DIAG_RQLEN, rq(17, 16)),
            ],
        );
        let u = parse_unix_diag_msg(&l).expect("parse").expect("stream");
        assert_eq!(
            (u.state, u.path(), u.recv_q, u.send_q, u.queues, u.inode),
            (
                TcpState::Listen,
                b"/run/app.sock".to_vec(),
                17,
                16,
                true,
                77
            )
        );
        let icons = msg(
            1,
            10,
            76,
            &[(
                UNIX_DIAG_ICONS,
                [5u32, 0, 6].iter().flat_map(|i| i.to_ne_bytes()).collect(),
            )],
        );
        let u = parse_unix_diag_msg(&icons).expect("parse").expect("stream");
        assert_eq!(u.pending, vec![5, 6]);
        let c = msg(5, 1, 78, &[(UNIX_DIAG_PEER, 79u32.to_ne_bytes().to_vec())]);
        let u = parse_unix_diag_msg(&c).expect("parse").expect("seqpacket");
        assert_eq!(
            (u.kind, u.peer, u.path()),
            (UnixType::Seqpacket, 79, b"*".to_vec())
        );
        let abs = msg(1, 10, 80, &[(UNIX_DIAG_NAME, b"\0app".to_vec())]);
        let u = parse_unix_diag_msg(&abs).expect("parse").expect("stream");
        assert_eq!(u.path(), b"@app".to_vec());
        assert!(u.named(b"@app") && !u.named(b"app"));
        // A datagram socket is no connection; a short record is an error.
        assert_eq!(
            parse_unix_diag_msg(&msg(2, 7, 81, &[])).expect("dgram"),
            None
        );
        assert!(parse_unix_diag_msg(&l[..10]).is_err());
        assert_eq!(request(3).len(), 40);
    }

    /// fixtures/proc/unix: /proc/net/unix of a namespace with nginx in
    /// front of a blocked uvicorn on /tmp/ux2/app.sock (kernel 6.18): its
    /// listener, the connections it accepted, nginx's ends, and those
    /// waiting in its queue with no inode yet.
    #[test]
    fn proc_net_unix() {
        let all = parse_proc(include_bytes!("../../fixtures/proc/unix"));
        let l: Vec<&UnixSocket> = all.iter().filter(|u| u.state == TcpState::Listen).collect();
        assert_eq!(l.len(), 1, "{all:?}");
        assert_eq!(
            (l[0].path(), l[0].inode),
            (b"/tmp/ux2/app.sock".to_vec(), 184188)
        );
        assert!(all.iter().all(|u| !u.queues && u.peer == 0 && u.inode != 0));
        assert!(
            all.iter()
                .any(|u| u.state == TcpState::Established && u.name.is_empty())
        );
        assert!(parse_proc(b"").is_empty());
        assert!(parse_proc(b"Num RefCount\ngarbage line\n").is_empty());
    }

    #[test]
    fn nginx_upstreams_and_includes() {
        let conf = b"events {}\nhttp {\n  include /etc/nginx/conf.d/*.conf; # the sites\n  upstream app { server unix:/run/app.sock fail_timeout=0; }\n  server { location / { proxy_pass http://unix:/run/b.sock:/api/; } }\n  # proxy_pass http://unix:/run/commented.sock;\n  location /u { uwsgi_pass unix:/run/uwsgi.sock; }\n}\n";
        let (up, inc) = nginx_words(conf);
        assert_eq!(
            up,
            vec![
                b"/run/app.sock".to_vec(),
                b"/run/b.sock".to_vec(),
                b"/run/uwsgi.sock".to_vec()
            ]
        );
        assert_eq!(inc, vec![PathBuf::from("/etc/nginx/conf.d/*.conf")]);
        assert_eq!(
            nginx_conf(
                b"nginx: master process /usr/sbin/nginx -c /tmp/x/nginx.conf -g daemon off;"
            ),
            Some(PathBuf::from("/tmp/x/nginx.conf"))
        );
        assert_eq!(
            nginx_conf(b"nginx: master process /usr/sbin/nginx"),
            Some(PathBuf::from("/etc/nginx/nginx.conf"))
        );
        assert_eq!(nginx_conf(b"nginx: worker process"), None);
    }
}
