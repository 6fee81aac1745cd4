//! Kubernetes pods, named from the node alone (no API server): a process's
//! cgroup path says which pod it runs in (its UID), kubelet's log
//! directories and the runtime's state say the pod's name, its namespace
//! and the container's name.
//!
//! - Cgroup paths as kubelet makes them (pkg/kubelet/cm: the pod's cgroup
//!   is `pod<UID>` under `kubepods[/<qos>]`; with the systemd driver each
//!   level is a slice, `kubepods-<qos>-pod<UID with '_' for '-'>.slice`,
//!   Guaranteed pods having no QoS level), the container's scope or
//!   directory below it: `cri-containerd-<ID>.scope`, `crio-<ID>.scope`,
//!   `docker-<ID>.scope`, or `<ID>` with cgroupfs; cri-o's
//!   `crio-conmon-<ID>.scope` is its monitor, outside the pod's network.
//!   The same on cgroup v1, v2 and hybrid hosts: every line is read.
//! - `/var/log/pods/<namespace>_<pod>_<uid>/`, kubelet's
//!   BuildPodLogsDirectory, and `/var/log/containers/<pod>_<namespace>_
//!   <container>-<ID>.log`, its logSymlink (pkg/kubelet/kuberuntime): both
//!   kept by kubelet whatever the runtime. Names are DNS labels, so `_`
//!   separates them.
//! - containerd's bundle `config.json`, whose annotations
//!   (internal/cri/annotations: `io.kubernetes.cri.sandbox-name`,
//!   `-sandbox-namespace`, `-sandbox-uid`, `-container-name`,
//!   `-container-type` sandbox or container) name pod and container.

use std::fs;
use std::path::{Path, PathBuf};

use crate::model::Pod;

/// Where kubelet writes the pods' and containers' logs.
pub const LOG_ROOT: &str = "/var/log";

/// What a cgroup path says of a pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCgroup {
    /// The pod's UID as the API server has it (with dashes).
    pub uid: String,
}

/// A pod UID: 36 characters with dashes (API pods) or 32 hex digits (a
/// static pod's, a hash of its manifest).
fn is_uid(s: &str) -> bool {
    let hex_or_dash = s.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    hex_or_dash && (s.len() == 36 || (s.len() == 32 && !s.contains('-')))
}

/// The pod of a `/proc/PID/cgroup` text, if it is a kubelet's: the UID
/// from the `pod<UID>` level under `kubepods`. cri-o's conmon, which lives
/// in the pod's cgroup but not in its network, is none.
pub fn pod_of_cgroup(text: &str) -> Option<PodCgroup> {
    for line in text.lines() {
        let Some(path) = line.splitn(3, ':').nth(2) else {
            continue;
        };
        if !path.contains("kubepods") {
            continue;
        }
        let parts: Vec<&str> = path.split('/').collect();
        if parts.last().is_some_and(|l| l.starts_with("crio-conmon-")) {
            return None;
        }
        for part in &parts {
            let stem = part.strip_suffix(".slice").unwrap_or(part);
            // systemd: kubepods-burstable-pod<uid_>; cgroupfs: pod<uid>.
            let uid = match stem.rfind("-pod") {
                Some(i) if stem.starts_with("kubepods") => &stem[i + 4..],
                _ => match stem.strip_prefix("pod") {
                    Some(u) => u,
                    None => continue,
                },
            };
            let uid = uid.replace('_', "-");
            if is_uid(&uid) {
                return Some(PodCgroup {
                    uid: uid.to_ascii_lowercase(),
                });
            }
        }
    }
    None
}

