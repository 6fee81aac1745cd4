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

/// A connection nothing in a report reads but its counts: ESTABLISHED and
/// held by a process, queues empty, no rule of this module met (so no
/// timer but an unfired keepalive, and not idle past `t.idle`). A scan
/// that lists only flagged sockets folds these (see
/// [`crate::model::Folded`]): on a busy server, nearly all of them.
pub fn healthy(s: &Socket, t: &Thresholds, up: Option<u64>) -> bool {
    s.state == TcpState::Established
        && s.inode != 0
        && u32::try_from(s.inode).is_ok()
        && s.recv_q == 0
        && s.send_q == 0
        && rules(s, t, up).is_empty()
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
mod tests;
