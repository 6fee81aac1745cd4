//! Owners from the kernel: a BPF task_file iterator (`bpf/owners.bpf.c`,
//! loaded here with bpf(2), its four field offsets read from the kernel's
//! BTF by `collect::btf`) walks every process's fd table in the kernel and
//! hands back (pid, fd, inode) for each socket descriptor. It is started
//! on a thread of its own as a scan begins ([`start`]) and runs while the
//! socket table is read: the two are the bulk of a scan, and they take
//! about as long (at 200,000 sockets: 70 ms for the fd tables, 100 ms for
//! a `--port` scan's two dumps). The kernel skips the threads that share
//! their leader's table. Where BPF cannot be used (a build without clang,
//! a kernel without BTF or iterators, no CAP_BPF, a pid namespace other
//! than the kernel's first, `ZOMBIESCAN_OWNERS=proc`) the /proc walk finds
//! the owners, and the report says which path it took. On a host of few
//! descriptors the /proc walk is cheaper, and is taken (below
//! `AUTO_FROM_HANDLES` file handles).

/// One socket descriptor: the process (its tgid) and the socket's inode.
/// Eight bytes: a scan holds one for every socket descriptor of the host
/// while it reads the sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub pid: u32,
    /// A socket's inode number comes from the kernel's 32-bit counter
    /// (`get_next_ino` in fs/inode.c, which `sock_alloc` uses).
    pub ino: u32,
}

/// One socket descriptor with its number: what a walk that remembers each
/// process's fd table (a watch's, the exporter's) learns from the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FdRecord {
    pub pid: u32,
    pub fd: u32,
    pub ino: u32,
}

/// Parses the iterator's output: 16-byte records (tgid, fd, inode), native
/// endian; a torn tail is left out, and so is an inode past 32 bits, which
/// no socket has.
pub fn parse_fds(bytes: &[u8]) -> impl Iterator<Item = FdRecord> + '_ {
    bytes.chunks_exact(16).filter_map(|c| {
        let u32_at = |i: usize| u32::from_ne_bytes([c[i], c[i + 1], c[i + 2], c[i + 3]]);
        let mut ino = [0u8; 8];
        ino.copy_from_slice(&c[8..16]);
        Some(FdRecord {
            pid: u32_at(0),
            fd: u32_at(4),
            ino: u32::try_from(u64::from_ne_bytes(ino)).ok()?,
        })
    })
}

/// [`parse_fds`] without the descriptors' numbers.
pub fn parse(bytes: &[u8]) -> impl Iterator<Item = Record> + '_ {
    parse_fds(bytes).map(|r| Record {
        pid: r.pid,
        ino: r.ino,
    })
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
        _ if forced() => {}
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

