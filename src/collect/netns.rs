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

use super::k8s;
use crate::error::{Error, Result};
use crate::model::{Container, Pod};

/// Where `ip netns` keeps its names.
pub const RUN_NETNS: &str = "/run/netns";

/// `--netns NAME|PATH|PID|pod/NAMESPACE/NAME`: a pid names its namespace,
/// a Kubernetes pod that of a process of its, a path is used as it is,
/// anything else is an `ip netns` name.
pub fn resolve(arg: &str) -> Result<PathBuf> {
    if let Some(rest) = arg.strip_prefix("pod/")
        && let Some((namespace, name)) = rest.split_once('/')
    {
        let logs = Path::new(k8s::LOG_ROOT);
        return match pid_of_pod(Path::new("/proc"), logs, namespace, name) {
            Some(pid) => Ok(PathBuf::from(format!("/proc/{pid}/ns/net"))),
            None => Err(Error::Netns {
                path: PathBuf::from(arg),
                reason: format!(
                    "no pod {namespace}/{name} on this node (kubelet's {}/pods names the pods here), or no process of it is running",
                    k8s::LOG_ROOT
                ),
            }),
        };
    }
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
                // cri-o's monitor, not a container.
                "crio-conmon" => continue,
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

/// A docker container's name from its `config.v2.json` under `roots`
/// ("Name": "/web").
pub fn container_name(roots: &Roots, runtime: &str, id: &str) -> Option<String> {
    if runtime != "docker" {
        return None;
    }
    roots.docker.iter().find_map(|r| {
        let text = fs::read(r.join(format!("containers/{id}/config.v2.json"))).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
        Some(v.get("Name")?.as_str()?.trim_start_matches('/').to_string())
    })
}

/// What a process's cgroup and its runtime's state say of it: its
/// container, its Kubernetes pod, and whether it is the pod's sandbox
/// (the pause container that holds the pod's namespaces).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub container: Option<Container>,
    pub pod: Option<Pod>,
    pub sandbox: bool,
}

/// The identity of `pid` under `proc_root`: runtime state under `roots`,
/// kubelet's logs under `logs` (`/var/log`).
pub fn identity_of(proc_root: &Path, roots: &Roots, logs: &Path, pid: u32) -> Option<Identity> {
    let dir = proc_root.join(pid.to_string());
    let text = fs::read_to_string(dir.join("cgroup")).ok()?;
    let pod_cgroup = k8s::pod_of_cgroup(&text);
    let found = parse_cgroup(&text);
    if pod_cgroup.is_none() && found.is_none() {
        return None;
    }
    let mut id = Identity::default();
    if let Some((runtime, cid)) = &found {
        let mut name = None;
        if *runtime == "containerd" {
            let cri = k8s::containerd_bundles(&roots.containerd, cid)
                .iter()
                .find_map(|p| {
                    k8s::cri_annotations(&serde_json::from_slice(&fs::read(p).ok()?).ok()?)
                });
            if let Some(a) = cri {
                id.pod = a.pod;
                id.sandbox = a.sandbox;
                name = a.container;
            }
        }
        if pod_cgroup.is_some() && name.is_none() && !id.sandbox {
            name = k8s::container_by_id(logs, cid);
        }
        if name.is_none() && pod_cgroup.is_none() {
            name = container_name(roots, runtime, cid);
        }
        id.container = Some(Container {
            runtime: runtime.to_string(),
            id: cid.clone(),
            name,
        });
    }
    if let Some(pc) = pod_cgroup {
        let named = id.pod.as_ref().is_some_and(|p| !p.name.is_empty());
        if !named {
            id.pod = k8s::pod_by_uid(logs, &pc.uid).or(Some(Pod {
                namespace: String::new(),
                name: String::new(),
                uid: pc.uid,
            }));
        }
        // Without the runtime's word: the pause process is the sandbox.
        if !id.sandbox && id.container.as_ref().is_some_and(|c| c.name.is_none()) {
            let comm = fs::read(dir.join("comm")).unwrap_or_default();
            id.sandbox = comm.strip_suffix(b"\n").unwrap_or(&comm) == b"pause";
        }
    }
    Some(id)
}

/// The container and pod of a namespace from the processes in it: the
/// pod of the first that has one, and a container of the pod's rather
/// than its sandbox where one is found among the first `MAX_LOOKED`.
pub fn identity_of_netns(
    proc_root: &Path,
    roots: &Roots,
    logs: &Path,
    pids: impl Iterator<Item = u32>,
) -> Identity {
    const MAX_LOOKED: usize = 64;
    let mut out = Identity::default();
    let mut sandbox = None;
    for pid in pids.take(MAX_LOOKED) {
        let Some(id) = identity_of(proc_root, roots, logs, pid) else {
            continue;
        };
        if out.pod.is_none() {
            out.pod = id.pod;
        }
        match id.container {
            Some(c) if id.sandbox => {
                sandbox.get_or_insert(c);
            }
            Some(c) => {
                out.container = Some(c);
                break;
            }
            None => {}
        }
    }
    if out.container.is_none() {
        out.container = sandbox;
        out.sandbox = out.container.is_some();
    }
    out
}

