//! Network namespaces: which one `--netns` names, every one in use on the
//! host, and running a collector inside one.
//!
//! `setns(2)` changes the namespace of the calling thread only, so a
//! collector runs on a thread of its own that enters the namespace first.
//! Everything per namespace is read from that thread: the netlink socket
//! belongs to the namespace it is opened in, `/proc/thread-self/net` shows
//! the thread's namespace (where `/proc/self/net` would show the main
//! thread's), and a `/proc/sys/net` file answers for the namespace of the
//! thread that opens it. See network_namespaces(7), setns(2), proc(5).

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, setns};

use crate::error::{Error, Result};
use crate::model::Container;

/// Where `ip netns` keeps its names.
pub const RUN_NETNS: &str = "/run/netns";

/// `--netns NAME|PATH|PID`: a pid names its namespace, a path is used as
/// it is, anything else is an `ip netns` name.
pub fn resolve(arg: &str) -> Result<PathBuf> {
    let path = if !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_digit()) {
        PathBuf::from(format!("/proc/{arg}/ns/net"))
    } else if arg.contains('/') {
        PathBuf::from(arg)
    } else {
        Path::new(RUN_NETNS).join(arg)
    };
    match fs::metadata(&path) {
        Ok(_) => Ok(path),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(Error::Netns {
            path,
            reason: "permission denied: run as root to look into another user's namespace".into(),
        }),
        Err(e) => Err(Error::Netns {
            path,
            reason: format!(
                "not found ({e}); `ip netns list` shows the names, a pid or /proc/PID/ns/net works too"
            ),
        }),
    }
}

/// The inode that identifies a namespace file.
pub fn inode(path: &Path) -> Option<u64> {
    fs::metadata(path).ok().map(|m| m.ino())
}

/// `ip netns` names by namespace inode.
pub fn names() -> BTreeMap<u64, String> {
    let mut out = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(RUN_NETNS) {
        for e in dir.flatten() {
            if let (Some(ino), Some(name)) = (inode(&e.path()), e.file_name().to_str()) {
                out.entry(ino).or_insert_with(|| name.to_string());
            }
        }
    }
    out
}

/// Every network namespace in use: those of running processes (distinct
/// `/proc/*/ns/net`), then named ones no process is in. Inode → a path
/// that enters it, and the pids inside.
pub fn all(proc_root: &Path) -> BTreeMap<u64, (PathBuf, Vec<u32>)> {
    let mut out: BTreeMap<u64, (PathBuf, Vec<u32>)> = BTreeMap::new();
    if let Ok(dir) = fs::read_dir(proc_root) {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let link = e.path().join("ns/net");
            if let Some(ino) = inode(&link) {
                out.entry(ino)
                    .or_insert_with(|| (link, Vec::new()))
                    .1
                    .push(pid);
            }
        }
    }
    if let Ok(dir) = fs::read_dir(RUN_NETNS) {
        for e in dir.flatten() {
            if let Some(ino) = inode(&e.path()) {
                out.entry(ino).or_insert_with(|| (e.path(), Vec::new()));
            }
        }
    }
    out
}

/// Every path that enters the namespace `ino` found at `path` with `pids`
/// in it: its `ip netns` bind mount first (it outlives any process), then
/// each member's `/proc/PID/ns/net`, so that a member exiting during the
/// scan does not lose a live namespace.
pub fn ways_in(
    ino: u64,
    path: &Path,
    pids: &[u32],
    names: &BTreeMap<u64, String>,
    proc_root: &Path,
) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = names
        .get(&ino)
        .map(|n| Path::new(RUN_NETNS).join(n))
        .into_iter()
        .collect();
    out.push(path.to_path_buf());
    out.extend(
        pids.iter()
            .map(|p| proc_root.join(p.to_string()).join("ns/net")),
    );
    out.dedup();
    out
}

/// Opens the first of `paths` that is still the namespace `ino`: a member
/// that exited is skipped, and so is a pid reused by a process elsewhere.
pub fn open_ns(ino: u64, paths: &[PathBuf]) -> Option<(PathBuf, File)> {
    paths.iter().find_map(|p| {
        let f = File::open(p).ok()?;
        (f.metadata().ok()?.ino() == ino).then(|| (p.clone(), f))
    })
}

/// Runs `f` on a thread that first enters the namespace at `path`.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    let fd = File::open(path).map_err(|e| Error::Netns {
        path: path.to_path_buf(),
        reason: format!("cannot open it ({e})"),
    })?;
    run_in_file(path, fd, f)
}

