//! The cause one hop away: a blamed process that sent a request on a
//! connection elsewhere (its database, a broker, an API) and has waited
//! longer than `--stall` for any reply. Its stuck requests are the
//! symptom; that wait is the likely cause.

use super::advice::well_known;
use super::{Finding, Kind, Thresholds, WaitingOn, known};
use crate::model::{Snapshot, Waiting};
use crate::units::human;

/// The processes whose waits are worth looking up: those a finding blames
/// for connections it does not serve (unclosed, unaccepted, unread) or for
/// running out of descriptors.
pub fn blamed(findings: &[Finding]) -> Vec<u32> {
    let mut pids: Vec<u32> = findings
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                Kind::CloseWait | Kind::AcceptQueueFull | Kind::AppNotReading | Kind::FdExhaustion
            ) && f.direction != Some(crate::model::Direction::Outbound)
        })
        .flat_map(|f| f.pids.iter().copied())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// How long `w` has waited for a reply, when it has waited at least
/// `stall` with its request acknowledged (a peer that does not acknowledge
/// is half_open's, not a slow answer): since the request, when nothing
/// came after it; since the last data, when a thread of the process is
/// blocked on the socket (an answer begun: PostgreSQL's extended protocol
/// answers the parse at once, the rows when the query ends).
fn waited(w: &Waiting, stall: u32, up: Option<u64>) -> Option<u32> {
    let ti = w.socket.tcp_info.as_ref()?;
    let sent = known(ti.last_data_sent(), up)?;
    let recv = known(ti.last_data_recv(), up);
    let acked = ti.unacked().unwrap_or(0) == 0 && w.socket.send_q == 0;
    let on_it = w.thread.as_ref().is_some_and(|b| b.fds.contains(&w.fd));
    let ms = match recv {
        None => sent,
        Some(r) if r > sent => sent,
        Some(r) if on_it => r,
        Some(_) => return None,
    };
    (acked && ms >= stall).then_some(ms)
}

/// Names, in each finding that blames a process, the longest of its waits.
pub fn attach(snap: &Snapshot, t: &Thresholds, out: &mut [Finding]) {
    if snap.waiting.is_empty() {
        return;
    }
    let stall = t.stall.as_millis() as u32;
    for f in out.iter_mut() {
        if blamed(std::slice::from_ref(f)).is_empty() {
            continue;
        }
        let best = snap
            .waiting
            .iter()
            .filter(|w| f.pids.contains(&w.pid))
            .filter_map(|w| Some((waited(w, stall, snap.host.uptime_ms)?, w)))
            .max_by_key(|(ms, _)| *ms);
        let Some((ms, w)) = best else { continue };
        let on = WaitingOn {
            pid: w.pid,
            fd: w.fd,
            local: w.socket.local.addr(),
            remote: w.socket.remote.addr(),
            peer_server: well_known(w.socket.remote.port()).map(|(name, _)| name),
            waited_ms: ms,
            syscall: w.thread.as_ref().map(|b| b.syscall.clone()),
            on_socket: w.thread.as_ref().is_some_and(|b| b.fds.contains(&w.fd)),
            wchan: w
                .thread
                .as_ref()
                .map(|b| b.wchan.clone())
                .filter(|c| !c.is_empty() && c != "0"),
        };
        f.explanation = format!("{} {}", sentence(snap, &on, w), f.explanation);
        f.waiting_on = Some(on);
    }
}

