//! The servers whose behaviour the advice knows, recognised by a
//! process's name and command line.

use crate::model::{Args, Process, Snapshot};

/// Servers whose behaviour the advice knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Server {
    Uvicorn,
    Gunicorn,
    /// gunicorn running uvicorn's worker class (`-k
    /// uvicorn.workers.UvicornWorker`): gunicorn's master and settings,
    /// each worker an asyncio event loop.
    UvicornWorker,
    Nginx,
    Node,
    Java,
    /// Docker's userland proxy: it forwards a published port to a
    /// container and holds both ends of every forwarded connection.
    DockerProxy,
    Postgres,
    /// RabbitMQ (AMQP), by its process (beam.smp running rabbit) or its
    /// port, 5672: the peer of a client's connections.
    RabbitMq,
    /// Redis, by its process (redis-server) or its port, 6379.
    Redis,
    /// MySQL or MariaDB, by its process (mysqld, mariadbd) or its port,
    /// 3306.
    MySql,
    /// An HTTP server known only by its port (80, 443, 8000, 8080): the
    /// peer of a client's connections.
    Http,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Uvicorn => "uvicorn",
            Server::Gunicorn | Server::UvicornWorker => "gunicorn",
            Server::Nginx => "nginx",
            Server::Node => "node",
            Server::Java => "java",
            Server::DockerProxy => "docker-proxy",
            Server::Postgres => "postgres",
            Server::RabbitMq => "rabbitmq",
            Server::Redis => "redis",
            Server::MySql => "mysql",
            Server::Http => "http",
        }
    }

    /// What its process tree calls the process that starts the workers.
    pub fn supervisor(self) -> &'static str {
        match self {
            // uvicorn/supervisors/: Multiprocess (--workers), ChangeReload
            // (--reload).
            Server::Uvicorn => "supervisor",
            // gunicorn's arbiter, nginx's master process.
            Server::Gunicorn | Server::UvicornWorker | Server::Nginx => "master",
            // node's cluster.isPrimary.
            Server::Node => "primary",
            _ => "parent",
        }
    }

    /// Whether it serves HTTP: its clients' idle connections are a
    /// keep-alive pool.
    pub fn is_http(self) -> bool {
        matches!(
            self,
            Server::Uvicorn
                | Server::Gunicorn
                | Server::UvicornWorker
                | Server::Nginx
                | Server::Node
                | Server::Http
        )
    }

    /// Whose settings its command line states: gunicorn's for its uvicorn
    /// workers.
    pub fn settings(self) -> Server {
        match self {
            Server::UvicornWorker => Server::Gunicorn,
            s => s,
        }
    }

    /// Whether that supervisor accepts connections itself. uvicorn's
    /// supervisor, gunicorn's master and nginx's master only hold the
    /// listener for their workers; node's cluster primary accepts and hands
    /// each connection to a worker (round-robin, the default but on
    /// Windows: nodejs.org/api/cluster.html "How it works").
    pub fn supervisor_accepts(self) -> bool {
        self == Server::Node
    }

    /// Recognises a server by its comm or command line; a worker started by
    /// Python's multiprocessing by its parent's (`uvicorn --workers`,
    /// `--reload`). gunicorn wins over uvicorn: `gunicorn -k
    /// uvicorn.workers.UvicornWorker` is gunicorn.
    pub fn detect(p: &Process) -> Option<Server> {
        Server::detect_parts(&p.comm, &p.cmdline).or_else(|| {
            p.parent_cmdline
                .as_deref()
                .and_then(|c| Server::detect_parts(b"", c))
        })
    }

    fn detect_parts(comm: &[u8], cmdline: &[u8]) -> Option<Server> {
        let args = Args::new(cmdline);
        let words: Vec<&[u8]> = args.names().collect();
        let has = |name: &[u8]| {
            comm == name
                || words
                    .iter()
                    .any(|w| *w == name || w.strip_suffix(b":") == Some(name))
        };
        if has(b"gunicorn") {
            let class = args.value(&["--worker-class", "-k"]).unwrap_or_default();
            Some(if class.starts_with("uvicorn.") {
                Server::UvicornWorker
            } else {
                Server::Gunicorn
            })
        } else if has(b"uvicorn") {
            Some(Server::Uvicorn)
        } else if comm == b"nginx" || words.first().is_some_and(|w| *w == b"nginx:") {
            Some(Server::Nginx)
        } else if comm == b"docker-proxy" {
            Some(Server::DockerProxy)
        } else if comm == b"postgres" || comm == b"postmaster" {
            Some(Server::Postgres)
        } else if comm == b"redis-server" {
            Some(Server::Redis)
        } else if comm == b"mysqld" || comm == b"mariadbd" {
            Some(Server::MySql)
        } else if comm == b"beam.smp" && cmdline.windows(6).any(|w| w == b"rabbit") {
            Some(Server::RabbitMq)
        } else if comm == b"node" || comm == b"nodejs" {
            Some(Server::Node)
        } else if comm == b"java" {
            Some(Server::Java)
        } else {
            None
        }
    }
}

