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

/// A listener in the scan whose owner could not be read is said to be one,
/// never "not part of this scan"; a listener outside the scan is.
#[test]
fn an_unreadable_listener_is_not_said_to_be_outside_the_scan() {
    let t = Thresholds::default();
    let queued = |i| {
        let mut s = server(TcpState::CloseWait, i);
        s.inode = 0;
        s.tcp_info = None;
        s
    };
    let mut snap = snapshot(vec![listener(), queued(1), queued(2)]);
    snap.sockets[0].owner = 0;
    snap.gaps.as_root = false;
    snap.gaps.processes_unreadable = 5;
    let e = all(&snap, &t)[0].explanation.clone();
    assert!(
        e.contains("its listener's process (run as root to see it)"),
        "{e}"
    );
    assert!(!e.contains("not part of this scan"), "{e}");
    assert!(
        !e.contains("never called close()"),
        "all queued: no forgotten close() {e}"
    );

    let mut snap = snapshot(vec![queued(1), queued(2)]);
    snap.gaps.as_root = true;
    let e = all(&snap, &t)[0].explanation.clone();
    assert!(e.contains("its listener (not part of this scan)"), "{e}");
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
        h.explanation
            .contains("accept queue is full (17 connections waiting for a backlog of 16 in netns"),
        "{}",
        h.explanation
    );
    assert!(!h.explanation.contains("probably gone"));
}

/// Outbound to a broker and to Redis, the peer's own rows: pika's
/// heartbeat for an idle AMQP connection, redis-py's socket_timeout for a
/// half-open one; each with its source.
#[test]
fn a_broker_and_redis_get_their_clients_settings() {
    let t = Thresholds::default();
    let mut amqp = sock(TcpState::Established, "10.0.0.1:50000", "10.0.0.5:5672", 9);
    amqp.timer = timer(TimerKind::Off, 0);
    let ti = amqp.tcp_info.as_mut().expect("ti");
    ti.last_data_recv = 600_000;
    ti.last_data_sent = 600_000;
    let f = all(&snapshot(vec![amqp]), &t);
    assert_eq!(f[0].kind, Kind::IdleNoKeepalive);
    assert!(
        f[0].remediation.contains("heartbeat=N (never 0)")
            && f[0].advice_source.contains("pika/connection.py"),
        "{} / {}",
        f[0].remediation,
        f[0].advice_source
    );

    let mut redis = sock(TcpState::Established, "10.0.0.1:50001", "10.0.0.6:6379", 10);
    redis.timer = timer(TimerKind::Retransmit, 6);
    redis.send_q = 40;
    let ti = redis.tcp_info.as_mut().expect("ti");
    ti.backoff = 6;
    ti.unacked = 1;
    ti.last_data_sent = 30_000;
    ti.last_ack_recv = 31_000;
    ti.last_data_recv = 31_000;
    let f = all(&snapshot(vec![redis]), &t);
    assert_eq!(f[0].kind, Kind::HalfOpen);
    assert!(
        f[0].remediation
            .contains("socket_timeout=N bounds the wait for each reply")
            && f[0].advice_source.contains("redis-py"),
        "{}",
        f[0].remediation
    );
}

/// A pooled MySQL connection the server closed at its wait_timeout, and
/// one whose server stopped acknowledging: MySQL's own words, with the
/// client's settings and their sources.
#[test]
fn mysql_peers_get_wait_timeout_and_read_timeout() {
    let t = Thresholds::default();
    let mut cw = sock(TcpState::CloseWait, "10.0.0.1:50002", "10.0.0.7:3306", 11);
    cw.timer = timer(TimerKind::Off, 0);
    let ti = cw.tcp_info.as_mut().expect("ti");
    ti.last_data_recv = 600_000;
    ti.last_data_sent = 600_000;
    ti.last_ack_recv = 600_000;
    let f = all(&snapshot(vec![cw]), &t);
    let f = f
        .iter()
        .find(|f| f.kind == Kind::CloseWait)
        .expect("close_wait");
    assert!(
        f.explanation.contains("wait_timeout, 28800 s by default")
            && f.remediation.contains("pool_recycle=N below it")
            && f.advice_source.contains("sysvar_wait_timeout"),
        "{} / {} / {}",
        f.explanation,
        f.remediation,
        f.advice_source
    );

    let mut ho = sock(TcpState::Established, "10.0.0.1:50003", "10.0.0.7:3306", 12);
    ho.timer = timer(TimerKind::Retransmit, 6);
    ho.send_q = 60;
    let ti = ho.tcp_info.as_mut().expect("ti");
    ti.backoff = 6;
    ti.unacked = 1;
    ti.last_data_sent = 30_000;
    ti.last_ack_recv = 31_000;
    ti.last_data_recv = 31_000;
    let f = all(&snapshot(vec![ho]), &t);
    assert_eq!(f[0].kind, Kind::HalfOpen);
    assert!(
        f[0].explanation
            .contains("The MySQL server stopped acknowledging")
            && f[0]
                .remediation
                .contains("read_timeout=N and write_timeout=N")
            && f[0].advice_source.contains("mysqlclient"),
        "{} / {}",
        f[0].explanation,
        f[0].remediation
    );
}