/// "uvicorn (pid 12) has waited 24 s for a reply from 10.0.1.2:5432
/// (PostgreSQL) on its connection from 10.0.1.1:41234 (fd 7), blocked in
/// poll on it: the likely cause."
fn sentence(snap: &Snapshot, on: &WaitingOn, w: &Waiting) -> String {
    let name = snap
        .processes
        .get(&on.pid)
        .map(|p| {
            super::Server::detect(p).map_or_else(
                || String::from_utf8_lossy(&p.comm).into_owned(),
                |s| s.name().to_string(),
            )
        })
        .unwrap_or_else(|| "the process".into());
    let peer = on.peer_server.map_or(String::new(), |s| format!(" ({s})"));
    let tid = w.thread.as_ref().map_or(on.pid, |b| b.tid);
    let which = if tid == on.pid {
        "its main thread".to_string()
    } else {
        format!("its thread {tid}")
    };
    let thread = match (&on.syscall, on.on_socket) {
        (Some(call), true) => format!(", {which} blocked in {call} on it"),
        (Some(call), false) => format!(", {which} blocked in {call}"),
        (None, _) => String::new(),
    };
    format!(
        "Likely cause: {name} (pid {}) has waited {} for a reply from {}{peer} on its connection from {} \
         (fd {}){thread}.",
        on.pid,
        human(u64::from(on.waited_ms)),
        on.remote,
        on.local,
        on.fd
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::classify;
    use crate::model::{Blocked, TcpState};
    use crate::testing::{silent, snapshot, sock};

    /// uvicorn's CLOSE_WAIT, and its connection to PostgreSQL that sent a
    /// query 24 s ago: the finding names it; an idle pooled connection
    /// (its answer came after the request) is no wait.
    #[test]
    fn a_blamed_process_waiting_on_its_database() {
        let cw = silent(
            sock(TcpState::CloseWait, "10.0.1.1:30020", "10.0.9.9:4000", 7),
            30_000,
        );
        let listener = sock(TcpState::Listen, "10.0.1.1:30020", "0.0.0.0:0", 6);
        let mut snap = snapshot(vec![listener, cw]);
        let mut db = sock(TcpState::Established, "10.0.1.1:41234", "10.0.1.2:5432", 8);
        let ti = db.tcp_info.as_mut().expect("ti");
        ti.last_data_sent = 24_000;
        ti.last_data_recv = 24_000;
        let thread = Blocked {
            tid: 100,
            syscall: "poll".into(),
            fds: vec![9],
            wchan: "do_sys_poll".into(),
        };
        snap.waiting.push(Waiting {
            pid: 100,
            fd: 9,
            socket: db.clone(),
            thread: Some(thread.clone()),
        });
        let t = Thresholds::default();
        let f = classify(&snap, &t);
        let w = f[0].waiting_on.as_ref().expect("named");
        assert_eq!(
            (w.pid, w.waited_ms, w.peer_server),
            (100, 24_000, Some("PostgreSQL"))
        );
        assert!(w.on_socket);
        assert!(
            f[0].explanation.starts_with(
                "Likely cause: uvicorn (pid 100) has waited 24 s for a reply from 10.0.1.2:5432 \
                 (PostgreSQL) on its connection from 10.0.1.1:41234 (fd 9), its main thread blocked \
                 in poll on it."
            ),
            "{}",
            f[0].explanation
        );
        // Answered, and no thread waits on it: an idle pooled connection.
        snap.waiting[0].thread = None;
        let ti = snap.waiting[0].socket.tcp_info.as_mut().expect("ti");
        ti.last_data_recv = 23_000;
        assert!(classify(&snap, &t)[0].waiting_on.is_none());
        // Nothing received since the request: waiting, whatever the thread.
        let ti = snap.waiting[0].socket.tcp_info.as_mut().expect("ti");
        ti.last_data_recv = 60_000;
        assert_eq!(
            classify(&snap, &t)[0]
                .waiting_on
                .as_ref()
                .map(|w| w.waited_ms),
            Some(24_000)
        );
        // Younger than --stall: not yet a cause.
        let ti = snap.waiting[0].socket.tcp_info.as_mut().expect("ti");
        ti.last_data_sent = 2_000;
        assert!(classify(&snap, &t)[0].waiting_on.is_none());
        assert_eq!(blamed(&classify(&snap, &t)), vec![100]);
    }
}
