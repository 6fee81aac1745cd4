//! A snapshot: what one scan saw, and what it is built from.

use super::*;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub captured_at: SystemTime,
    pub source: Source,
    pub filter: Filter,
    pub sockets: Vec<Socket>,
    /// The healthy connections of a scan that lists only flagged sockets,
    /// counted but not kept (see [`Folded`]); empty for every other scan,
    /// and never in a capture.
    #[serde(skip)]
    pub folded: Folded,
    /// Every pid holding a socket that several processes hold (forked
    /// workers share listening and accepted sockets), by inode. A socket
    /// with one owner has it in `Socket::owner` only.
    pub shared: InodeMap<Vec<u32>>,
    /// The processes that hold at least one socket in `sockets`.
    pub processes: BTreeMap<u32, Process>,
    /// False with `--no-processes`: owners were not looked up.
    pub owners_walked: bool,
    /// Where the owners came from: the kernel's walk (BPF) or /proc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owners_from: Option<OwnersFrom>,
    /// The network namespace scanned.
    pub netns: Netns,
    pub host: Host,
    pub gaps: Gaps,
    /// Where to look instead, when the answer is in another namespace.
    pub hints: Vec<Hint>,
    /// With a port filter: this namespace's LISTEN, CLOSE_WAIT, FIN_WAIT2
    /// and SYN_SENT sockets on other ports, where the trouble behind the
    /// scanned port may be (an upstream that stopped answering).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub neighbours: Vec<Socket>,
    /// Scanned ports of this namespace that a forwarder (docker-proxy) or
    /// NAT sends to a listener in another namespace of the same scan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forwarded: Vec<Forwarded>,
    /// Unix-domain stream and seqpacket sockets: all of them, or with
    /// `--port` those behind the port (see `unix_links`), with `--path`
    /// those of that name and their peers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unix: Vec<UnixSocket>,
    /// The unix listeners a `--port` scan followed from the port's owners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unix_links: Vec<UnixLink>,
    /// For the processes a finding blames: their connections elsewhere
    /// that sent something and have received nothing since, and what their
    /// threads are blocked in. Looked up only when a finding blames them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiting>,
}

/// A blamed process's connection elsewhere, with a request outstanding:
/// data sent after the last data received.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub pid: u32,
    /// Its descriptor for the socket.
    pub fd: u32,
    pub socket: Socket,
    /// A thread of the process blocked on that descriptor, or (when none
    /// is) its main thread's blocking call.
    pub thread: Option<Blocked>,
}

/// What a thread is blocked in, from `/proc/PID/task/TID/syscall` and
/// `wchan`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocked {
    pub tid: u32,
    /// The system call's name (`recvfrom`, `poll`, `futex`,
    /// `clock_nanosleep`), or its number where zombiescan has no name.
    pub syscall: String,
    /// The descriptors it waits on, where the call names them (read,
    /// recvfrom, poll's array).
    pub fds: Vec<u32>,
    /// The kernel function it sleeps in.
    pub wchan: String,
}

/// Where else to look, as the collector found it; `classify` words it.
/// Untagged on the wire: a capture of an earlier version holds words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Hint {
    /// A scanned port followed to where it is served: that namespace's
    /// report comes first.
    Followed(Forwarded),
    /// docker-proxy forwards a scanned host port to a container port.
    Proxied {
        proxy_pid: u32,
        host_port: u16,
        container_ip: Option<IpAddr>,
        container_port: u16,
    },
    /// A server listens on these ports in another namespace; `enter` is
    /// what `--netns` takes to scan it.
    ListensIn {
        ports: Vec<u16>,
        netns: String,
        enter: String,
        /// The fullest of its listeners' accept queues there, and that
        /// listener's backlog (0: not known): which of several is in
        /// trouble.
        #[serde(default)]
        queue: u32,
        #[serde(default)]
        backlog: u32,
    },
    /// Nothing listens on the ports here, nor in any namespace looked
    /// into; `unentered` could not be looked into.
    NothingListens {
        ports: Vec<u16>,
        unentered: Vec<String>,
        as_root: bool,
    },
    /// A hint in words, from a capture of an earlier version.
    Text(String),
}

