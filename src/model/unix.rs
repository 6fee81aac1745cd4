//! Unix-domain sockets and the links between them and TCP.

use super::*;

/// A unix-domain socket's type: the connection-oriented ones are scanned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnixType {
    Stream,
    Seqpacket,
}

impl UnixType {
    /// From `udiag_type` or /proc/net/unix's Type (SOCK_STREAM 1,
    /// SOCK_SEQPACKET 5); datagram sockets are not connections.
    pub fn from_kernel(n: u32) -> Option<UnixType> {
        match n {
            1 => Some(UnixType::Stream),
            5 => Some(UnixType::Seqpacket),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            UnixType::Stream => "stream",
            UnixType::Seqpacket => "seqpacket",
        }
    }
}

/// A unix-domain stream or seqpacket socket (unix_diag, see sock_diag(7),
/// or /proc/net/unix). The server's end of a connection carries its
/// listener's name; the client's end is unnamed and has the server's end
/// as its peer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    #[serde(rename = "type")]
    pub kind: UnixType,
    /// LISTEN, ESTABLISHED, SYN_SENT (connecting) or CLOSE (unconnected).
    pub state: TcpState,
    /// The name it is bound to, as the kernel has it: a path, an abstract
    /// name (a leading NUL), or empty (unnamed).
    pub name: Vec<u8>,
    pub inode: u64,
    /// The inode of the other end of a connection; 0 when none or unknown.
    pub peer: u64,
    /// A listener: connections waiting to be accepted; else bytes unread.
    pub recv_q: u32,
    /// A listener: its backlog; else bytes not yet read by the peer.
    pub send_q: u32,
    /// The queues came from the kernel (not /proc/net/unix, which has none).
    pub queues: bool,
    /// A listener: the client ends of the connections waiting in its
    /// queue (`UNIX_DIAG_ICONS`). Their server ends have no inode until
    /// accepted: a client end's peer is 0 meanwhile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<u64>,
    /// The first process holding it; the others are in the snapshot's
    /// shared map, as for TCP sockets.
    #[serde(default)]
    pub owner: u32,
}

impl UnixSocket {
    /// Its name as `ss` writes it: the path, `@name` for an abstract one,
    /// `*` when unnamed. Bytes from outside: render them through the
    /// sanitizer.
    pub fn path(&self) -> Vec<u8> {
        match self.name.split_first() {
            None => b"*".to_vec(),
            Some((0, rest)) => [&b"@"[..], rest].concat(),
            Some(_) => self.name.clone(),
        }
    }

    /// Whether `want` (as `--path` takes it: a path, or `@name`) names it.
    pub fn named(&self, want: &[u8]) -> bool {
        !self.name.is_empty() && self.path() == want
    }
}

/// How a unix listener was tied to a scanned port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnixLinkHow {
    /// The port's owners hold connections to it.
    Connected,
    /// The port's owner's configuration names it (this file).
    Config(String),
}

/// A unix listener behind a scanned port: the upstream a proxy passes to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixLink {
    /// The listener's name (as [`UnixSocket::name`]).
    pub name: Vec<u8>,
    /// The scanned port, and the processes on it that pass to the listener.
    pub port: u16,
    pub proxy_pids: Vec<u32>,
    pub how: UnixLinkHow,
}