/// Runs `f` on a thread that first enters the namespace open as `fd`
/// (from `path`, for the messages).
pub fn run_in_file<T: Send>(
    path: &Path,
    fd: File,
    f: impl FnOnce() -> Result<T> + Send,
) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                    path: path.to_path_buf(),
                    reason: match e {
                        nix::errno::Errno::EINVAL => {
                            "is not a network namespace (/proc/PID/ns/net or \
                                                      /run/netns/NAME is)"
                                .into()
                        }
                        nix::errno::Errno::EPERM => "cannot enter it: entering a namespace takes \
                                                     CAP_SYS_ADMIN: run as root"
                            .into(),
                        e => format!("cannot enter it ({e})"),
                    },
                })?;
                f()
            })
            .join()
            .unwrap_or_else(|_| {
                Err(Error::Netns {
                    path: path.to_path_buf(),
                    reason: "the collector thread failed".into(),
                })
            })
    })
}

fn is_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Finds a container id in `/proc/PID/cgroup` (v1 or v2 lines): the last
/// path component that is, or ends in, 64 hex digits, with the runtime its
/// prefix or path names: `/docker/ID`, `docker-ID.scope`,
/// `cri-containerd-ID.scope`, `crio-ID.scope`, `libpod-ID.scope`,
/// `/kubepods/.../ID`.
pub fn parse_cgroup(text: &str) -> Option<(&'static str, String)> {
    for line in text.lines() {
        let path = line.splitn(3, ':').nth(2)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        while let Some(last) = parts.pop() {
            let stem = last.strip_suffix(".scope").unwrap_or(last);
            let (prefix, id) = match stem.rsplit_once('-') {
                Some((p, id)) if is_id(id) => (p, id),
                _ if is_id(stem) => ("", stem),
                _ => continue,
            };
            let parent = parts.join("/");
            let runtime = match prefix {
                "docker" => "docker",
                "cri-containerd" | "containerd" => "containerd",
                "crio" => "cri-o",
                "libpod" => "podman",
                _ if parent.contains("docker") => "docker",
                _ if parent.contains("libpod") || parent.contains("machine.slice") => "podman",
                _ if parent.contains("kubepods") => "containerd",
                _ => continue,
            };
            return Some((runtime, id.to_ascii_lowercase()));
        }
    }
    None
}

/// Where the container runtimes running on this host keep their state:
/// dockerd's data root (`--data-root`, or `data-root` in its daemon.json,
/// or /var/lib/docker) and containerd's state directory (`--state`, or
/// `state` in its config.toml, or /run/containerd). Read from the running
/// daemons' command lines, so that a non-default root still names
/// containers. Paths are absolute, as the daemons see them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Roots {
    pub docker: Vec<PathBuf>,
    pub containerd: Vec<PathBuf>,
}

/// The value of one of `flags` on a daemon's command line.
fn arg_value(cmdline: &[u8], flags: &[&str]) -> Option<String> {
    crate::model::Args::new(cmdline)
        .value(flags)
        .map(str::to_string)
}

/// `key = "value"` at the top of a TOML file (before any table), as
/// containerd's config.toml sets `root` and `state`.
fn toml_top_string(text: &str, key: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            return None;
        }
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == key
        {
            return Some(v.trim().trim_matches('"').to_string());
        }
    }
    None
}

impl Roots {
    /// The roots of the daemons running under `proc_root`, files read
    /// under `root` (`/`), defaults last.
    pub fn find(root: &Path, proc_root: &Path) -> Roots {
        let inside = |p: &str| root.join(p.trim_start_matches('/'));
        let mut r = Roots::default();
        for entry in fs::read_dir(proc_root).into_iter().flatten().flatten() {
            let dir = entry.path();
            let Ok(comm) = fs::read(dir.join("comm")) else {
                continue;
            };
            let comm = comm.strip_suffix(b"\n").unwrap_or(&comm);
            let Ok(cmdline) = fs::read(dir.join("cmdline")) else {
                continue;
            };
            if comm == b"dockerd" {
                let from_file = || {
                    let file = arg_value(&cmdline, &["--config-file"])
                        .unwrap_or_else(|| "/etc/docker/daemon.json".into());
                    let v: serde_json::Value =
                        serde_json::from_slice(&fs::read(inside(&file)).ok()?).ok()?;
                    let d = v.get("data-root").or_else(|| v.get("graph"))?;
                    Some(d.as_str()?.to_string())
                };
                if let Some(d) =
                    arg_value(&cmdline, &["--data-root", "-g", "--graph"]).or_else(from_file)
                {
                    r.docker.push(inside(&d));
                }
            } else if comm == b"containerd" {
                let from_file = || {
                    let file = arg_value(&cmdline, &["--config", "-c"])
                        .unwrap_or_else(|| "/etc/containerd/config.toml".into());
                    toml_top_string(&fs::read_to_string(inside(&file)).ok()?, "state")
                };
                if let Some(d) = arg_value(&cmdline, &["--state"]).or_else(from_file) {
                    r.containerd.push(inside(&d));
                }
            }
        }
        r.docker.push(inside("/var/lib/docker"));
        r.containerd.push(inside("/run/containerd"));
        r.docker.dedup();
        r.containerd.dedup();
        r
    }

