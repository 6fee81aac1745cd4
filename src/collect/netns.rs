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

/// Runs `f` on a thread that first enters the namespace at `path`.
pub fn run_in<T: Send>(path: &Path, f: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let fd = File::open(path).map_err(|e| Error::Netns {
                    path: path.to_path_buf(),
                    reason: format!("cannot open it ({e})"),
                })?;
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(|e| Error::Netns {
                    path: path.to_path_buf(),
                    reason: format!("cannot enter it ({e}): run as root"),
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

/// A container's name from its runtime's state under `root` (`/`):
/// docker's `config.v2.json` ("Name": "/web"), containerd's CRI
/// annotations.
pub fn container_name(root: &Path, runtime: &str, id: &str) -> Option<String> {
    let (path, pick): (PathBuf, fn(&serde_json::Value) -> Option<String>) = match runtime {
        "docker" => (
            root.join(format!("var/lib/docker/containers/{id}/config.v2.json")),
            |v| Some(v.get("Name")?.as_str()?.trim_start_matches('/').to_string()),
        ),
        "containerd" => (
            root.join(format!(
                "run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json"
            )),
            |v| {
                let a = v.get("annotations")?;
                let c = a.get("io.kubernetes.cri.container-name")?.as_str()?;
                let pod = a
                    .get("io.kubernetes.cri.sandbox-name")
                    .and_then(|p| p.as_str());
                Some(pod.map_or(c.to_string(), |p| format!("{p}/{c}")))
            },
        ),
        _ => return None,
    };
    let text = fs::read(path).ok()?;
    pick(&serde_json::from_slice(&text).ok()?)
}

/// The container `pid` runs in, if any.
pub fn container_of(proc_root: &Path, pid: u32) -> Option<Container> {
    let text = fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    let (runtime, id) = parse_cgroup(&text)?;
    let name = container_name(Path::new("/"), runtime, &id);
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
        assert_eq!(container_name(&root, "docker", ID).as_deref(), Some("web"));
        assert_eq!(
            container_name(&root, "containerd", ID).as_deref(),
            Some("api-7d9f/api")
        );
        assert_eq!(container_name(&root, "podman", ID), None);
        assert_eq!(container_name(&root, "docker", &ID.replace('8', "9")), None);
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
}