/// Where a port of this namespace is served: a listener in another
/// namespace, and its accept queue there at the time of the scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarded {
    pub port: u16,
    /// The listener's address as the forwarder connects to it (the
    /// container's address), or the listener's own when not known.
    pub to: SocketAddr,
    /// The forwarder's pid: none when NAT rules forward the port.
    pub by: Option<u32>,
    /// The label of the namespace it is served in.
    pub netns: String,
    pub queue: u32,
    pub backlog: u32,
}

/// The healthy ESTABLISHED connections of a scan that lists only flagged
/// sockets (a one-shot scan's, the exporter's, a recorder's): nothing a finding reads
/// (empty queues, no timer but an unfired keepalive, not idle past
/// `--idle`), so only what the counts need is kept of them: 12 bytes a
/// socket, against a [`Socket`]'s 88.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Folded {
    /// What the sockets of each group share.
    pub groups: Vec<FoldGroup>,
    pub sockets: Vec<FoldedSocket>,
}

/// Folded sockets alike in everything the report counts them by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldGroup {
    pub family: Family,
    pub direction: Direction,
    /// Inbound: the local port; outbound: the remote one.
    pub port: u16,
    /// Outbound only: the local address and the remote one.
    pub local: Option<IpAddr>,
    pub remote: Option<IpAddr>,
    /// Outbound from a local port of the ephemeral range: one of the
    /// ports a destination can run out of.
    pub ephemeral: bool,
}

/// Hashed in five words (the small fields, then each address as 128 bits),
/// where the derived hash writes each field and each address's octets
/// apart: a group is looked up once a folded socket.
impl std::hash::Hash for FoldGroup {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        fn bits(a: Option<IpAddr>) -> u128 {
            match a {
                None => 0,
                Some(IpAddr::V4(v)) => u128::from(u32::from(v)),
                Some(IpAddr::V6(v)) => u128::from(v),
            }
        }
        let small = u64::from(self.port)
            | (self.family as u64) << 16
            | (self.direction as u64) << 17
            | u64::from(self.ephemeral) << 18
            | u64::from(self.local.is_some()) << 19
            | u64::from(self.remote.is_some()) << 20;
        h.write_u64(small);
        for a in [bits(self.local), bits(self.remote)] {
            h.write_u64(a as u64);
            h.write_u64((a >> 64) as u64);
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FoldedSocket {
    pub inode: u32,
    /// Index in [`Folded::groups`].
    pub group: u32,
    /// As [`Socket::owner`].
    pub owner: u32,
}

impl Folded {
    /// Counts the socket of `inode` in group `g` (`index` finds the groups
    /// already made).
    pub fn add(&mut self, index: &mut FastMap<FoldGroup, u32>, g: FoldGroup, inode: u32) {
        let group = *index.entry(g).or_insert_with(|| {
            self.groups.push(g);
            (self.groups.len() - 1) as u32
        });
        self.sockets.push(FoldedSocket {
            inode,
            group,
            owner: 0,
        });
    }

    /// Each folded socket with its group.
    pub fn iter(&self) -> impl Iterator<Item = (&FoldedSocket, &FoldGroup)> + '_ {
        self.sockets
            .iter()
            .filter_map(|f| Some((f, self.groups.get(f.group as usize)?)))
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }
}

impl Snapshot {
    /// TCP sockets scanned: those kept and those folded.
    pub fn tcp_count(&self) -> usize {
        self.sockets.len() + self.folded.sockets.len()
    }

    /// Every pid holding folded socket `f`.
    pub fn folded_owners<'s>(&'s self, f: &'s FoldedSocket) -> &'s [u32] {
        self.owners_by(u64::from(f.inode), &f.owner)
    }

