//! Owners from the kernel: a BPF task_file iterator (`bpf/owners.bpf.c`,
//! loaded with aya) walks every process's fd table in the kernel and
//! hands back (pid, fd, inode) for each socket descriptor, or only for
//! the wanted inodes on a scan of a few (`--port`). The kernel skips the
//! threads that share their leader's table. Where BPF cannot be used (a
//! build without clang, a kernel without BTF or iterators, no CAP_BPF, a
//! pid namespace other than the kernel's first, `ZOMBIESCAN_OWNERS=proc`)
//! the /proc walk finds the owners, and the report says which path it
//! took. On a host of few descriptors the /proc walk is cheaper, and is
//! taken ([`AUTO_FROM_HANDLES`]).

use crate::model::InodeMap;

/// One socket descriptor: the process (its tgid) and the socket's inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    pub fd: u32,
    pub ino: u64,
}

/// Below this many wanted sockets the kernel filters (their inodes are
/// put in a map); above it every socket comes back and is filtered here.
const FILTER_BELOW: usize = 4096;

/// Parses the iterator's output: 16-byte records, native endian.
pub fn parse(bytes: &[u8]) -> Vec<Record> {
    bytes
        .chunks_exact(16)
        .map(|c| {
            let u32_at = |i: usize| u32::from_ne_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
            let mut ino = [0u8; 8];
            ino.copy_from_slice(&c[8..16]);
            Record {
                pid: u32_at(0),
                fd: u32_at(4),
                ino: u64::from_ne_bytes(ino),
            }
        })
        .collect()
}

/// Where the host holds fewer file handles than this, the /proc walk is
/// cheaper: loading the iterator costs about 90 ms and 36 MiB (parsing the
/// kernel's BTF, 5.4 MB here, and the verifier), the walk about 1.4 µs a
/// descriptor (bench.py at 100,000 connections: 800 ms by /proc, 609 ms by
/// BPF): they meet near 60,000 descriptors.
const AUTO_FROM_HANDLES: u64 = 50_000;

/// Why the owners come from /proc here, or `None` when BPF may be tried:
/// `ZOMBIESCAN_OWNERS` (proc, bpf, or unset: by the host's file handles),
/// and zombiescan in the kernel's first pid namespace (the iterator's pids
/// are that namespace's; `/proc` shows zombiescan's own).
fn not_here() -> Option<String> {
    match std::env::var("ZOMBIESCAN_OWNERS").as_deref() {
        Ok("proc") => return Some("ZOMBIESCAN_OWNERS=proc".into()),
        Ok("bpf") => {}
        _ => {
            let handles = std::fs::read_to_string("/proc/sys/fs/file-nr")
                .ok()
                .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0);
            if handles < AUTO_FROM_HANDLES {
                return Some(format!(
                    "{handles} file handles: the /proc walk is cheaper below {AUTO_FROM_HANDLES}"
                ));
            }
        }
    }
    refused_by(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
}

/// What in `/proc/self/status` keeps BPF from being used: its
/// capabilities, its pid namespace.
fn refused_by(status: &str) -> Option<String> {
    // Loading needs CAP_BPF and CAP_PERFMON, or CAP_SYS_ADMIN: without
    // them, the kernel's BTF would be parsed for nothing.
    let caps = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|c| u64::from_str_radix(c.trim(), 16).ok())
        .unwrap_or(0);
    let (sys_admin, perfmon, bpf) = (1u64 << 21, 1u64 << 38, 1u64 << 39);
    if caps & sys_admin == 0 && caps & (perfmon | bpf) != perfmon | bpf {
        return Some("no CAP_BPF and CAP_PERFMON, nor CAP_SYS_ADMIN".into());
    }
    // "NSpid:\t4242" in the first pid namespace; more pids in a nested one.
    let first = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .is_some_and(|p| p.split_whitespace().count() == 1);
    (!first).then(|| "in a nested pid namespace".into())
}

/// Every socket descriptor of every process, or those of `wanted` (the
/// kernel filters them when they are few); `Err` says why BPF was not
/// used.
pub fn sockets(wanted: &InodeMap<u32>) -> Result<Vec<Record>, String> {
    let mut loaded = Loaded::load()?;
    loaded.run((wanted.len() < FILTER_BELOW).then_some(wanted))
}

/// The iterator, loaded and verified; the kernel's BTF it was relocated
/// against is already freed, so that it does not add to what the scan
/// holds next. Run it as often as wanted.
pub struct Loaded {
    #[cfg(zombiescan_bpf)]
    ebpf: aya::Ebpf,
}

impl Loaded {
    /// Loads it where it may be used here (see `not_here`).
    pub fn load() -> Result<Loaded, String> {
        if let Some(why) = not_here() {
            return Err(why);
        }
        Loaded::load_anyway()
    }

    #[cfg(zombiescan_bpf)]
    fn load_anyway() -> Result<Loaded, String> {
        use aya::programs::Iter;
        use aya::{Btf, EbpfLoader};

        static OBJECT: &[u8] =
            aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/owners.bpf.o"));
        let btf = Btf::from_sys_fs().map_err(|x| err("the kernel's BTF", x))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(OBJECT)
            .map_err(|x| err("loading", x))?;
        let program: &mut Iter = ebpf
            .program_mut("owners")
            .ok_or("no program owners")?
            .try_into()
            .map_err(|x| err("program", x))?;
        program
            .load("task_file", &btf)
            .map_err(|x| err("verifier", x))?;
        Ok(Loaded { ebpf })
    }

