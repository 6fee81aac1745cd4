//! The servers whose behaviour the advice knows, recognised by a
//! process's name and command line.

use crate::model::{Args, Process, Snapshot};

/// Servers whose behaviour the advice knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    Uvicorn,
    Gunicorn,
    Nginx,
    Node,
    Java,
    /// Docker's userland proxy: it forwards a published port to a
    /// container and holds both ends of every forwarded connection.
    DockerProxy,
    Postgres,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Uvicorn => "uvicorn",
            Server::Gunicorn => "gunicorn",
            Server::Nginx => "nginx",
            Server::Node => "node",
            Server::Java => "java",
            Server::DockerProxy => "docker-proxy",
            Server::Postgres => "postgres",
        }
    }

    /// Recognises a server by its comm or command line. gunicorn wins over
    /// uvicorn: `gunicorn -k uvicorn.workers.UvicornWorker` is gunicorn.
    pub fn detect(p: &Process) -> Option<Server> {
        let args = Args::new(&p.cmdline);
        let words: Vec<&[u8]> = args.names().collect();
        let has = |name: &[u8]| {
            p.comm == name
                || words
                    .iter()
                    .any(|w| *w == name || w.strip_suffix(b":") == Some(name))
        };
        if has(b"gunicorn") {
            Some(Server::Gunicorn)
        } else if has(b"uvicorn") {
            Some(Server::Uvicorn)
        } else if p.comm == b"nginx" || words.first().is_some_and(|w| *w == b"nginx:") {
            Some(Server::Nginx)
        } else if p.comm == b"docker-proxy" {
            Some(Server::DockerProxy)
        } else if p.comm == b"postgres" || p.comm == b"postmaster" {
            Some(Server::Postgres)
        } else if p.comm == b"node" || p.comm == b"nodejs" {
            Some(Server::Node)
        } else if p.comm == b"java" {
            Some(Server::Java)
        } else {
            None
        }
    }
}

/// The server at `port` of outbound sockets: the server `owners` (of a
/// listener of this snapshot on that port) run, or PostgreSQL's port.
pub fn peer_server(snap: &Snapshot, owners: &[u32], port: u16) -> Option<Server> {
    owners
        .iter()
        .filter_map(|p| snap.processes.get(p))
        .find_map(Server::detect)
        .or((port == 5432).then_some(Server::Postgres))
}