/// Whether `ZOMBIESCAN_OWNERS=bpf` asks for the kernel's walk.
pub fn forced() -> bool {
    std::env::var("ZOMBIESCAN_OWNERS").as_deref() == Ok("bpf")
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

/// The kernel's walk, running on a thread of its own.
pub struct Pending(std::thread::JoinHandle<Result<(Loaded, Vec<Record>), String>>);

/// Starts the kernel's walk of every socket descriptor, where it may be
/// used here (see `not_here`).
pub fn start() -> Pending {
    Pending(std::thread::spawn(|| {
        let mut loaded = Loaded::load()?;
        let records = loaded.run()?;
        Ok((loaded, records))
    }))
}

impl Pending {
    /// Every socket descriptor of every process, and the iterator, loaded,
    /// to walk again; `Err` says why BPF was not used.
    pub fn wait(self) -> Result<(Loaded, Vec<Record>), String> {
        self.0
            .join()
            .unwrap_or_else(|_| Err("the walk's thread panicked".into()))
    }
}

/// The iterator, loaded and verified; run it as often as wanted. Nothing
/// of the kernel's BTF is held: the layout read from it is written into
/// the instructions.
#[derive(Debug)]
pub struct Loaded {
    #[cfg(zombiescan_bpf)]
    program: std::os::fd::OwnedFd,
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
    pub(super) fn load_anyway() -> Result<Loaded, String> {
        let layout = super::btf::kernel()?;
        let program = sys::prog_load(&program(&layout)?, layout.iter_task_file)?;
        Ok(Loaded { program })
    }

    #[cfg(not(zombiescan_bpf))]
    pub(super) fn load_anyway() -> Result<Loaded, String> {
        Err("built without it (no clang with the BPF target at build time)".into())
    }

    /// One walk: every socket descriptor of every process, sorted by
    /// inode (where [`start`] runs it, on the walk's own thread, while
    /// the sockets are read).
    pub fn run(&mut self) -> Result<Vec<Record>, String> {
        self.run_where(|_| true)
    }

    /// One walk, keeping the records `keep` wants as they are read,
    /// sorted by inode, then pid.
    pub fn run_where(&mut self, keep: impl Fn(&Record) -> bool) -> Result<Vec<Record>, String> {
        let mut records = Vec::new();
        self.stream(|bytes| records.extend(parse(bytes).filter(|r| keep(r))))?;
        records.sort_unstable_by_key(|r| (r.ino, r.pid));
        Ok(records)
    }

    /// One walk with the descriptors' numbers, sorted by pid, then fd.
    pub fn run_fds(&mut self) -> Result<Vec<FdRecord>, String> {
        let mut records = Vec::new();
        self.stream(|bytes| records.extend(parse_fds(bytes)))?;
        records.sort_unstable_by_key(|r| (r.pid, r.fd));
        Ok(records)
    }

    /// Runs the iterator, handing its output to `each` in whole records.
    #[cfg(zombiescan_bpf)]
    fn stream(&mut self, mut each: impl FnMut(&[u8])) -> Result<(), String> {
        use std::io::Read;

        let link = sys::link_create(&self.program).map_err(|e| format!("attach: {e}"))?;
        let mut file =
            std::fs::File::from(sys::iter_create(&link).map_err(|e| format!("iterator: {e}"))?);
        // Parsed as it is read: the records, never their bytes as well.
        let mut buf = vec![0u8; 64 * 1024];
        let mut have = 0;
        loop {
            match file.read(&mut buf[have..]) {
                Ok(0) => break,
                Ok(n) => have += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("reading the iterator: {e}")),
            }
            let whole = have - have % 16;
            each(&buf[..whole]);
            buf.copy_within(whole..have, 0);
            have -= whole;
        }
        Ok(())
    }

    #[cfg(not(zombiescan_bpf))]
    fn stream(&mut self, _each: impl FnMut(&[u8])) -> Result<(), String> {
        Err("built without it".into())
    }
}

/// The program's instructions (built from bpf/owners.bpf.c by build.rs),
/// with the kernel's offsets in place of the placeholders.
#[cfg(zombiescan_bpf)]
fn program(layout: &super::btf::Layout) -> Result<Vec<u64>, String> {
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
    Ok(insns)
}

/// The bpf(2) commands the loader uses, their attributes laid out as
/// include/uapi/linux/bpf.h's `union bpf_attr`.
#[cfg(zombiescan_bpf)]
mod sys {
    use std::io::Error;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

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
        for (pid, fd, ino) in [(42u32, 3u32, 123_456u64), (7, 9, u64::MAX), (8, 1, 9)] {
            b.extend_from_slice(&pid.to_ne_bytes());
            b.extend_from_slice(&fd.to_ne_bytes());
            b.extend_from_slice(&ino.to_ne_bytes());
        }
        b.extend_from_slice(&[1, 2, 3]); // a torn tail is left out
        assert_eq!(
            parse(&b).collect::<Vec<_>>(),
            vec![
                Record {
                    pid: 42,
                    ino: 123_456
                },
                Record { pid: 8, ino: 9 },
            ],
            "no socket's inode is past 32 bits"
        );
        let with_fds: Vec<(u32, u32, u32)> = parse_fds(&b).map(|r| (r.pid, r.fd, r.ino)).collect();
        assert_eq!(with_fds, vec![(42, 3, 123_456), (8, 1, 9)]);
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