    #[cfg(not(zombiescan_bpf))]
    fn load_anyway() -> Result<Loaded, String> {
        Err("built without it (no clang with the BPF target at build time)".into())
    }

    /// One walk: every socket descriptor, or only those of `only`.
    #[cfg(zombiescan_bpf)]
    pub fn run(&mut self, only: Option<&InodeMap<u32>>) -> Result<Vec<Record>, String> {
        use std::io::Read;

        use aya::maps::{Array, HashMap};
        use aya::programs::Iter;

        if let Some(wanted) = only {
            let mut map: HashMap<_, u64, u8> =
                HashMap::try_from(self.ebpf.map_mut("wanted").ok_or("no map wanted")?)
                    .map_err(|x| err("map wanted", x))?;
            for ino in wanted.keys() {
                map.insert(ino, 1, 0).map_err(|x| err("map wanted", x))?;
            }
        }
        let mut filter: Array<_, u32> =
            Array::try_from(self.ebpf.map_mut("filter").ok_or("no map filter")?)
                .map_err(|x| err("map filter", x))?;
        filter
            .set(0, u32::from(only.is_some()), 0)
            .map_err(|x| err("map filter", x))?;
        let program: &mut Iter = self
            .ebpf
            .program_mut("owners")
            .ok_or("no program owners")?
            .try_into()
            .map_err(|x| err("program", x))?;
        let link = program.attach().map_err(|x| err("attach", x))?;
        let link = program.take_link(link).map_err(|x| err("link", x))?;
        let mut file = link.into_file().map_err(|x| err("iterator", x))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|x| err("reading the iterator", x))?;
        let mut records = parse(&bytes);
        if let Some(wanted) = only {
            // The map may hold the inodes of an earlier run too.
            records.retain(|r| wanted.contains_key(&r.ino));
        }
        Ok(records)
    }

    #[cfg(not(zombiescan_bpf))]
    pub fn run(&mut self, _: Option<&InodeMap<u32>>) -> Result<Vec<Record>, String> {
        Err("built without it".into())
    }
}

#[cfg(zombiescan_bpf)]
fn err(what: &str, x: impl std::fmt::Display) -> String {
    format!("{what}: {x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_16_bytes_native_endian() {
        let mut b = Vec::new();
        for (pid, fd, ino) in [(42u32, 3u32, 123_456u64), (7, 9, u64::MAX)] {
            b.extend_from_slice(&pid.to_ne_bytes());
            b.extend_from_slice(&fd.to_ne_bytes());
            b.extend_from_slice(&ino.to_ne_bytes());
        }
        b.extend_from_slice(&[1, 2, 3]); // a torn tail is left out
        assert_eq!(
            parse(&b),
            vec![
                Record {
                    pid: 42,
                    fd: 3,
                    ino: 123_456
                },
                Record {
                    pid: 7,
                    fd: 9,
                    ino: u64::MAX
                },
            ]
        );
    }

    #[test]
    fn capabilities_and_pid_namespace_decide() {
        let status = |caps: &str, nspid: &str| {
            format!("Name:\tzombiescan\nCapEff:\t{caps}\nNSpid:\t{nspid}\n")
        };
        assert_eq!(refused_by(&status("000001ffffffffff", "4242")), None);
        // CAP_BPF and CAP_PERFMON without CAP_SYS_ADMIN.
        assert_eq!(refused_by(&status("000000c000000000", "4242")), None);
        assert!(
            refused_by(&status("0000008000000000", "4242")).is_some(),
            "CAP_BPF alone"
        );
        assert!(refused_by(&status("0000000000000000", "4242")).is_some());
        assert!(
            refused_by(&status("000001ffffffffff", "4242\t7")).is_some(),
            "nested"
        );
    }

    /// As root on a kernel with BTF: the iterator finds a listener this
    /// test holds, by its pid, fd and inode, with and without the filter.
    #[test]
    fn the_iterator_finds_a_socket_this_process_holds() {
        use std::os::fd::AsRawFd;
        if !cfg!(zombiescan_bpf) || !nix::unistd::geteuid().is_root() {
            eprintln!("!!! skipped: needs root and a build with clang");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let fd = l.as_raw_fd() as u32;
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("link");
        let ino: u64 = link
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
            .expect("socket inode");
        let want = Record {
            pid: std::process::id(),
            fd,
            ino,
        };
        let mut wanted = InodeMap::default();
        wanted.insert(ino, 0);
        // This host has few descriptors: asked for, not chosen.
        let mut loaded = Loaded::load_anyway().expect("bpf");
        let some = loaded.run(Some(&wanted)).expect("bpf");
        assert_eq!(some, vec![want]);
        // Run again, loaded once: every socket, one not wanted too.
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let other_fd = other.as_raw_fd() as u32;
        let all = loaded.run(None).expect("bpf");
        assert!(all.contains(&want), "{} records", all.len());
        let mine = |r: &&Record| r.pid == std::process::id() && r.fd == other_fd;
        assert!(all.iter().any(|r| mine(&r)), "the other listener");
        assert!(!some.iter().any(|r| mine(&r)), "filtered out before");
    }
}
