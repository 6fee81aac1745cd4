//! Snapshots built by hand for the rules' edge cases. The live tests in
//! `tests/zombiescan/findings.rs` build the same pathologies for real.

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::model::{
    Family, Filter, Gaps, Host, InodeMap, Netns, Process, Snapshot, Socket, Source, TcpInfo,
    TcpState, Timer, TimerKind,
};

/// A socket with tcp_info, everything recent: no rule fires on it.
pub fn sock(state: TcpState, local: &str, remote: &str, inode: u64) -> Socket {
    Socket {
        family: Family::Ipv4,
        state,
        local: local.parse().expect("addr"),
        remote: remote.parse().expect("addr"),
        recv_q: 0,
        send_q: 0,
        timer: Timer::OFF,
        uid: 0,
        inode,
        cookie: std::num::NonZeroU64::new(inode),
        tcp_info: Some(Box::new(TcpInfo {
            len: TcpInfo::FULL,
            snd_wnd: 65536,
            ..TcpInfo::default()
        })),
        owner: 0,
    }
}

/// `s` after its peer has sent nothing, data or ACK, for `ms`: the age
/// the kernel gives a CLOSE_WAIT or FIN_WAIT2.
pub fn silent(mut s: Socket, ms: u32) -> Socket {
    let ti = s.tcp_info.as_mut().expect("tcp_info");
    ti.last_data_recv = ms;
    ti.last_ack_recv = ms;
    s
}

pub fn timer(kind: TimerKind, count: u8) -> Timer {
    Timer {
        kind,
        expires_ms: 200,
        count,
    }
}

pub fn host() -> Host {
    let sysctls = [
        ("net.ipv4.ip_local_port_range", "32768 60999"),
        ("net.ipv4.tcp_max_tw_buckets", "262144"),
        ("net.ipv4.tcp_max_orphans", "65536"),
        ("net.ipv4.tcp_max_syn_backlog", "1024"),
        ("net.ipv4.tcp_retries2", "15"),
        ("net.ipv4.tcp_keepalive_time", "7200"),
        ("net.ipv4.tcp_fin_timeout", "60"),
        ("net.core.somaxconn", "4096"),
    ];
    Host {
        hostname: "test".into(),
        kernel: "6.18.0".into(),
        files_allocated: Some(1000),
        files_max: Some(1_000_000),
        sysctls: sysctls
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Host::default()
    }
}

pub fn process(
    pid: u32,
    comm: &str,
    cmdline: &str,
    fds_open: u32,
    fd_limit: Option<u64>,
) -> Process {
    Process {
        ppid: None,
        parent_cmdline: None,
        container: None,
        pid,
        comm: comm.as_bytes().to_vec(),
        cmdline: cmdline.as_bytes().to_vec(),
        uid: Some(0),
        fds_open,
        fd_limit,
    }
}

/// A snapshot; every socket with a non-zero inode is owned by pid 100,
/// a uvicorn.
pub fn snapshot(sockets: Vec<Socket>) -> Snapshot {
    let mut sockets = sockets;
    for s in sockets.iter_mut().filter(|s| s.inode != 0) {
        s.owner = 100;
    }
    let mut processes = BTreeMap::new();
    processes.insert(
        100,
        process(
            100,
            "uvicorn",
            "/usr/bin/python3 /usr/local/bin/uvicorn app:app --port 30020",
            50,
            Some(1024),
        ),
    );
    Snapshot {
        captured_at: SystemTime::UNIX_EPOCH,
        source: Source::Netlink,
        filter: Filter::default(),
        sockets,
        folded: crate::model::Folded::default(),
        shared: InodeMap::default(),
        processes,
        owners_walked: true,
        owners_from: None,
        netns: Netns {
            own: true,
            ..Netns::default()
        },
        host: host(),
        gaps: Gaps::default(),
        hints: Vec::new(),
        neighbours: Vec::new(),
        forwarded: Vec::new(),
        unix: Vec::new(),
        unix_links: Vec::new(),
        waiting: Vec::new(),
    }
}