    /// For each group of [`Folded::groups`] (the ones `wanted` wants), its
    /// folded sockets counted and the pids holding them; `each` is told
    /// of every socket counted, with its owners. A group is then counted
    /// once, not once a socket.
    pub fn folded_by_group(
        &self,
        wanted: impl Fn(&FoldGroup) -> bool,
        mut each: impl FnMut(&[u32]),
    ) -> Vec<(u32, Vec<u32>)> {
        let wanted: Vec<bool> = self.folded.groups.iter().map(wanted).collect();
        let mut groups = vec![(0u32, Vec::new()); self.folded.groups.len()];
        for f in &self.folded.sockets {
            let g = f.group as usize;
            let Some((n, pids)) = groups.get_mut(g).filter(|_| wanted[g]) else {
                continue;
            };
            *n += 1;
            let owners = self.folded_owners(f);
            for &pid in owners {
                if !pids.contains(&pid) {
                    pids.push(pid);
                }
            }
            each(owners);
        }
        groups
    }

    /// Local ports with a LISTEN socket.
    pub fn listening_ports(&self) -> BTreeSet<u16> {
        self.sockets
            .iter()
            .filter(|s| s.state == TcpState::Listen)
            .map(|s| s.local.port())
            .collect()
    }

    /// Every pid holding `s`, a socket of this snapshot.
    pub fn owners_of<'s>(&'s self, s: &'s Socket) -> &'s [u32] {
        self.owners_by(s.inode, &s.owner)
    }

    /// The processes holding a unix socket.
    pub fn unix_owners<'s>(&'s self, u: &'s UnixSocket) -> &'s [u32] {
        self.owners_by(u.inode, &u.owner)
    }

    fn owners_by<'s>(&'s self, inode: u64, owner: &'s u32) -> &'s [u32] {
        if inode == 0 {
            return &[];
        }
        match self.shared.get(&inode) {
            Some(pids) => pids,
            None if *owner != 0 => std::slice::from_ref(owner),
            None => &[],
        }
    }

