//! Per-connection pathologies, grouped like the report's port table:
//! inbound by local port, outbound by remote endpoint.
//!
//! Who a finding blames is who holds the sockets: the processes with a
//! descriptor for them, or, for connections still waiting in an accept
//! queue (no descriptor yet), the listener's owners. A socket whose owner
//! could not be read is unknown, never "orphaned": that word is for sockets
//! the kernel holds for no process.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde_json::Value;

use super::advice::{self, Ctx, Holders};
use super::{
    Finding, Kind, Severity, Thresholds, human, known, queued, since_peer, syn_sent_at_least,
};
use crate::model::{Direction, Snapshot, Socket, TcpState, TimerKind, direction};

/// Why a socket counts as half-open.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dead {
    /// Unacked data retransmitted (or zero-window probes unanswered).
    Retransmitting,
    /// Keepalive probes unanswered.
    Keepalive,
    /// SYN retried, no answer.
    SynSent,
}

/// The socket-level rules a socket meets.
fn rules(s: &Socket, t: &Thresholds, up: Option<u64>) -> Vec<(Kind, Option<Dead>)> {
    let mut hits = Vec::new();
    let ti = s.tcp_info.as_ref();
    let stall = t.stall.as_millis() as u32;
    let backoff = ti.and_then(|i| i.backoff()).unwrap_or(0);
    let in_flight = s.send_q > 0 || ti.and_then(|i| i.unacked()).unwrap_or(0) > 0;
    // The peer answers: an ACK came at or after our last transmission (in
    // the same clock tick at worst). An ACK can only answer data sent
    // before it: one received before the last transmission is no answer,
    // however close. Retransmissions it acknowledges without taking the
    // data (it shrank its window, it does not drain its buffer) make a
    // reader that does not read, not a dead peer.
    let answering = ti
        .and_then(|i| {
            let ack = known(i.last_ack_recv(), up)?;
            let sent = known(i.last_data_sent(), up)?;
            Some(ack <= sent)
        })
        .unwrap_or(false);
    match (s.state, s.timer.kind) {
        (TcpState::CloseWait, _) if since_peer(s, up).is_none_or(|a| a >= stall) => {
            hits.push((Kind::CloseWait, None));
        }
        (TcpState::SynSent, TimerKind::Retransmit) if s.timer.count >= 2 => {
            hits.push((Kind::HalfOpen, Some(Dead::SynSent)));
        }
        (TcpState::SynSent | TcpState::SynRecv | TcpState::Listen, _) => {}
        (_, TimerKind::Retransmit)
            if in_flight && (s.timer.count >= t.retransmits || backoff >= t.retransmits) =>
        {
            if !answering {
                hits.push((Kind::HalfOpen, Some(Dead::Retransmitting)));
            } else if s.state == TcpState::Established && s.send_q > 0 {
                hits.push((Kind::PeerNotReading, None));
            }
        }
        // Zero-window probes back off even when the peer answers them with a
        // zero window; only unanswered probes (the count) mean it is gone.
        (_, TimerKind::Persist) if s.timer.count >= t.retransmits => {
            hits.push((Kind::HalfOpen, Some(Dead::Retransmitting)));
        }
        (TcpState::Established, TimerKind::Keepalive) if s.timer.count >= 1 => {
            hits.push((Kind::HalfOpen, Some(Dead::Keepalive)));
        }
        _ => {}
    }
    if hits.iter().any(|(k, _)| *k == Kind::HalfOpen) || s.state != TcpState::Established {
        if s.state == TcpState::FinWait2
            && (s.inode == 0 || since_peer(s, up).is_none_or(|a| a >= stall))
        {
            hits.push((Kind::FinWait2, None));
        }
        return hits;
    }
    // A connection nobody accepted yet is the listener's finding
    // (accept_queue_full), not a reader's or an idle one.
    if queued(s) {
        return hits;
    }
    let zero_window = s.timer.kind == TimerKind::Persist || ti.and_then(|i| i.snd_wnd()) == Some(0);
    if zero_window
        && !hits.iter().any(|(k, _)| *k == Kind::PeerNotReading)
        && s.send_q > 0
        && known(ti.and_then(|i| i.last_data_sent()), up).is_none_or(|a| a >= stall)
    {
        hits.push((Kind::PeerNotReading, None));
    }
    if let Some(ti) = ti {
        let recv = known(ti.last_data_recv(), up);
        let sent = known(ti.last_data_sent(), up);
        if s.recv_q > 0 && recv.is_some_and(|r| r >= stall) {
            hits.push((Kind::AppNotReading, None));
        }
        if let (Some(recv), Some(sent)) = (recv, sent)
            && s.timer.kind == TimerKind::Off
            && s.send_q == 0
            && s.recv_q == 0
            && recv.min(sent) >= t.idle.as_millis() as u32
        {
            hits.push((Kind::IdleNoKeepalive, None));
        }
    }
    hits
}

#[derive(Default)]
struct Group {
    sockets: Vec<u32>,
    holders: BTreeSet<u32>,
    listener_pids: BTreeSet<u32>,
    queued: u32,
    unknown: u32,
    recv_q: u64,
    send_q: u64,
    max_recv_q: u32,
    max_send_q: u32,
    /// The largest relevant age (ms), when tcp_info gave one.
    oldest: Option<u32>,
    max_count: u8,
    max_backoff: u8,
    unacked: u64,
    dead: BTreeMap<&'static str, u32>,
    orphans: u32,
}