    /// The roots of this host, found once per run.
    pub fn host() -> &'static Roots {
        static ROOTS: std::sync::OnceLock<Roots> = std::sync::OnceLock::new();
        ROOTS.get_or_init(|| Roots::find(Path::new("/"), Path::new("/proc")))
    }
}

/// Picks a container's name out of its runtime's JSON state.
type Pick<'a> = &'a dyn Fn(&serde_json::Value) -> Option<String>;

/// A container's name from its runtime's state under `roots`: docker's
/// `config.v2.json` ("Name": "/web"), containerd's CRI annotations.
pub fn container_name(roots: &Roots, runtime: &str, id: &str) -> Option<String> {
    let docker =
        |v: &serde_json::Value| Some(v.get("Name")?.as_str()?.trim_start_matches('/').to_string());
    let cri = |v: &serde_json::Value| {
        let a = v.get("annotations")?;
        let c = a.get("io.kubernetes.cri.container-name")?.as_str()?;
        let pod = a
            .get("io.kubernetes.cri.sandbox-name")
            .and_then(|p| p.as_str());
        Some(pod.map_or(c.to_string(), |p| format!("{p}/{c}")))
    };
    let (paths, pick): (Vec<PathBuf>, Pick) = match runtime {
        "docker" => (
            roots
                .docker
                .iter()
                .map(|r| r.join(format!("containers/{id}/config.v2.json")))
                .collect(),
            &docker,
        ),
        "containerd" => (
            roots
                .containerd
                .iter()
                .map(|r| {
                    r.join(format!(
                        "io.containerd.runtime.v2.task/k8s.io/{id}/config.json"
                    ))
                })
                .collect(),
            &cri,
        ),
        _ => return None,
    };
    paths.iter().find_map(|p| {
        let text = fs::read(p).ok()?;
        pick(&serde_json::from_slice(&text).ok()?)
    })
}

