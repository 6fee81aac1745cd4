//! Owners from the kernel: a BPF task_file iterator (`bpf/owners.bpf.c`,
//! loaded here with bpf(2), its four field offsets read from the kernel's
//! BTF by [`super::btf`]) walks every process's fd table in the kernel and
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
/// cheaper: loading the iterator costs about 4 ms (streaming the kernel's
/// BTF, 5.4 MB here, 4 KiB a read, and the verifier), the walk about 3 µs
/// a descriptor on one core. Measured: 578 handles, 9 ms by BPF and 5 ms
/// by /proc for a whole scan; 6,446 handles, 10 ms and 24 ms.
const AUTO_FROM_HANDLES: u64 = 2_000;

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

/// The socket descriptors of the `wanted` inodes, in every process (the
/// kernel filters them when they are few); `Err` says why BPF was not
/// used.
pub fn sockets(wanted: &InodeMap<u32>) -> Result<Vec<Record>, String> {
    let mut loaded = Loaded::load()?;
    loaded.run(Some(wanted))
}

/// The iterator, loaded and verified, and its map; run it as often as
/// wanted. Nothing of the kernel's BTF is held: the layout read from it
/// is written into the instructions.
pub struct Loaded {
    #[cfg(zombiescan_bpf)]
    program: std::os::fd::OwnedFd,
    #[cfg(zombiescan_bpf)]
    wanted: std::os::fd::OwnedFd,
    /// The inodes in `wanted` (key 0 aside), left by the last run.
    #[cfg(zombiescan_bpf)]
    in_map: Vec<u64>,
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
        let layout = super::btf::kernel()?;
        let wanted = sys::map_create(sys::MAP_HASH, 8, 1, WANTED_MAX, sys::F_NO_PREALLOC)
            .map_err(|e| format!("creating its map: {e}"))?;
        let insns = program(&layout, std::os::fd::AsRawFd::as_raw_fd(&wanted))?;
        let program = sys::prog_load(&insns, layout.iter_task_file)?;
        Ok(Loaded {
            program,
            wanted,
            in_map: Vec::new(),
        })
    }

    #[cfg(not(zombiescan_bpf))]
    fn load_anyway() -> Result<Loaded, String> {
        Err("built without it (no clang with the BPF target at build time)".into())
    }

    /// One walk: every socket descriptor, or only those of `only` (the
    /// kernel filters them when they are fewer than [`FILTER_BELOW`]).
    #[cfg(zombiescan_bpf)]
    pub fn run(&mut self, only: Option<&InodeMap<u32>>) -> Result<Vec<Record>, String> {
        use std::io::Read;

        let map = |e: std::io::Error| format!("its map: {e}");
        // The last run's inodes leave, this one's come in; key 0 (no
        // socket's inode) turns the filter on.
        let in_kernel = only.filter(|w| w.len() < FILTER_BELOW);
        let keep = |ino: &u64| in_kernel.is_some_and(|w| w.contains_key(ino));
        for ino in std::mem::take(&mut self.in_map) {
            if !keep(&ino) {
                sys::map_delete(&self.wanted, ino).map_err(map)?;
            }
        }
        match in_kernel {
            Some(wanted) => {
                for ino in wanted.keys().chain([&0]) {
                    sys::map_update(&self.wanted, *ino).map_err(map)?;
                }
                self.in_map = wanted.keys().copied().collect();
            }
            None => sys::map_delete(&self.wanted, 0).map_err(map)?,
        }
        let link = sys::link_create(&self.program).map_err(|e| format!("attach: {e}"))?;
        let mut file =
            std::fs::File::from(sys::iter_create(&link).map_err(|e| format!("iterator: {e}"))?);
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("reading the iterator: {e}"))?;
        let mut records = parse(&bytes);
        if let (Some(wanted), None) = (only, in_kernel) {
            records.retain(|r| wanted.contains_key(&r.ino));
        }
        Ok(records)
    }

    #[cfg(not(zombiescan_bpf))]
    pub fn run(&mut self, _: Option<&InodeMap<u32>>) -> Result<Vec<Record>, String> {
        Err("built without it".into())
    }
}