type Key = (Kind, Direction, Option<IpAddr>, u16, bool);

/// The age a finding quotes for a socket: never older than the socket.
pub fn age(kind: Kind, s: &Socket, host: &crate::model::Host) -> Option<u32> {
    if kind == Kind::HalfOpen && s.state == TcpState::SynSent {
        return Some(syn_sent_at_least(s.timer.count));
    }
    if kind == Kind::FinWait2 && s.tcp_info.is_none() {
        return super::state_age(s, host);
    }
    let up = host.uptime_ms;
    let ti = s.tcp_info.as_ref()?;
    match kind {
        Kind::CloseWait | Kind::FinWait2 => since_peer(s, up),
        // Keepalive probes unanswered: the peer has been silent since its
        // last ACK.
        Kind::HalfOpen if s.timer.kind == TimerKind::Keepalive => known(ti.last_ack_recv(), up),
        Kind::HalfOpen => Some(unanswered(s, ti, up)),
        // Retransmissions count as sends: only a zero window's stall has
        // an age.
        Kind::PeerNotReading if s.timer.kind == TimerKind::Persist || ti.snd_wnd() == Some(0) => {
            known(ti.last_data_sent(), up)
        }
        Kind::PeerNotReading => None,
        Kind::AppNotReading => known(ti.last_data_recv(), up),
        Kind::IdleNoKeepalive => {
            Some(known(ti.last_data_recv(), up)?.min(known(ti.last_data_sent(), up)?))
        }
        _ => None,
    }
}

/// How long a half-open socket's data has gone unanswered, at least: since
/// it was last sent new (`last_data_sent`), and no less than the
/// retransmissions the kernel has made took (each waited the RTO, doubled
/// every time from `TCP_RTO_MIN`, 200 ms, up to `TCP_RTO_MAX`, 120 s).
/// Never more than the peer's silence (`last_ack_recv`): a connection idle
/// before the peer vanished is not unanswered for its idle time.
fn unanswered(s: &Socket, ti: &crate::model::TcpInfo, up: Option<u64>) -> u32 {
    let sent = known(ti.last_data_sent(), up).unwrap_or(0);
    let tries = u32::from(ti.backoff().unwrap_or(0).max(s.timer.count)).min(16);
    let rto_ms = ti.rto().map_or(0, |us| us / 1000);
    let base = (rto_ms >> tries).max(200);
    let retried = (0..tries).fold(0u32, |w, i| w.saturating_add((base << i).min(120_000)));
    let at_least = sent.max(retried);
    match known(ti.last_ack_recv(), up) {
        Some(silence) => at_least.min(silence),
        None => at_least,
    }
}

/// The listeners of a snapshot by port, with their owners: where a queued
/// connection waits, found without a pass over every socket for each.
type Listeners<'s> = BTreeMap<u16, Vec<(IpAddr, &'s [u32])>>;

fn listeners(snap: &Snapshot) -> Listeners<'_> {
    let mut m: Listeners = BTreeMap::new();
    for l in snap.sockets.iter().filter(|l| l.state == TcpState::Listen) {
        m.entry(l.local.port())
            .or_default()
            .push((l.local.ip(), snap.owners_of(l)));
    }
    m
}

/// The owners of the listeners a queued connection on `s.local` waits in.
fn listener_owners<'s>(listeners: &'s Listeners, s: &Socket) -> impl Iterator<Item = u32> + 's {
    let ip = s.local.ip();
    listeners
        .get(&s.local.port())
        .into_iter()
        .flatten()
        .filter(move |(lip, _)| *lip == ip || lip.is_unspecified())
        .flat_map(|(_, owners)| owners.iter().copied())
}

/// Whether `remote` is a listener of this snapshot, or one a forwarder of
/// it sends to, whose accept queue is full: how full, for the words.
fn full_listener(snap: &Snapshot, remote: std::net::SocketAddr) -> Option<String> {
    let forwarded = snap.forwarded.iter().find(|f| {
        f.to.port() == remote.port()
            && (f.to.ip() == remote.ip() || f.to.ip().is_unspecified())
            && f.backlog > 0
            && f.queue >= f.backlog
    });
    if let Some(f) = forwarded {
        return Some(format!(
            "{} connections waiting for a backlog of {} in {}",
            f.queue, f.backlog, f.netns
        ));
    }
    snap.sockets
        .iter()
        .find(|l| {
            l.state == TcpState::Listen
                && l.local.port() == remote.port()
                && (l.local.ip() == remote.ip() || l.local.ip().is_unspecified())
                && l.send_q > 0
                && l.recv_q >= l.send_q
        })
        .map(|l| {
            format!(
                "{} connections waiting on port {} for a backlog of {}",
                l.recv_q,
                remote.port(),
                l.send_q
            )
        })
}