/// What a process is to its server, in a snapshot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// It runs alone, or its tree is not in the snapshot.
    Alone,
    /// It started workers of the same server that the snapshot holds.
    Supervisor(Server),
    /// A worker of the supervisor with this pid.
    Worker(Server, u32),
}

/// The role of each of `pids` in its server's process tree.
pub fn roles(snap: &Snapshot, pids: &[u32]) -> Vec<(u32, Role)> {
    // Parents with a worker of their own server in the snapshot.
    let parents: std::collections::BTreeSet<(u32, Server)> = snap
        .processes
        .values()
        .filter_map(|c| {
            let s = Server::detect(c)?;
            let pp = c.ppid?;
            let parent = snap.processes.get(&pp)?;
            (Server::detect(parent) == Some(s)).then_some((pp, s))
        })
        .collect();
    pids.iter()
        .map(|&pid| {
            let Some(p) = snap.processes.get(&pid) else {
                return (pid, Role::Alone);
            };
            let Some(s) = Server::detect(p) else {
                return (pid, Role::Alone);
            };
            let role = match p.ppid {
                Some(pp) if parents.contains(&(pp, s)) => Role::Worker(s, pp),
                // Forked by multiprocessing: a worker, its parent or not.
                Some(pp) if p.parent_cmdline.is_some() => Role::Worker(s, pp),
                _ if parents.contains(&(pid, s)) => Role::Supervisor(s),
                _ => Role::Alone,
            };
            (pid, role)
        })
        .collect()
}

/// The server at `port` of outbound sockets: the server `owners` (of a
/// listener of this snapshot on that port) run, or the one its well-known
/// port names.
pub fn peer_server(snap: &Snapshot, owners: &[u32], port: u16) -> Option<Server> {
    owners
        .iter()
        .filter_map(|p| snap.processes.get(p))
        .find_map(Server::detect)
        .or_else(|| well_known(port).and_then(|(_, server)| server))
}

/// The servers known by their port at the other end of a connection: what
/// to call them, and whose advice applies where the advice knows them.
const WELL_KNOWN: [(u16, &str, Option<Server>); 12] = [
    (5432, "PostgreSQL", Some(Server::Postgres)),
    (3306, "MySQL", Some(Server::MySql)),
    (6379, "Redis", Some(Server::Redis)),
    (5672, "RabbitMQ", Some(Server::RabbitMq)),
    (27017, "MongoDB", None),
    (11211, "memcached", None),
    (9200, "Elasticsearch", None),
    (9092, "Kafka", None),
    (80, "an HTTP server", Some(Server::Http)),
    (443, "an HTTP server", Some(Server::Http)),
    (8000, "an HTTP server", Some(Server::Http)),
    (8080, "an HTTP server", Some(Server::Http)),
];

/// The server a well-known port belongs to, by name, and as the advice
/// knows it.
pub fn well_known(port: u16) -> Option<(&'static str, Option<Server>)> {
    WELL_KNOWN
        .iter()
        .find(|(p, _, _)| *p == port)
        .map(|&(_, name, server)| (name, server))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One table names a peer for a wait and picks the advice for a pool:
    /// the two agree on every port.
    #[test]
    fn a_well_known_port_names_its_server_and_its_advice() {
        assert_eq!(
            well_known(5432),
            Some(("PostgreSQL", Some(Server::Postgres)))
        );
        assert_eq!(well_known(27017), Some(("MongoDB", None)));
        assert_eq!(
            well_known(8000),
            Some(("an HTTP server", Some(Server::Http)))
        );
        assert_eq!(well_known(30020), None);
        let snap = crate::testing::snapshot(Vec::new());
        assert_eq!(peer_server(&snap, &[], 3306), Some(Server::MySql));
        assert_eq!(peer_server(&snap, &[], 9092), None);
    }
}