/// The most inodes the kernel filters: [`FILTER_BELOW`], and key 0.
#[cfg(zombiescan_bpf)]
const WANTED_MAX: u32 = FILTER_BELOW as u32 + 1;

/// The program's instructions (built from bpf/owners.bpf.c by build.rs),
/// with the kernel's offsets in place of the placeholders and the map's
/// descriptor in its loads.
#[cfg(zombiescan_bpf)]
fn program(layout: &super::btf::Layout, map: i32) -> Result<Vec<u64>, String> {
    mod object {
        include!(concat!(env!("OUT_DIR"), "/owners.rs"));
    }
    static CODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/owners.insns"));
    let fields = [
        (0x7ff1, layout.tgid),
        (0x7ff2, layout.f_inode),
        (0x7ff3, layout.i_mode),
        (0x7ff4, layout.i_ino),
    ];
    let mut insns: Vec<u64> = CODE
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
        .collect();
    for insn in &mut insns {
        // A load (class LDX) at a placeholder offset (bits 16..32).
        let off = (*insn >> 16) as u16;
        if *insn & 7 != 1 {
            continue;
        }
        if let Some((_, real)) = fields.iter().find(|(p, _)| *p == off) {
            let real = u16::try_from(*real)
                .ok()
                .filter(|r| *r < 0x7ff0)
                .ok_or(format!("a field at offset {real}, beyond a load's reach"))?;
            *insn = *insn & !(0xffff << 16) | u64::from(real) << 16;
        }
    }
    for &at in object::WANTED_AT {
        // ld_imm64 of a map: src_reg BPF_PSEUDO_MAP_FD (1), imm the fd.
        let insn = &mut insns[at];
        *insn = *insn & 0x0f00 | 0x18 | 1 << 12 | u64::from(map as u32) << 32;
    }
    Ok(insns)
}

/// The bpf(2) commands the loader uses, their attributes laid out as
/// include/uapi/linux/bpf.h's `union bpf_attr`.
#[cfg(zombiescan_bpf)]
mod sys {
    use std::io::Error;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    pub const MAP_HASH: u32 = 1;
    pub const F_NO_PREALLOC: u32 = 1;
    const MAP_CREATE: i64 = 0;
    const MAP_UPDATE_ELEM: i64 = 2;
    const MAP_DELETE_ELEM: i64 = 3;
    const PROG_LOAD: i64 = 5;
    const LINK_CREATE: i64 = 28;
    const ITER_CREATE: i64 = 33;
    const PROG_TYPE_TRACING: u32 = 26;
    const TRACE_ITER: u32 = 28;

    /// `union bpf_attr`, as far as these commands fill it.
    #[repr(C, align(8))]
    struct Attr([u8; 128]);

    impl Attr {
        fn new() -> Attr {
            Attr([0; 128])
        }
        fn u32(mut self, at: usize, v: u32) -> Attr {
            self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            self
        }
        fn u64(mut self, at: usize, v: u64) -> Attr {
            self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
            self
        }
    }

    fn bpf(cmd: i64, attr: &mut Attr) -> Result<i64, Error> {
        // SAFETY: attr is a 128-byte buffer laid out as the kernel's
        // bpf_attr; every pointer in it is to memory alive for the call.
        let r = unsafe {
            nix::libc::syscall(
                nix::libc::SYS_bpf,
                cmd,
                attr.0.as_mut_ptr(),
                attr.0.len() as u32,
            )
        };
        if r < 0 {
            Err(Error::last_os_error())
        } else {
            Ok(r)
        }
    }

    fn fd(cmd: i64, attr: &mut Attr) -> Result<OwnedFd, Error> {
        let fd = bpf(cmd, attr)?;
        // SAFETY: the kernel returned a new descriptor, owned from here.
        Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
    }