pub fn classify(snap: &Snapshot, t: &Thresholds, out: &mut Vec<Finding>) {
    let listening = snap.listening_ports();
    let ephemeral = snap.host.ephemeral_range();
    let up = snap.host.uptime_ms;
    let by_port = listeners(snap);
    let mut groups: BTreeMap<Key, Group> = BTreeMap::new();
    for (i, s) in snap.sockets.iter().enumerate() {
        for (kind, dead) in rules(s, t, up) {
            let dir = direction(s, &listening, ephemeral);
            let (remote, port) = match dir {
                Direction::Inbound => (None, s.local.port()),
                Direction::Outbound => (Some(s.remote.ip()), s.remote.port()),
            };
            let orphan = kind == Kind::FinWait2 && s.inode == 0;
            let g = groups.entry((kind, dir, remote, port, orphan)).or_default();
            g.sockets.push(i as u32);
            let owners = snap.owners_of(s);
            g.holders.extend(owners);
            if queued(s) {
                g.queued += 1;
                g.listener_pids.extend(listener_owners(&by_port, s));
            } else if s.inode == 0 {
                g.orphans += 1;
            } else if owners.is_empty() && snap.owners_walked {
                g.unknown += 1;
            }
            g.recv_q += u64::from(s.recv_q);
            g.send_q += u64::from(s.send_q);
            g.max_recv_q = g.max_recv_q.max(s.recv_q);
            g.max_send_q = g.max_send_q.max(s.send_q);
            if let Some(a) = age(kind, s, &snap.host) {
                g.oldest = Some(g.oldest.map_or(a, |o| o.max(a)));
            }
            g.max_count = g.max_count.max(s.timer.count);
            if let Some(ti) = &s.tcp_info {
                g.max_backoff = g.max_backoff.max(ti.backoff().unwrap_or(0));
                g.unacked += u64::from(ti.unacked().unwrap_or(0));
            }
            if let Some(d) = dead {
                let name = match d {
                    Dead::Retransmitting => "retransmitting",
                    Dead::Keepalive => "keepalive_unanswered",
                    Dead::SynSent => "syn_sent_unanswered",
                };
                *g.dead.entry(name).or_insert(0) += 1;
            }
        }
    }
    for ((kind, dir, remote, port, orphan), g) in groups {
        let count = g.sockets.len() as u32;
        let holders = Holders {
            pids: g.holders.iter().copied().collect(),
            queued: g.queued,
            listener_pids: g.listener_pids.iter().copied().collect(),
            unknown: g.unknown,
            orphans: g.orphans,
        };
        let pids = holders.all_pids();
        let mut ctx = Ctx::new(snap, holders, dir, remote, port);
        if dir == Direction::Outbound {
            // A listener here on that port is the peer only if it has the
            // remote address (or listens on all of them, and the remote is
            // this host's loopback).
            let rip = remote.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into());
            let owners: Vec<u32> = by_port
                .get(&port)
                .into_iter()
                .flatten()
                .filter(|(lip, _)| *lip == rip || (lip.is_unspecified() && rip.is_loopback()))
                .flat_map(|(_, o)| o.iter().copied())
                .collect();
            ctx.peer = advice::peer_server(snap, &owners, port);
        }
        if ctx.server == Some(advice::Server::DockerProxy) {
            let by = |f: &&crate::model::Forwarded| f.by.is_some_and(|p| pids.contains(&p));
            ctx.forwards_to = snap
                .forwarded
                .iter()
                .find(by)
                .map(|f| format!("port {} to {} in {}", f.port, f.to, f.netns));
        }
        let mut ev: BTreeMap<&'static str, Value> = BTreeMap::new();
        ev.insert("sockets", count.into());
        let remote_addr = remote.map(|ip| std::net::SocketAddr::new(ip, port));
        if let Some(s) = ctx.server {
            ev.insert("server", s.name().into());
        }
        if let Some(s) = ctx.peer {
            ev.insert("peer_server", s.name().into());
        }
        if g.queued > 0 {
            ev.insert("in_accept_queue", g.queued.into());
        }
        if g.unknown > 0 {
            ev.insert("owner_unknown", g.unknown.into());
        }
        let oldest = g.oldest.map(|ms| human(u64::from(ms)));
        let (severity, cap) = match kind {
            Kind::FinWait2 if orphan => (Severity::Info, Severity::Info),
            Kind::FinWait2 | Kind::IdleNoKeepalive => (Severity::Warning, Severity::Warning),
            // The other end closed: an idle pool's, never this host's leak.
            Kind::CloseWait if dir == Direction::Outbound => (Severity::Warning, Severity::Warning),
            _ => (Severity::Warning, Severity::Critical),
        };
        let severity = if count >= t.critical_count {
            cap
        } else {
            severity
        };
        let text = match kind {
            Kind::CloseWait => {
                ev.insert("recv_q", g.recv_q.into());
                advice::close_wait(&ctx, count, oldest.as_deref())
            }
            Kind::HalfOpen => {
                for (k, v) in &g.dead {
                    ev.insert(k, (*v).into());
                }
                ev.insert("max_retransmits", g.max_count.into());
                ev.insert("max_backoff", g.max_backoff.into());
                ev.insert("unacked", g.unacked.into());
                ev.insert("send_q", g.send_q.into());
                let retries2 = snap.host.sysctl_u64("net.ipv4.tcp_retries2");
                if let Some(r) = retries2 {
                    ev.insert("tcp_retries2", r.into());
                }
                let syn_retries = snap.host.sysctl_u64("net.ipv4.tcp_syn_retries");
                let queue_full = remote_addr
                    .filter(|_| g.dead.contains_key("syn_sent_unanswered"))
                    .and_then(|r| full_listener(snap, r));
                if queue_full.is_some() {
                    ev.insert("destination_accept_queue_full", true.into());
                }
                let dead = advice::Dead {
                    counts: &g.dead,
                    max_retrans: g.max_count,
                    queue_full,
                };
                advice::half_open(&ctx, count, &dead, oldest.as_deref(), retries2, syn_retries)
            }
            Kind::PeerNotReading => {
                ev.insert("send_q", g.send_q.into());
                ev.insert("max_send_q", g.max_send_q.into());
                advice::peer_not_reading(&ctx, count, g.send_q, oldest.as_deref())
            }
            Kind::AppNotReading => {
                ev.insert("recv_q", g.recv_q.into());
                ev.insert("max_recv_q", g.max_recv_q.into());
                advice::app_not_reading(&ctx, count, g.recv_q, oldest.as_deref())
            }
            Kind::IdleNoKeepalive => {
                ev.insert("idle_threshold_s", t.idle.as_secs().into());
                let ka = snap.host.sysctl_u64("net.ipv4.tcp_keepalive_time");
                if let Some(v) = ka {
                    ev.insert("tcp_keepalive_time", v.into());
                }
                advice::idle_no_keepalive(&ctx, count, t.idle.as_secs(), oldest.as_deref(), ka)
            }
            Kind::FinWait2 => {
                let fin_timeout = snap.host.sysctl_u64("net.ipv4.tcp_fin_timeout");
                if let Some(v) = fin_timeout {
                    ev.insert("tcp_fin_timeout", v.into());
                }
                ev.insert("orphaned", g.orphans.into());
                advice::fin_wait2(&ctx, count, orphan, oldest.as_deref(), fin_timeout)
            }
            _ => continue,
        };
        out.push(Finding {
            ports: vec![port],
            pids,
            direction: Some(dir),
            remote: remote_addr,
            oldest_ms: g.oldest,
            who: Some(ctx.who.clone()).filter(|w| !w.is_empty()),
            evidence: ev,
            advice_source: match kind {
                Kind::FinWait2 if orphan => advice::host(kind).source(None),
                _ => advice::pick(kind, dir, ctx.server, ctx.peer).source(ctx.server),
            },
            sockets: g.sockets,
            ..Finding::new(kind, severity, count, text)
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Finding, Kind, Severity, Thresholds, classify as all};
    use crate::model::{Source, TcpState, TimerKind};
    use crate::testing::{silent, snapshot, sock, timer};

    fn kinds(f: &[Finding]) -> Vec<(Kind, Severity, u32)> {
        f.iter().map(|f| (f.kind, f.severity, f.count)).collect()
    }

    fn server(state: TcpState, n: u64) -> crate::model::Socket {
        sock(
            state,
            "10.0.0.1:30020",
            &format!("10.0.0.9:{}", 40000 + n),
            n + 1,
        )
    }

    fn listener() -> crate::model::Socket {
        let mut l = sock(TcpState::Listen, "10.0.0.1:30020", "0.0.0.0:0", 1000);
        l.send_q = 2048;
        l
    }

    #[test]
    fn close_wait_needs_its_age_and_turns_critical_by_count() {
        let t = Thresholds::default();
        let aged = |ms| silent(server(TcpState::CloseWait, 1), ms);
        assert!(all(&snapshot(vec![listener(), aged(9_999)]), &t).is_empty());
        let f = all(&snapshot(vec![listener(), aged(10_000)]), &t);
        assert_eq!(kinds(&f), vec![(Kind::CloseWait, Severity::Warning, 1)]);
        assert_eq!(f[0].pids, vec![100]);
        assert_eq!(f[0].ports, vec![30020]);
        assert_eq!(f[0].evidence["server"], "uvicorn");
        assert!(f[0].explanation.contains("event loop is blocked"));
        assert!(f[0].remediation.contains("py-spy dump"));
        assert!(
            f[0].remediation
                .contains("zombiescan kill --port 30020 --finding close_wait lists them")
                && f[0].remediation.contains("ECONNABORTED")
                && f[0].remediation.contains("it relieves, it does not fix"),
            "{}",
            f[0].remediation
        );
        assert!(f[0].advice_source.contains("h11_impl.py"));
        let mut many: Vec<_> = (0..100)
            .map(|i| {
                let mut s = server(TcpState::CloseWait, i);
                s.tcp_info = None;
                s
            })
            .collect();
        many.push(listener());
        let f = all(&snapshot(many.clone()), &t);
        assert_eq!(kinds(&f), vec![(Kind::CloseWait, Severity::Critical, 100)]);
        many.pop();
        many.pop();
        let f = all(&snapshot(many), &t);
        assert_eq!(f[0].severity, Severity::Warning);
    }

    #[test]
    fn half_open_edges() {
        let t = Thresholds::default();
        let retrans = |count, backoff, unacked| {
            let mut s = server(TcpState::Established, 1);
            s.timer = timer(TimerKind::Retransmit, count);
            s.send_q = 100;
            let ti = s.tcp_info.as_mut().expect("ti");
            ti.backoff = backoff;
            ti.unacked = unacked;
            // Nothing acknowledged since well before the last retransmission.
            ti.last_ack_recv = 30_000;
            ti.last_data_sent = 1_000;
            s
        };
        assert!(all(&snapshot(vec![retrans(2, 2, 1)]), &t).is_empty());
        assert_eq!(
            all(&snapshot(vec![retrans(3, 0, 1)]), &t)[0].kind,
            Kind::HalfOpen
        );
        assert_eq!(
            all(&snapshot(vec![retrans(0, 3, 1)]), &t)[0].kind,
            Kind::HalfOpen
        );
        let f = all(&snapshot(vec![retrans(5, 5, 2)]), &t);
        assert_eq!(f[0].evidence["max_retransmits"], 5);
        assert_eq!(f[0].evidence["tcp_retries2"], 15);

        let mut ka = server(TcpState::Established, 2);
        ka.timer = timer(TimerKind::Keepalive, 0);
        assert!(all(&snapshot(vec![ka.clone()]), &t).is_empty());
        ka.timer.count = 1;
        assert_eq!(
            all(&snapshot(vec![ka]), &t)[0].evidence["keepalive_unanswered"],
            1
        );

        let mut syn = sock(TcpState::SynSent, "10.0.0.1:45000", "10.0.0.5:5432", 9);
        syn.timer = timer(TimerKind::Retransmit, 1);
        assert!(all(&snapshot(vec![syn.clone()]), &t).is_empty());
        syn.timer.count = 2;
        let f = all(&snapshot(vec![syn]), &t);
        assert_eq!(f[0].evidence["syn_sent_unanswered"], 1);
        assert_eq!(
            f[0].remote.map(|r| r.to_string()).as_deref(),
            Some("10.0.0.5:5432")
        );
        assert!(f[0].remediation.contains("connect timeout"));
    }

    #[test]
    fn zero_window_is_a_slow_reader_until_probes_go_unanswered() {
        let t = Thresholds::default();
        let mut s = server(TcpState::Established, 1);
        s.timer = timer(TimerKind::Persist, 0);
        s.send_q = 1 << 20;
        s.tcp_info.as_mut().expect("ti").last_data_sent = 10_000;
        let f = all(&snapshot(vec![listener(), s.clone()]), &t);
        assert_eq!(
            kinds(&f),
            vec![(Kind::PeerNotReading, Severity::Warning, 1)]
        );
        // An old kernel's short tcp_info: no snd_wnd, the timer still tells.
        let mut old = s.clone();
        old.tcp_info.as_mut().expect("ti").len = 192;
        assert_eq!(
            all(&snapshot(vec![listener(), old]), &t)[0].kind,
            Kind::PeerNotReading
        );
        // Not long enough stuck.
        let mut fresh = s.clone();
        fresh.tcp_info.as_mut().expect("ti").last_data_sent = 500;
        assert!(all(&snapshot(vec![listener(), fresh]), &t).is_empty());
        // Backoff grows while a live peer answers probes with a zero window.
        let mut backed_off = s.clone();
        backed_off.tcp_info.as_mut().expect("ti").backoff = 6;
        assert_eq!(
            all(&snapshot(vec![listener(), backed_off]), &t)[0].kind,
            Kind::PeerNotReading
        );
        // Probes unanswered: the peer is gone, not slow.
        s.timer.count = 3;
        assert_eq!(
            all(&snapshot(vec![listener(), s]), &t)[0].kind,
            Kind::HalfOpen
        );
    }

    #[test]
    fn unread_requests_and_idle_connections() {
        let t = Thresholds::default();
        let mut unread = server(TcpState::Established, 1);
        unread.recv_q = 512;
        unread.tcp_info.as_mut().expect("ti").last_data_recv = 10_000;
        let f = all(&snapshot(vec![listener(), unread.clone()]), &t);
        assert_eq!(kinds(&f), vec![(Kind::AppNotReading, Severity::Warning, 1)]);
        assert!(
            f[0].explanation.contains("event loop"),
            "tailored to uvicorn"
        );
        assert!(f[0].remediation.contains("--limit-concurrency (not set)"));

        let idle = |ms, kind| {
            let mut s = server(TcpState::Established, 2);
            s.timer = timer(kind, 0);
            let ti = s.tcp_info.as_mut().expect("ti");
            ti.last_data_recv = ms;
            ti.last_data_sent = ms;
            s
        };
        assert!(
            all(
                &snapshot(vec![listener(), idle(299_999, TimerKind::Off)]),
                &t
            )
            .is_empty()
        );
        let f = all(
            &snapshot(vec![listener(), idle(300_000, TimerKind::Off)]),
            &t,
        );
        assert_eq!(
            kinds(&f),
            vec![(Kind::IdleNoKeepalive, Severity::Warning, 1)]
        );
        assert!(f[0].remediation.contains("--timeout-keep-alive"));
        assert!(
            all(
                &snapshot(vec![listener(), idle(900_000, TimerKind::Keepalive)]),
                &t
            )
            .is_empty()
        );
    }

    #[test]
    fn the_proc_source_judges_without_ages() {
        let t = Thresholds::default();
        let strip = |mut s: crate::model::Socket| {
            s.tcp_info = None;
            s.cookie = None;
            s
        };
        let cw = strip(server(TcpState::CloseWait, 1));
        let mut unread = strip(server(TcpState::Established, 2));
        unread.recv_q = 100;
        let mut persist = strip(server(TcpState::Established, 3));
        persist.timer = timer(TimerKind::Persist, 0);
        persist.send_q = 4096;
        let mut snap = snapshot(vec![listener(), cw, unread, persist]);
        snap.source = Source::Proc;
        let f = all(&snap, &t);
        let k: Vec<Kind> = f.iter().map(|f| f.kind).collect();
        assert!(k.contains(&Kind::CloseWait) && k.contains(&Kind::PeerNotReading));
        assert!(!k.contains(&Kind::AppNotReading), "needs tcp_info");
        assert!(f.iter().all(|f| f.oldest_ms.is_none()));
        assert!(super::super::unchecked(&snap).is_some_and(|u| u.contains("app_not_reading")));
    }

    #[test]
    fn fin_wait2_owned_is_a_warning_orphaned_is_information() {
        let t = Thresholds::default();
        let owned = silent(server(TcpState::FinWait2, 1), 20_000);
        let mut orphan = sock(TcpState::FinWait2, "10.0.0.1:45000", "10.0.0.5:80", 0);
        orphan.tcp_info = None;
        orphan.timer = timer(TimerKind::TimeWait, 0);
        // Its timer was armed with tcp_fin_timeout (60 s): 45 s left.
        orphan.timer.expires_ms = 45_000;
        let snap = snapshot(vec![listener(), owned, orphan]);
        assert_eq!(
            super::super::state_age(&snap.sockets[2], &snap.host),
            Some(15_000)
        );
        let f = all(&snap, &t);
        assert_eq!(
            kinds(&f),
            vec![
                (Kind::FinWait2, Severity::Warning, 1),
                (Kind::FinWait2, Severity::Info, 1)
            ]
        );
        assert_eq!(f[0].pids, vec![100]);
        assert!(f[1].pids.is_empty());
        assert!(f[1].explanation.contains("tcp_fin_timeout = 60 s"));
        assert_eq!(
            f[1].oldest_ms,
            Some(15_000),
            "the orphan's age, from its timer"
        );
    }

    /// Connections still in the accept queue (no inode) belong to the
    /// listener's owners; the words say they were never accepted.
    #[test]
    fn unaccepted_close_wait_is_the_listeners() {
        let t = Thresholds::default();
        let mut sockets = vec![listener()];
        for i in 0..3 {
            let mut s = server(TcpState::CloseWait, i);
            s.inode = 0;
            s.tcp_info = None;
            sockets.push(s);
        }
        let mut held = server(TcpState::CloseWait, 7);
        held.tcp_info = None;
        sockets.push(held);
        let f = all(&snapshot(sockets), &t);
        assert_eq!(kinds(&f), vec![(Kind::CloseWait, Severity::Warning, 4)]);
        assert_eq!(f[0].pids, vec![100], "the listener's owner");
        assert_eq!(f[0].evidence["in_accept_queue"], 3);
        let e = &f[0].explanation;
        assert!(
            e.contains("3 of them are still in the accept queue of port 30020"),
            "{e}"
        );
        assert!(e.contains("uvicorn (pid 100) never accepted them"), "{e}");
        assert!(e.contains("1 is held by uvicorn (pid 100)"), "{e}");
        assert!(!e.contains("orphan"), "{e}");
    }

    /// A socket whose owner could not be read is not an orphan.
    #[test]
    fn an_unreadable_owner_is_unknown_not_orphaned() {
        let t = Thresholds::default();
        let mut s = server(TcpState::CloseWait, 1);
        s.tcp_info = None;
        let mut snap = snapshot(vec![listener(), s]);
        snap.sockets[1].owner = 0;
        snap.gaps.processes_unreadable = 2;
        let f = all(&snap, &t);
        assert_eq!(f[0].evidence["owner_unknown"], 1);
        assert!(
            f[0].explanation.contains("could not read (run as root"),
            "{}",
            f[0].explanation
        );
        assert!(!f[0].explanation.contains("orphan"));
    }

    /// The kernel counts events that never happened from its jiffies
    /// epoch, 5 minutes before boot: such an "age" is never quoted.
    #[test]
    fn no_age_older_than_the_socket() {
        let t = Thresholds::default();
        let mut syn = sock(TcpState::SynSent, "10.0.0.1:45000", "10.0.0.1:30020", 9);
        syn.timer = timer(TimerKind::Retransmit, 2);
        let ti = syn.tcp_info.as_mut().expect("ti");
        // Up 3,284 s: "never" reads as 2,984 s.
        ti.last_ack_recv = 2_984_000;
        ti.last_data_recv = 2_984_000;
        let mut full = sock(TcpState::Listen, "0.0.0.0:30020", "0.0.0.0:0", 1000);
        full.recv_q = 8;
        full.send_q = 8;
        let mut snap = snapshot(vec![full, syn]);
        snap.host.uptime_ms = Some(3_284_000);
        let f = all(&snap, &t);
        let h = f
            .iter()
            .find(|f| f.kind == Kind::HalfOpen)
            .expect("half_open");
        assert_eq!(h.oldest_ms, Some(2_000), "two SYN retries: at least 2 s");
        assert!(
            h.explanation.contains("for at least 2 s"),
            "{}",
            h.explanation
        );
        assert!(!h.explanation.contains("min"), "{}", h.explanation);
        assert!(
            h.explanation.contains("accept queue is full"),
            "{}",
            h.explanation
        );
        assert!(!h.explanation.contains("probably gone"));
        assert!(!h.remediation.contains("tcp_retries2"), "{}", h.remediation);
        assert_eq!(h.evidence["destination_accept_queue_full"], true);
        // Without the full listener, the SYN is simply not answered.
        snap.sockets[0].recv_q = 0;
        let f = all(&snap, &t);
        let h = f
            .iter()
            .find(|f| f.kind == Kind::HalfOpen)
            .expect("half_open");
        assert!(h.explanation.contains("nothing answers the SYN"));

        // A CLOSE_WAIT whose ACK stamp is the epoch: aged by its data.
        let mut cw = server(TcpState::CloseWait, 1);
        let ti = cw.tcp_info.as_mut().expect("ti");
        ti.last_ack_recv = 2_984_000;
        ti.last_data_recv = 12_000;
        let mut snap = snapshot(vec![listener(), cw]);
        snap.host.uptime_ms = Some(3_284_000);
        assert_eq!(
            all(&snap, &t)[0].oldest_ms.map(crate::units::secs),
            Some(12.0)
        );
    }

    /// An orphaned FIN_WAIT2 toward a server of this scan names that
    /// server's close_wait finding instead of sending the reader elsewhere.
    #[test]
    fn fin_wait2_toward_a_server_of_this_scan_names_its_finding() {
        let t = Thresholds::default();
        let mut cw = server(TcpState::CloseWait, 1);
        cw.tcp_info = None;
        let mut fw = sock(TcpState::FinWait2, "10.0.0.9:40001", "10.0.0.1:30020", 0);
        fw.tcp_info = None;
        let f = all(&snapshot(vec![listener(), cw.clone(), fw.clone()]), &t);
        let fin = f
            .iter()
            .find(|f| f.kind == Kind::FinWait2)
            .expect("fin_wait2");
        assert!(
            fin.remediation
                .contains("close_wait finding in this report"),
            "{}",
            fin.remediation
        );
        assert!(!fin.remediation.contains("run zombiescan"));
        assert_eq!(fin.evidence["peer_finding"], "close_wait");
        // A peer elsewhere: look there.
        let mut far = fw;
        far.remote = "10.0.0.5:80".parse().expect("addr");
        let f = all(&snapshot(vec![listener(), far]), &t);
        assert!(f[0].remediation.contains("run zombiescan where it runs"));
    }

    /// Retransmissions the peer acknowledges (a window it shrank, a buffer
    /// it does not drain) are a reader that does not read: the peer is
    /// alive. Seen with uvicorn streaming to a client that never reads.
    #[test]
    fn retransmissions_a_live_peer_acknowledges_are_not_a_dead_peer() {
        let t = Thresholds::default();
        let mut s = server(TcpState::Established, 1);
        s.timer = timer(TimerKind::Retransmit, 0);
        s.send_q = 3_866_624;
        let ti = s.tcp_info.as_mut().expect("ti");
        ti.backoff = 5;
        ti.unacked = 2;
        ti.last_data_sent = 1_064;
        ti.last_ack_recv = 1_064;
        ti.rtt = 22;
        let f = all(&snapshot(vec![listener(), s.clone()]), &t);
        assert_eq!(
            kinds(&f),
            vec![(Kind::PeerNotReading, Severity::Warning, 1)]
        );
        assert!(f[0].oldest_ms.is_none(), "a retransmission is no stall age");
        // No ACK since long before the last retransmission: gone.
        s.tcp_info.as_mut().expect("ti").last_ack_recv = 40_000;
        assert_eq!(
            all(&snapshot(vec![listener(), s.clone()]), &t)[0].kind,
            Kind::HalfOpen
        );
        // A peer gone right after its last packet: the server wrote 44 ms
        // after the last ACK, the window open (seen live: lastsnd 3012,
        // lastack 3056, backoff 3, snd_wnd 64512). No ACK answered the
        // data, whatever the margin: half_open, not a reader.
        let ti = s.tcp_info.as_mut().expect("ti");
        ti.last_data_sent = 3_012;
        ti.last_ack_recv = 3_056;
        ti.last_data_recv = 3_056;
        ti.backoff = 3;
        ti.snd_wnd = 64_512;
        s.send_q = 4096;
        assert_eq!(
            kinds(&all(&snapshot(vec![listener(), s]), &t)),
            vec![(Kind::HalfOpen, Severity::Warning, 1)]
        );
    }

    /// A pooled connection idle 15 s, then a middlebox drops every packet,
    /// then a query 12 s later: it has gone unanswered 12 s, not the 27 s
    /// since the peer's last ACK (seen with PostgreSQL and RabbitMQ behind
    /// an nft drop rule).
    #[test]
    fn a_half_open_age_is_the_silence_of_its_data_not_the_idle_time() {
        let t = Thresholds::default();
        let mut s = server(TcpState::Established, 1);
        s.remote = "10.0.0.5:5432".parse().expect("addr");
        s.local = "10.0.0.1:50000".parse().expect("addr");
        s.timer = timer(TimerKind::Retransmit, 5);
        s.send_q = 120;
        let ti = s.tcp_info.as_mut().expect("ti");
        ti.backoff = 5;
        ti.rto = 6_400_000;
        ti.unacked = 1;
        ti.last_data_sent = 12_000;
        ti.last_ack_recv = 27_000;
        ti.last_data_recv = 27_000;
        let f = all(&snapshot(vec![s.clone()]), &t);
        assert_eq!(f[0].kind, Kind::HalfOpen);
        assert_eq!(
            f[0].oldest_ms,
            Some(12_000),
            "since the query, not the idle"
        );
        assert!(
            f[0].explanation.contains("unanswered for at least 12 s"),
            "{}",
            f[0].explanation
        );
        // Retransmissions that took longer than lastsnd says: their sum.
        let ti = s.tcp_info.as_mut().expect("ti");
        ti.last_data_sent = 1_000;
        let f = all(&snapshot(vec![s.clone()]), &t);
        assert_eq!(f[0].oldest_ms, Some(200 + 400 + 800 + 1_600 + 3_200));
        // Never older than the peer's silence.
        let ti = s.tcp_info.as_mut().expect("ti");
        ti.last_ack_recv = 3_000;
        let f = all(&snapshot(vec![s]), &t);
        assert_eq!(f[0].oldest_ms, Some(3_000));
    }

    /// Each end its own story: the client's pool idle in CLOSE_WAIT toward
    /// an HTTP server (a warning at most, the client's settings), the
    /// server's orphaned FIN_WAIT2 waiting on its clients, a client that
    /// never reads its responses.
    #[test]
    fn each_side_of_a_connection_tells_its_own_story() {
        let t = Thresholds {
            critical_count: 2,
            ..Thresholds::default()
        };
        let pooled = |port: u16| {
            silent(
                sock(
                    TcpState::CloseWait,
                    &format!("10.0.0.1:{port}"),
                    "10.0.0.7:8000",
                    u64::from(port),
                ),
                30_000,
            )
        };
        let f = all(
            &snapshot(vec![pooled(40001), pooled(40002), pooled(40003)]),
            &t,
        );
        assert_eq!(f[0].kind, Kind::CloseWait);
        assert_eq!(f[0].direction, Some(crate::model::Direction::Outbound));
        assert_eq!(
            f[0].severity,
            Severity::Warning,
            "an idle pool, never critical"
        );
        assert!(
            f[0].remediation.contains("keepalive_expiry"),
            "{}",
            f[0].remediation
        );
        assert!(
            f[0].explanation
                .contains("harmless until the pool takes one"),
            "{}",
            f[0].explanation
        );

        // The server closed idle keep-alive connections; its clients hold
        // theirs in CLOSE_WAIT: the words say the clients, not a server.
        let mut l = sock(TcpState::Listen, "10.0.0.1:30020", "0.0.0.0:0", 1);
        l.send_q = 128;
        let mut fw = sock(TcpState::FinWait2, "10.0.0.1:30020", "10.0.0.9:51000", 0);
        fw.tcp_info = None;
        fw.timer = timer(TimerKind::TimeWait, 0);
        let f = all(&snapshot(vec![l.clone(), fw]), &t);
        let fin = f
            .iter()
            .find(|f| f.kind == Kind::FinWait2)
            .expect("fin_wait2");
        assert!(
            fin.remediation
                .contains("the clients of port 30020 hold their side open"),
            "{}",
            fin.remediation
        );
        assert!(
            !fin.remediation.contains("the peer is the server"),
            "{}",
            fin.remediation
        );

        // A client that never reads its responses: the client's idiom.
        let mut unread = sock(TcpState::Established, "10.0.0.1:40010", "10.0.0.7:8000", 9);
        unread.recv_q = 4096;
        let ti = unread.tcp_info.as_mut().expect("ti");
        ti.last_data_recv = 20_000;
        ti.last_data_sent = 21_000;
        let f = all(&snapshot(vec![unread]), &t);
        assert_eq!(f[0].kind, Kind::AppNotReading);
        assert!(
            f[0].explanation.contains("the client never read them"),
            "{}",
            f[0].explanation
        );
        assert!(
            f[0].remediation.contains("response.close()"),
            "{}",
            f[0].remediation
        );
    }

    /// docker-proxy on the host, its port followed into the container:
    /// its CLOSE_WAIT and SYN_SENT are a forwarder's, tied to the container.
    #[test]
    fn a_forwarders_sockets_point_to_the_container() {
        let t = Thresholds::default();
        let mut l = sock(TcpState::Listen, "127.0.0.1:30020", "0.0.0.0:0", 1);
        l.send_q = 4096;
        let mut cw = sock(TcpState::CloseWait, "127.0.0.1:30020", "127.0.0.1:50000", 2);
        cw.tcp_info = None;
        let mut syn = sock(TcpState::SynSent, "172.17.0.1:40000", "172.17.0.2:30020", 3);
        syn.timer = timer(TimerKind::Retransmit, 3);
        let mut snap = snapshot(vec![l, cw, syn]);
        snap.processes.insert(
            100,
            crate::testing::process(
                100,
                "docker-proxy",
                "/usr/bin/docker-proxy -proto tcp -host-ip 127.0.0.1 -host-port 30020 -container-ip 172.17.0.2 -container-port 30020",
                10,
                Some(1024),
            ),
        );
        snap.forwarded.push(crate::model::Forwarded {
            port: 30020,
            to: "172.17.0.2:30020".parse().expect("addr"),
            by: Some(100),
            netns: "netns 4026532300 (docker 8e76985e7965 web)".into(),
            queue: 17,
            backlog: 16,
        });
        let f = all(&snap, &t);
        let cw = f
            .iter()
            .find(|f| f.kind == Kind::CloseWait)
            .expect("close_wait");
        assert!(
            cw.explanation
                .contains("docker-proxy is Docker's userland proxy"),
            "{}",
            cw.explanation
        );
        assert!(
            cw.explanation.contains("It forwards port 30020 to 172.17.0.2:30020 in netns 4026532300 (docker 8e76985e7965 web)"),
            "{}",
            cw.explanation
        );
        assert!(
            cw.remediation.contains("\"userland-proxy\": false"),
            "{}",
            cw.remediation
        );
        let h = f
            .iter()
            .find(|f| f.kind == Kind::HalfOpen)
            .expect("half_open");
        assert!(
            h.explanation.contains(
                "accept queue is full (17 connections waiting for a backlog of 16 in netns"
            ),
            "{}",
            h.explanation
        );
        assert!(!h.explanation.contains("probably gone"));
    }
}