/// `--netns pod/NAMESPACE/NAME`: a process of that pod under `proc_root`,
/// found by the pod's UID in kubelet's logs under `logs`.
pub fn pid_of_pod(proc_root: &Path, logs: &Path, namespace: &str, name: &str) -> Option<u32> {
    let pod = k8s::pod_by_name(logs, namespace, name)?;
    let mut pids: Vec<u32> = fs::read_dir(proc_root)
        .ok()?
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup"))
            .ok()
            .and_then(|t| k8s::pod_of_cgroup(&t))
            .is_some_and(|p| p.uid == pod.uid)
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
                format!("0::/kubepods.slice/kubepods-pod1.slice/crio-conmon-{ID}.scope\n"),
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

    /// A container's identity from a fake root: docker's name, containerd's
    /// CRI annotations (a pod's container and its sandbox), and kubelet's
    /// logs where the runtime's state is not readable (cri-o here), the
    /// pause process being the sandbox.
    #[test]
    fn identities_of_containers_and_pods() {
        let root = std::env::temp_dir().join(format!("zombiescan-names-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let id = |n: u32| format!("{n:064x}");
        let (uid1, uid2) = (
            "4f0c8d2e-7a1b-4c3d-9e8f-0a1b2c3d4e5f",
            "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5",
        );
        let proc_root = root.join("proc");
        let process = |pid: u32, comm: &str, cgroup: String| {
            let d = proc_root.join(pid.to_string());
            fs::create_dir_all(&d).expect("proc");
            fs::write(d.join("comm"), format!("{comm}\n")).expect("comm");
            fs::write(d.join("cgroup"), cgroup).expect("cgroup");
        };
        let slice = |uid: &str| {
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice",
                uid.replace('-', "_")
            )
        };
        process(10, "nginx", format!("0::/system.slice/docker-{ID}.scope\n"));
        process(
            20,
            "python",
            format!("{}/cri-containerd-{}.scope\n", slice(uid1), id(2)),
        );
        process(
            21,
            "pause",
            format!("{}/cri-containerd-{}.scope\n", slice(uid1), id(3)),
        );
        process(
            30,
            "worker",
            format!("{}/crio-{}.scope\n", slice(uid2), id(4)),
        );
        process(
            31,
            "pause",
            format!("{}/crio-{}.scope\n", slice(uid2), id(5)),
        );
        process(
            40,
            "bash",
            "0::/user.slice/user-0.slice/session-1.scope\n".into(),
        );
        let docker = root.join(format!("var/lib/docker/containers/{ID}"));
        fs::create_dir_all(&docker).expect("mkdir");
        fs::write(docker.join("config.v2.json"), r#"{"ID":"x","Name":"/web"}"#).expect("write");
        let bundle = |cid: String, json: &str| {
            let d = root.join(format!(
                "run/containerd/io.containerd.runtime.v2.task/k8s.io/{cid}"
            ));
            fs::create_dir_all(&d).expect("bundle");
            fs::write(d.join("config.json"), json).expect("config.json");
        };
        let pod_keys = format!(
            r#""io.kubernetes.cri.sandbox-name":"checkout-7d9f8-x2x4q","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"{uid1}""#
        );
        bundle(
            id(2),
            &format!(
                r#"{{"annotations":{{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"api",{pod_keys}}}}}"#
            ),
        );
        bundle(
            id(3),
            &format!(
                r#"{{"annotations":{{"io.kubernetes.cri.container-type":"sandbox",{pod_keys}}}}}"#
            ),
        );
        let logs = root.join("var/log");
        fs::create_dir_all(logs.join(format!("pods/jobs_batch-1_{uid2}/worker"))).expect("pods");
        fs::create_dir_all(logs.join("containers")).expect("containers");
        fs::write(
            logs.join(format!("containers/batch-1_jobs_worker-{}.log", id(4))),
            "",
        )
        .expect("log");
        let roots = Roots {
            docker: vec![root.join("srv/docker"), root.join("var/lib/docker")],
            containerd: vec![root.join("run/containerd")],
        };
        let of = |pid| identity_of(&proc_root, &roots, &logs, pid).expect("identity");
        let name = |i: &Identity| i.container.as_ref().and_then(|c| c.name.clone());
        let pod = |i: &Identity| i.pod.as_ref().map(Pod::label);

        let web = of(10);
        assert_eq!(
            (name(&web), pod(&web), web.sandbox),
            (Some("web".into()), None, false)
        );
        let api = of(20);
        assert_eq!(name(&api).as_deref(), Some("api"));
        assert_eq!(pod(&api).as_deref(), Some("shop/checkout-7d9f8-x2x4q"));
        assert!(!api.sandbox);
        assert!(of(21).sandbox);
        let worker = of(30);
        assert_eq!(name(&worker).as_deref(), Some("worker"));
        assert_eq!(pod(&worker).as_deref(), Some("jobs/batch-1"));
        assert_eq!(
            worker.container.as_ref().map(|c| c.runtime.as_str()),
            Some("cri-o")
        );
        let pause = of(31);
        assert!(pause.sandbox && name(&pause).is_none());
        assert_eq!(identity_of(&proc_root, &roots, &logs, 40), None);

        // A pod's namespace: named after the pod, and after a container of
        // the pod's, not its sandbox, whichever process comes first.
        let ns = identity_of_netns(&proc_root, &roots, &logs, [31, 30].into_iter());
        assert_eq!(pod(&ns).as_deref(), Some("jobs/batch-1"));
        assert_eq!(name(&ns).as_deref(), Some("worker"));
        let ns = identity_of_netns(&proc_root, &roots, &logs, [21].into_iter());
        assert_eq!(pod(&ns).as_deref(), Some("shop/checkout-7d9f8-x2x4q"));
        assert!(ns.sandbox);
        // --netns pod/NS/NAME: a process of the pod.
        assert_eq!(pid_of_pod(&proc_root, &logs, "jobs", "batch-1"), Some(30));
        assert_eq!(pid_of_pod(&proc_root, &logs, "jobs", "nope"), None);
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