    pub fn map_create(
        kind: u32,
        key: u32,
        value: u32,
        max: u32,
        flags: u32,
    ) -> Result<OwnedFd, Error> {
        let mut a = Attr::new()
            .u32(0, kind)
            .u32(4, key)
            .u32(8, value)
            .u32(12, max)
            .u32(16, flags);
        a.0[28..28 + 7].copy_from_slice(b"wanted\0");
        fd(MAP_CREATE, &mut a)
    }

    pub fn map_update(map: &OwnedFd, key: u64) -> Result<(), Error> {
        let one = 1u8;
        let mut a = Attr::new()
            .u32(0, map.as_raw_fd() as u32)
            .u64(8, &key as *const u64 as u64)
            .u64(16, &one as *const u8 as u64);
        bpf(MAP_UPDATE_ELEM, &mut a).map(drop)
    }

    /// Removes `key`; one that is not there is no error.
    pub fn map_delete(map: &OwnedFd, key: u64) -> Result<(), Error> {
        let mut a = Attr::new()
            .u32(0, map.as_raw_fd() as u32)
            .u64(8, &key as *const u64 as u64);
        match bpf(MAP_DELETE_ELEM, &mut a) {
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOENT) => Ok(()),
            r => r.map(drop),
        }
    }

    /// Loads the iterator program; a refusal says the verifier's last
    /// words.
    pub fn prog_load(insns: &[u64], attach_btf_id: u32) -> Result<OwnedFd, String> {
        let license = b"GPL\0";
        let attr = |log: &mut [u8], level: u32| {
            let mut a = Attr::new()
                .u32(0, PROG_TYPE_TRACING)
                .u32(4, insns.len() as u32)
                .u64(8, insns.as_ptr() as u64)
                .u64(16, license.as_ptr() as u64)
                .u32(24, level)
                .u32(28, log.len() as u32)
                .u64(
                    32,
                    if log.is_empty() {
                        0
                    } else {
                        log.as_mut_ptr() as u64
                    },
                )
                .u32(68, TRACE_ITER)
                .u32(108, attach_btf_id);
            a.0[48..48 + 7].copy_from_slice(b"owners\0");
            a
        };
        match fd(PROG_LOAD, &mut attr(&mut [], 0)) {
            Ok(fd) => Ok(fd),
            Err(e) => {
                // Again with the verifier's log, to say why.
                let mut log = vec![0u8; 64 * 1024];
                let _ = fd(PROG_LOAD, &mut attr(&mut log, 1));
                let text = String::from_utf8_lossy(&log);
                let last = text
                    .trim_end_matches('\0')
                    .lines()
                    .rfind(|l| !l.trim().is_empty())
                    .unwrap_or("")
                    .to_string();
                Err(format!(
                    "verifier: {e}{}",
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ))
            }
        }
    }

    pub fn link_create(program: &OwnedFd) -> Result<OwnedFd, Error> {
        let mut a = Attr::new()
            .u32(0, program.as_raw_fd() as u32)
            .u32(8, TRACE_ITER);
        fd(LINK_CREATE, &mut a)
    }

    pub fn iter_create(link: &OwnedFd) -> Result<OwnedFd, Error> {
        let mut a = Attr::new().u32(0, link.as_raw_fd() as u32);
        fd(ITER_CREATE, &mut a)
    }
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
        // Filtered again, on the other one only: the first left the map.
        let link = std::fs::read_link(format!("/proc/self/fd/{other_fd}")).expect("link");
        let other_ino: u64 = link
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
            .expect("socket inode");
        let mut wanted = InodeMap::default();
        wanted.insert(other_ino, 0);
        let then = loaded.run(Some(&wanted)).expect("bpf");
        assert_eq!(
            then,
            vec![Record {
                pid: std::process::id(),
                fd: other_fd,
                ino: other_ino
            }]
        );
    }
}
