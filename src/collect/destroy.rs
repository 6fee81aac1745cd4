//! Closing chosen sockets through the kernel: a SOCK_DESTROY request per
//! socket (sock_diag(7); net/ipv4/inet_diag.c inet_diag_cmd_exact and
//! tcp_diag_destroy, which calls tcp_abort), as `ss -K` does, but by each
//! socket's exact identity: both addresses and ports, and the inet_diag
//! cookie when the scan had one, so that a socket that closed meanwhile, or
//! a new one on the same ports, is never hit (the kernel checks the cookie
//! and answers ENOENT). The peer gets a RST; the owner's next read or
//! write fails with ECONNABORTED (tcp_abort sets sk_err; a read returns it
//! too, unless a FIN came first: then it reads end-of-file).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_REQUEST, NLMSG_ERROR};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP, SOCK_DESTROY};

use crate::error::{Error, Result};
use crate::model::Destroyed;
use crate::model::{Family, Socket};

/// `INET_DIAG_NOCOOKIE`: match by addresses only.
const NO_COOKIE: u32 = u32::MAX;

/// `struct nlmsghdr` and `struct inet_diag_req_v2` naming `s` exactly.
pub fn request(s: &Socket, seq: u32) -> Vec<u8> {
    const LEN: u32 = 16 + 56;
    let mut buf = Vec::with_capacity(LEN as usize);
    buf.extend_from_slice(&LEN.to_ne_bytes());
    buf.extend_from_slice(&SOCK_DESTROY.to_ne_bytes());
    buf.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    let af = match s.family {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    };
    buf.extend_from_slice(&[af, IPPROTO_TCP, 0, 0]);
    buf.extend_from_slice(&s.state.mask_bit().to_ne_bytes());
    buf.extend_from_slice(&s.local.port().to_be_bytes());
    buf.extend_from_slice(&s.remote.port().to_be_bytes());
    for ip in [s.local.ip(), s.remote.ip()] {
        let mut raw = [0u8; 16];
        match ip {
            IpAddr::V4(v4) => raw[..4].copy_from_slice(&v4.octets()),
            IpAddr::V6(v6) => raw.copy_from_slice(&v6.octets()),
        }
        buf.extend_from_slice(&raw);
    }
    buf.extend_from_slice(&0u32.to_ne_bytes());
    let (lo, hi) = match s.cookie {
        Some(c) => (c.get() as u32, (c.get() >> 32) as u32),
        None => (NO_COOKIE, NO_COOKIE),
    };
    buf.extend_from_slice(&lo.to_ne_bytes());
    buf.extend_from_slice(&hi.to_ne_bytes());
    buf
}

/// The errno of the kernel's answer (`NLMSG_ERROR`, 0 for success).
pub fn answer(buf: &[u8]) -> Option<i32> {
    let ty = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    if ty != NLMSG_ERROR {
        return None;
    }
    let code = i32::from_ne_bytes(buf.get(16..20)?.try_into().ok()?);
    Some(code.saturating_neg())
}

fn outcome(errno: i32) -> Destroyed {
    use nix::errno::Errno;
    if errno == 0 {
        return Destroyed::Destroyed;
    }
    match Errno::from_raw(errno) {
        Errno::ENOENT => Destroyed::AlreadyGone,
        Errno::EOPNOTSUPP => Destroyed::Refused(
            "the kernel cannot destroy this socket (a TIME_WAIT or request socket, or a kernel built \
             without CONFIG_INET_DIAG_DESTROY)"
                .into(),
        ),
        Errno::EPERM => {
            Destroyed::Refused("no CAP_NET_ADMIN in this network namespace: run as root".into())
        }
        e => Destroyed::Refused(format!("the kernel answered {e} ({})", e.desc())),
    }
}

/// Destroys each of `sockets`, in the calling thread's network namespace,
/// and says what became of each.
pub fn destroy(sockets: &[&Socket]) -> Result<Vec<Destroyed>> {
    let sock = super::netlink::open_socket()?;
    let mut buf = vec![0u8; 8192];
    let mut out = Vec::with_capacity(sockets.len());
    for (i, s) in sockets.iter().enumerate() {
        let req = request(s, i as u32 + 1);
        sock.send(&req, 0)
            .map_err(|e| Error::Netlink(format!("send: {e}")))?;
        let n = sock
            .recv(&mut &mut buf[..], 0)
            .map_err(|e| Error::Netlink(format!("recv: {e}")))?;
        let errno = answer(&buf[..n.min(buf.len())])
            .ok_or_else(|| Error::Netlink("SOCK_DESTROY: no answer from the kernel".into()))?;
        out.push(outcome(errno));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    fn sock(local: &str, remote: &str, cookie: u64) -> Socket {
        let mut s = crate::testing::sock(TcpState::CloseWait, local, remote, 7);
        s.cookie = std::num::NonZeroU64::new(cookie);
        s.tcp_info = None;
        s
    }

    /// The request names the socket as inet_diag_req_v2 wants: ports in
    /// network order, IPv4 in the first 4 bytes of the 16, the cookie as
    /// two u32, low first.
    #[test]
    fn a_request_names_one_socket_exactly() {
        let s = sock("10.0.0.1:30020", "10.0.0.9:40000", 0x0000_0002_0000_0001);
        let r = request(&s, 9);
        assert_eq!(r.len(), 72);
        assert_eq!(u32::from_ne_bytes(r[0..4].try_into().expect("len")), 72);
        assert_eq!(u16::from_ne_bytes(r[4..6].try_into().expect("type")), 21);
        assert_eq!(&r[16..20], &[AF_INET, IPPROTO_TCP, 0, 0]);
        assert_eq!(
            u32::from_ne_bytes(r[20..24].try_into().expect("states")),
            1 << 8
        );
        assert_eq!(&r[24..28], &[0x75, 0x44, 0x9c, 0x40]);
        assert_eq!(&r[28..32], &[10, 0, 0, 1]);
        assert_eq!(&r[44..48], &[10, 0, 0, 9]);
        assert_eq!(u32::from_ne_bytes(r[64..68].try_into().expect("lo")), 1);
        assert_eq!(u32::from_ne_bytes(r[68..72].try_into().expect("hi")), 2);
        let mut no_cookie = s.clone();
        no_cookie.cookie = None;
        assert_eq!(&request(&no_cookie, 1)[64..72], &[0xff; 8]);
    }

    #[test]
    fn the_kernels_answers_in_words() {
        let mut ack = vec![0u8; 36];
        ack[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(answer(&ack), Some(0));
        ack[16..20].copy_from_slice(&(-2i32).to_ne_bytes());
        assert_eq!(answer(&ack), Some(2));
        assert_eq!(outcome(0), Destroyed::Destroyed);
        assert_eq!(outcome(2), Destroyed::AlreadyGone);
        assert!(matches!(outcome(95), Destroyed::Refused(r) if r.contains("TIME_WAIT")));
        assert!(matches!(outcome(1), Destroyed::Refused(r) if r.contains("CAP_NET_ADMIN")));
        assert_eq!(answer(&[0u8; 8]), None);
    }
}