/// The pods of kubelet's log directory under `root` (`/var/log`), one
/// `pods/<namespace>_<name>_<uid>` each (names are DNS labels: no `_`).
fn pods(root: &Path) -> impl Iterator<Item = Pod> {
    fs::read_dir(root.join("pods"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let file = e.file_name();
            let mut parts = file.to_str()?.split('_');
            let (namespace, name, uid) = (parts.next()?, parts.next()?, parts.next()?);
            let whole = parts.next().is_none() && !namespace.is_empty() && !name.is_empty();
            (whole && is_uid(uid)).then(|| Pod {
                namespace: namespace.to_string(),
                name: name.to_string(),
                uid: uid.to_string(),
            })
        })
}

/// The pod of `uid` from kubelet's log directory under `root`.
pub fn pod_by_uid(root: &Path, uid: &str) -> Option<Pod> {
    pods(root).find(|p| p.uid == uid)
}

/// The pod named `namespace/name` under `root`, with its UID.
pub fn pod_by_name(root: &Path, namespace: &str, name: &str) -> Option<Pod> {
    pods(root).find(|p| p.namespace == namespace && p.name == name)
}

/// A container's name from kubelet's `containers/<pod>_<namespace>_
/// <container>-<ID>.log` under `root`, given its full ID.
pub fn container_by_id(root: &Path, id: &str) -> Option<String> {
    let suffix = format!("-{id}.log");
    fs::read_dir(root.join("containers"))
        .ok()?
        .flatten()
        .find_map(|e| {
            let file = e.file_name();
            let head = file.to_str()?.strip_suffix(&suffix)?;
            let mut parts = head.splitn(3, '_');
            let (_pod, _ns, container) = (parts.next()?, parts.next()?, parts.next()?);
            (!container.is_empty() && !container.contains('_')).then(|| container.to_string())
        })
}

/// What containerd's CRI plugin wrote in a container's bundle: the pod,
/// the container's name (none for the sandbox), and whether it is the
/// pod's sandbox.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CriAnnotations {
    pub pod: Option<Pod>,
    pub container: Option<String>,
    pub sandbox: bool,
}

pub fn cri_annotations(v: &serde_json::Value) -> Option<CriAnnotations> {
    let a = v.get("annotations")?;
    let get = |k: &str| a.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let pod = match (
        get("io.kubernetes.cri.sandbox-namespace"),
        get("io.kubernetes.cri.sandbox-name"),
    ) {
        (Some(namespace), Some(name)) => Some(Pod {
            namespace,
            name,
            uid: get("io.kubernetes.cri.sandbox-uid").unwrap_or_default(),
        }),
        _ => None,
    };
    let sandbox = get("io.kubernetes.cri.container-type").as_deref() == Some("sandbox");
    let container = get("io.kubernetes.cri.container-name");
    (pod.is_some() || container.is_some()).then_some(CriAnnotations {
        pod,
        container,
        sandbox,
    })
}