    /// Narrows a snapshot taken with a wider filter (a capture) to what
    /// `filter` selects, as a scan with that filter would have: the
    /// sockets, the owners among the selected processes, and the
    /// processes that hold what is left.
    pub fn narrow(&mut self, filter: &Filter) {
        let by_owner = !filter.pids.is_empty() || !filter.processes.is_empty();
        let selected = |p: &Process| {
            (filter.pids.is_empty() || filter.pids.contains(&p.pid))
                && (filter.processes.is_empty()
                    || filter
                        .processes
                        .iter()
                        .any(|n| name_matches(n, &p.comm, &p.cmdline)))
        };
        let chosen: BTreeSet<u32> = self
            .processes
            .values()
            .filter(|p| selected(p))
            .map(|p| p.pid)
            .collect();
        if by_owner {
            for pids in self.shared.values_mut() {
                pids.retain(|p| chosen.contains(p));
            }
            for s in &mut self.sockets {
                let first = match self.shared.get(&s.inode) {
                    Some(pids) => pids.first().copied().unwrap_or(0),
                    None if chosen.contains(&s.owner) => s.owner,
                    None => 0,
                };
                s.owner = first;
            }
            for u in &mut self.unix {
                u.owner = match self.shared.get(&u.inode) {
                    Some(pids) => pids.first().copied().unwrap_or(0),
                    None if chosen.contains(&u.owner) => u.owner,
                    None => 0,
                };
            }
        }
        if filter.unix_only() {
            self.sockets.clear();
        }
        self.sockets.retain(|s| {
            filter.matches_ports(s) && filter.matches_state(s) && (!by_owner || s.owner != 0)
        });
        // Unix sockets as the scan would have kept them: of the names asked
        // for, or behind the ports asked for, with their client ends.
        if !filter.paths.is_empty() || !filter.ports.is_empty() {
            let names: BTreeSet<&[u8]> = self
                .unix
                .iter()
                .filter(|u| filter.paths.iter().any(|p| u.named(p)))
                .map(|u| u.name.as_slice())
                .chain(
                    self.unix_links
                        .iter()
                        .filter(|l| filter.ports.contains(&l.port))
                        .map(|l| l.name.as_slice()),
                )
                .collect();
            let ends: BTreeSet<u64> = self
                .unix
                .iter()
                .filter(|u| names.contains(u.name.as_slice()))
                .flat_map(|u| std::iter::once(u.inode).chain(u.pending.iter().copied()))
                .collect();
            let keep: Vec<bool> = self
                .unix
                .iter()
                .map(|u| {
                    names.contains(u.name.as_slice())
                        || ends.contains(&u.inode)
                        || (u.peer != 0 && ends.contains(&u.peer))
                })
                .collect();
            let mut k = keep.iter();
            self.unix.retain(|_| k.next().copied().unwrap_or(false));
            self.unix_links.retain(|l| filter.ports.contains(&l.port));
        }
        self.unix.retain(|u| {
            (filter.states.is_empty() || filter.states.contains(&u.state))
                && (!by_owner || u.owner != 0)
        });
        let inodes: BTreeSet<u64> = self
            .sockets
            .iter()
            .map(|s| s.inode)
            .chain(self.unix.iter().map(|u| u.inode))
            .collect();
        self.shared
            .retain(|i, pids| inodes.contains(i) && pids.len() > 1);
        let mut held = BTreeSet::new();
        for s in &self.sockets {
            held.extend(self.owners_of(s).iter().copied());
        }
        for u in &self.unix {
            held.extend(self.unix_owners(u).iter().copied());
        }
        self.processes.retain(|pid, _| held.contains(pid));
        self.filter = filter.clone();
    }

    /// Records that `pid` holds the socket at `index`.
    pub fn add_owner(&mut self, index: usize, pid: u32) {
        if let Some(s) = self.sockets.get_mut(index) {
            add_owner(&mut self.shared, s.inode, &mut s.owner, pid);
        }
    }

    /// Records that `pid` holds folded socket `index`.
    pub fn add_folded_owner(&mut self, index: usize, pid: u32) {
        if let Some(f) = self.folded.sockets.get_mut(index) {
            add_owner(&mut self.shared, u64::from(f.inode), &mut f.owner, pid);
        }
    }

    /// Records that `pid` holds unix socket `index`.
    pub fn add_unix_owner(&mut self, index: usize, pid: u32) {
        if let Some(u) = self.unix.get_mut(index) {
            add_owner(&mut self.shared, u.inode, &mut u.owner, pid);
        }
    }
}

fn add_owner(shared: &mut InodeMap<Vec<u32>>, inode: u64, owner: &mut u32, pid: u32) {
    if *owner == 0 {
        *owner = pid;
    } else if *owner != pid {
        let first = *owner;
        let pids = shared.entry(inode).or_insert_with(|| vec![first]);
        if !pids.contains(&pid) {
            pids.push(pid);
            pids.sort_unstable();
        }
    }
}

/// What the kernel did with one socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destroyed {
    Destroyed,
    /// No such socket any more (ENOENT): it closed since the scan, or its
    /// cookie no longer matches.
    AlreadyGone,
    /// The kernel refused, with the reason in words.
    Refused(String),
}

/// Which walk found the owners of the sockets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnersFrom {
    /// The kernel's: a BPF task_file iterator.
    Bpf,
    /// zombiescan's own, through /proc/PID/fd.
    Proc,
}

impl OwnersFrom {
    pub fn name(self) -> &'static str {
        match self {
            OwnersFrom::Bpf => "bpf",
            OwnersFrom::Proc => "proc",
        }
    }
}