    /// The inode of a socket this process holds at `fd`.
    fn inode_at(fd: u32) -> u32 {
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("link");
        link.to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse().ok())
            .expect("socket inode")
    }

    /// As root on a kernel with BTF: the iterator finds a listener this
    /// test holds, by its pid and inode; run again, loaded once, one
    /// opened since too; and started on a thread, both.
    #[test]
    fn the_iterator_finds_a_socket_this_process_holds() {
        use std::os::fd::AsRawFd;
        if !cfg!(zombiescan_bpf) || !nix::unistd::geteuid().is_root() {
            eprintln!("!!! skipped: needs root and a build with clang");
            return;
        }
        let record = |l: &std::net::TcpListener| Record {
            pid: std::process::id(),
            ino: inode_at(l.as_raw_fd() as u32),
        };
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        // This host has few descriptors: asked for, not chosen.
        let mut loaded = Loaded::load_anyway().expect("bpf");
        let first = loaded.run().expect("bpf");
        assert!(first.contains(&record(&l)), "{} records", first.len());
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        assert!(!first.contains(&record(&other)));
        let again = loaded.run().expect("bpf");
        assert!(again.contains(&record(&l)) && again.contains(&record(&other)));
        // A file that is not a socket is not written.
        use std::os::unix::fs::MetadataExt;
        let null = std::fs::metadata("/dev/null").expect("null").ino();
        let _open = std::fs::File::open("/dev/null").expect("null");
        let mine = |r: &&Record| r.pid == std::process::id() && u64::from(r.ino) == null;
        assert!(!loaded.run().expect("bpf").iter().any(|r| mine(&r)));
        let started = Pending(std::thread::spawn(|| {
            let mut loaded = Loaded::load_anyway()?;
            let records = loaded.run()?;
            Ok((loaded, records))
        }));
        let (_, got) = started.wait().expect("bpf");
        assert!(got.contains(&record(&l)) && got.contains(&record(&other)));
    }

    /// A watch's first walk is the kernel's: it finds this test's sockets
    /// and remembers each with its descriptor, as a walk of /proc would;
    /// the next walk finds them from what it remembers, and a socket
    /// opened since by reading the table that changed.
    #[test]
    fn a_watchs_full_walk_by_the_kernel_remembers_the_sockets() {
        use super::super::procs::{Memory, Select, walk};
        use crate::model::InodeMap;
        use std::os::fd::AsRawFd;
        if !cfg!(zombiescan_bpf) || !nix::unistd::geteuid().is_root() {
            eprintln!("!!! skipped: needs root and a build with clang");
            return;
        }
        let me = std::process::id();
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let c = std::net::TcpStream::connect(l.local_addr().expect("addr")).expect("connect");
        let (a, _) = l.accept().expect("accept");
        let fds = [l.as_raw_fd(), c.as_raw_fd(), a.as_raw_fd()].map(|fd| fd as u32);
        let mut wanted: InodeMap<u32> = InodeMap::default();
        for (i, fd) in fds.iter().enumerate() {
            wanted.insert(u64::from(inode_at(*fd)), i as u32);
        }
        let mut memory = Memory::with_kernel(Loaded::load_anyway().expect("bpf"));
        let proc = std::path::Path::new("/proc");
        let all = Select::default();
        let mine = |w: &super::super::procs::Walk| {
            let mut h: Vec<u32> = w
                .hits
                .iter()
                .filter(|(_, p)| *p == me)
                .map(|(i, _)| *i)
                .collect();
            h.sort_unstable();
            h
        };
        let first = walk(proc, &wanted, &all, Some(&mut memory));
        assert!(first.from_kernel);
        assert_eq!(mine(&first), vec![0, 1, 2]);
        assert!(first.processes.contains_key(&me));
        let mut remembered = memory.sockets_of(me);
        remembered.sort_unstable();
        let mut expected: Vec<(u32, u64)> = fds
            .iter()
            .map(|&fd| (fd, u64::from(inode_at(fd))))
            .collect();
        expected.sort_unstable();
        assert_eq!(remembered, expected);
        let next = walk(proc, &wanted, &all, Some(&mut memory));
        assert!(!next.from_kernel, "from what it remembers");
        assert_eq!(mine(&next), vec![0, 1, 2]);
        let l2 = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        wanted.insert(u64::from(inode_at(l2.as_raw_fd() as u32)), 3);
        let after = walk(proc, &wanted, &all, Some(&mut memory));
        assert_eq!(mine(&after), vec![0, 1, 2, 3]);
    }

    /// A socket the walk beside the dump did not see (opened after it
    /// passed its process: here, no record at all) is found by a second.
    #[test]
    fn a_socket_the_first_walk_missed_is_found_by_a_second() {
        use std::os::fd::AsRawFd;
        if !cfg!(zombiescan_bpf) || !nix::unistd::geteuid().is_root() {
            eprintln!("!!! skipped: needs root and a build with clang");
            return;
        }
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        // The listener is the eighth socket of the scan.
        let inodes = std::iter::repeat_n(0, 7).chain([u64::from(inode_at(l.as_raw_fd() as u32))]);
        let loaded = Loaded::load_anyway().expect("bpf");
        let (w, owners) = super::super::procs::walk_kernel(
            std::path::Path::new("/proc"),
            inodes,
            &super::super::procs::Select::default(),
            (loaded, Vec::new()),
        );
        let ino = u64::from(inode_at(l.as_raw_fd() as u32));
        assert_eq!(owners.of(ino).collect::<Vec<_>>(), vec![std::process::id()]);
        assert!(w.processes.contains_key(&std::process::id()));
    }
}