/// containerd's bundle files of container `id` under its state roots.
pub fn containerd_bundles(roots: &[PathBuf], id: &str) -> Vec<PathBuf> {
    roots
        .iter()
        .map(|r| {
            r.join(format!(
                "io.containerd.runtime.v2.task/k8s.io/{id}/config.json"
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "4f0c8d2e-7a1b-4c3d-9e8f-0a1b2c3d4e5f";
    const ID: &str = "8e76985e7965e551246d364494df02c78e76985e7965e551246d364494df02c7";

    /// Every layout kubelet makes, on v1, v2 and hybrid hosts.
    #[test]
    fn pod_uids_from_kubelets_cgroup_paths() {
        let u = UID.replace('-', "_");
        let cases = [
            // systemd driver, cgroup v2: Burstable, BestEffort, Guaranteed.
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/cri-containerd-{ID}.scope\n"
            ),
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{u}.slice/crio-{ID}.scope\n"
            ),
            format!("0::/kubepods.slice/kubepods-pod{u}.slice/docker-{ID}.scope\n"),
            // cgroupfs driver, v1 (several hierarchies) and hybrid.
            format!(
                "12:pids:/kubepods/burstable/pod{UID}/{ID}\n11:memory:/kubepods/burstable/pod{UID}/{ID}\n0::/\n"
            ),
            format!("5:cpu,cpuacct:/kubepods/pod{UID}/{ID}\n0::/kubepods/pod{UID}/{ID}\n"),
        ];
        for text in &cases {
            assert_eq!(
                pod_of_cgroup(text),
                Some(PodCgroup { uid: UID.into() }),
                "{text}"
            );
        }
        // A static pod's UID: 32 hex digits.
        let st = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0123456789abcdef0123456789abcdef.slice/cri-containerd-x.scope";
        assert_eq!(
            pod_of_cgroup(st).map(|p| p.uid),
            Some("0123456789abcdef0123456789abcdef".into())
        );
        for none in [
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/crio-conmon-{ID}.scope\n"
            ),
            format!("0::/system.slice/docker-{ID}.scope\n"),
            "0::/user.slice/user-1000.slice/session-2.scope\n".to_string(),
            "0::/pod-nope/podcast\n".to_string(),
            "garbage".to_string(),
        ] {
            assert_eq!(pod_of_cgroup(&none), None, "{none}");
        }
    }

    /// kubelet's log directories in a fake root: the pod by its UID and
    /// by its name, the container by its ID.
    #[test]
    fn pods_and_containers_from_kubelets_log_directories() {
        let root = std::env::temp_dir().join(format!("zombiescan-k8s-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(root.join(format!("pods/shop_checkout-7d9f8-x2x4q_{UID}/api")))
            .expect("pods");
        fs::create_dir_all(root.join("pods/kube-system_coredns-1_0123")).expect("pods");
        fs::create_dir_all(root.join("containers")).expect("containers");
        fs::write(
            root.join(format!("containers/checkout-7d9f8-x2x4q_shop_api-{ID}.log")),
            "",
        )
        .expect("log");
        let pod = pod_by_uid(&root, UID).expect("pod");
        assert_eq!(
            (pod.namespace.as_str(), pod.name.as_str(), pod.uid.as_str()),
            ("shop", "checkout-7d9f8-x2x4q", UID)
        );
        assert_eq!(
            pod_by_name(&root, "shop", "checkout-7d9f8-x2x4q"),
            Some(pod)
        );
        assert_eq!(pod_by_name(&root, "shop", "checkout"), None);
        assert_eq!(container_by_id(&root, ID).as_deref(), Some("api"));
        assert_eq!(container_by_id(&root, &ID.replace('8', "9")), None);
        assert_eq!(pod_by_uid(&root.join("nowhere"), UID), None);
        let _ = fs::remove_dir_all(&root);
    }

    /// containerd's annotations, as its CRI plugin writes them for a
    /// container and for the pod's sandbox.
    #[test]
    fn containerd_cri_annotations() {
        let container = serde_json::json!({"annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.container-name": "api",
            "io.kubernetes.cri.sandbox-name": "checkout-7d9f8-x2x4q",
            "io.kubernetes.cri.sandbox-namespace": "shop",
            "io.kubernetes.cri.sandbox-uid": UID,
        }});
        let a = cri_annotations(&container).expect("annotations");
        assert_eq!(a.container.as_deref(), Some("api"));
        assert!(!a.sandbox);
        assert_eq!(
            a.pod.as_ref().map(|p| p.name.as_str()),
            Some("checkout-7d9f8-x2x4q")
        );
        let sandbox = serde_json::json!({"annotations": {
            "io.kubernetes.cri.container-type": "sandbox",
            "io.kubernetes.cri.sandbox-name": "checkout-7d9f8-x2x4q",
            "io.kubernetes.cri.sandbox-namespace": "shop",
        }});
        let a = cri_annotations(&sandbox).expect("annotations");
        assert!(a.sandbox && a.container.is_none());
        assert_eq!(
            cri_annotations(&serde_json::json!({"annotations": {}})),
            None
        );
    }
}