/// The container `pid` runs in, if any.
pub fn container_of(proc_root: &Path, pid: u32) -> Option<Container> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let (runtime, id) = parse_cgroup(&text)?;
    let name = container_name(Roots::host(), runtime, &id);
    Some(Container {
        runtime: runtime.to_string(),
        id,
        name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8e76985e7965e551246d364494df02c78e76985e7965e551246d364494df02c7";

    #[test]
    fn cgroup_paths_of_the_runtimes() {
        let cases = [
            (
                format!("0::/system.slice/docker-{ID}.scope\n"),
                Some("docker"),
            ),
            (format!("12:pids:/docker/{ID}\n0::/\n"), Some("docker")),
            (
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1.slice/cri-containerd-{ID}.scope\n"
                ),
                Some("containerd"),
            ),
            (
                format!("0::/kubepods/besteffort/pod7f1c/{ID}\n"),
                Some("containerd"),
            ),
            (
                format!("0::/kubepods.slice/crio-{ID}.scope\n"),
                Some("cri-o"),
            ),
            (
                format!("0::/machine.slice/libpod-{ID}.scope/container\n"),
                Some("podman"),
            ),
            (
                "0::/user.slice/user-1000.slice/session-2.scope\n".to_string(),
                None,
            ),
            (
                "4:memory:/process_api/8e76985e7965e551246d364494df02c7\n0::/\n".to_string(),
                None,
            ),
            ("garbage".to_string(), None),
        ];
        for (text, want) in cases {
            let got = parse_cgroup(&text);
            assert_eq!(got.as_ref().map(|g| g.0), want, "{text}");
            if let Some((_, id)) = got {
                assert_eq!(id, ID);
            }
        }
        let c = Container {
            runtime: "docker".into(),
            id: ID.into(),
            name: None,
        };
        assert_eq!(c.short_id(), "8e76985e7965");
    }

    #[test]
    fn container_names_from_runtime_state() {
        let root = std::env::temp_dir().join(format!("zombiescan-names-{}", std::process::id()));
        let docker = root.join(format!("var/lib/docker/containers/{ID}"));
        let k8s = root.join(format!(
            "run/containerd/io.containerd.runtime.v2.task/k8s.io/{ID}"
        ));
        fs::create_dir_all(&docker).expect("mkdir");
        fs::create_dir_all(&k8s).expect("mkdir");
        fs::write(docker.join("config.v2.json"), r#"{"ID":"x","Name":"/web"}"#).expect("write");
        fs::write(
            k8s.join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.container-name":"api","io.kubernetes.cri.sandbox-name":"api-7d9f"}}"#,
        )
        .expect("write");
        let roots = Roots {
            docker: vec![root.join("srv/docker"), root.join("var/lib/docker")],
            containerd: vec![root.join("run/containerd")],
        };
        assert_eq!(container_name(&roots, "docker", ID).as_deref(), Some("web"));
        assert_eq!(
            container_name(&roots, "containerd", ID).as_deref(),
            Some("api-7d9f/api")
        );
        assert_eq!(container_name(&roots, "podman", ID), None);
        assert_eq!(
            container_name(&roots, "docker", &ID.replace('8', "9")),
            None
        );
        let _ = fs::remove_dir_all(&root);
    }

    /// The data roots of the running daemons: from their command lines,
    /// else their config files, else the defaults.
    #[test]
    fn runtime_roots_from_the_daemons_command_lines_and_configs() {
        let root = std::env::temp_dir().join(format!("zombiescan-roots-{}", std::process::id()));
        let proc_root = root.join("proc");
        let daemon = |pid: u32, comm: &str, cmdline: &[u8]| {
            let d = proc_root.join(pid.to_string());
            fs::create_dir_all(&d).expect("mkdir");
            fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
            fs::write(d.join("cmdline"), cmdline).expect("cmdline");
        };
        daemon(
            10,
            "dockerd",
            b"/usr/sbin/dockerd\0--data-root\0/srv/docker\0-H\0fd://\0",
        );
        daemon(
            11,
            "dockerd",
            b"/usr/sbin/dockerd\0--config-file=/etc/d2.json\0",
        );
        daemon(
            12,
            "containerd",
            b"/usr/bin/containerd\0--config\0/etc/ctd.toml\0",
        );
        daemon(13, "bash", b"bash\0--data-root\0/nope\0");
        fs::create_dir_all(root.join("etc")).expect("etc");
        fs::write(
            root.join("etc/d2.json"),
            r#"{"data-root": "/data/docker2"}"#,
        )
        .expect("json");
        fs::write(
            root.join("etc/ctd.toml"),
            "version = 2\nstate = \"/var/run/ctd\"\n[plugins]\nstate = \"/not/this\"\n",
        )
        .expect("toml");
        let r = Roots::find(&root, &proc_root);
        let mut docker = r.docker.clone();
        docker.sort();
        assert_eq!(
            docker,
            vec![
                root.join("data/docker2"),
                root.join("srv/docker"),
                root.join("var/lib/docker")
            ]
        );
        assert_eq!(
            r.containerd,
            vec![root.join("var/run/ctd"), root.join("run/containerd")]
        );
        let _ = fs::remove_dir_all(&root);
    }

    #[test]
    fn netns_arguments() {
        let me = std::process::id().to_string();
        assert_eq!(
            resolve(&me).ok(),
            Some(PathBuf::from(format!("/proc/{me}/ns/net")))
        );
        assert_eq!(
            resolve("/proc/self/ns/net").ok(),
            Some(PathBuf::from("/proc/self/ns/net"))
        );
        let err = resolve("zs-no-such-namespace").expect_err("missing");
        assert!(
            err.to_string().contains("/run/netns/zs-no-such-namespace"),
            "{err}"
        );
        assert!(resolve("99999999").is_err());
    }

    /// A way into a namespace is taken only while it still leads there: a
    /// member that exited is skipped for the next, and a path that now
    /// leads elsewhere (a pid reused) is never taken.
    #[test]
    fn the_first_way_in_that_still_leads_there() {
        let me = PathBuf::from("/proc/self/ns/net");
        let Some(ino) = inode(&me) else { return };
        let gone = PathBuf::from("/proc/999999999/ns/net");
        let (p, _) = open_ns(ino, &[gone.clone(), me.clone()]).expect("a way in");
        assert_eq!(p, me);
        assert!(
            open_ns(ino + 1, std::slice::from_ref(&me)).is_none(),
            "another namespace"
        );
        assert!(open_ns(ino, &[gone]).is_none());
        let names = BTreeMap::from([(ino, "web1".to_string())]);
        assert_eq!(
            ways_in(ino, &me, &[7, 8], &names, Path::new("/proc")),
            vec![
                PathBuf::from("/run/netns/web1"),
                me,
                PathBuf::from("/proc/7/ns/net"),
                PathBuf::from("/proc/8/ns/net"),
            ]
        );
    }
}
