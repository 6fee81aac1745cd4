//! A Kubernetes node as zombiescan sees one from the host: a leaking
//! server moved into a cgroup of the shape kubelet gives a pod's container
//! (systemd driver), kubelet's log directories for that pod laid down, and
//! a scan of every namespace that names the pod, its namespace and the
//! container in the table, JSON and Prometheus, and `--netns pod/NS/NAME`.

use std::path::PathBuf;
use std::process::Command;

use zombiescan::render::json::{AllNamespaces, Document};

use crate::netns::{BIN, FakeContainer, Netns, ok};

/// kubelet's `/var/log/pods/<ns>_<pod>_<uid>/<container>/0.log` and
/// `/var/log/containers/<pod>_<ns>_<container>-<id>.log`, removed (with
/// the directories it made) when dropped.
struct KubeletLogs {
    made: Vec<PathBuf>,
}

impl KubeletLogs {
    fn new(namespace: &str, pod: &str, uid: &str, container: &str, id: &str) -> KubeletLogs {
        let mut made = Vec::new();
        let logs = PathBuf::from("/var/log");
        for d in ["pods", "containers"] {
            let dir = logs.join(d);
            if !dir.exists() {
                std::fs::create_dir_all(&dir).expect("log dir");
                made.push(dir);
            }
        }
        let pod_dir = logs.join(format!("pods/{namespace}_{pod}_{uid}"));
        std::fs::create_dir_all(pod_dir.join(container)).expect("pod dir");
        std::fs::write(pod_dir.join(container).join("0.log"), "").expect("0.log");
        made.push(pod_dir);
        let link = logs.join(format!("containers/{pod}_{namespace}_{container}-{id}.log"));
        std::fs::write(&link, "").expect("container log");
        made.push(link);
        KubeletLogs { made }
    }
}

impl Drop for KubeletLogs {
    fn drop(&mut self) {
        for p in self.made.iter().rev() {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(p);
            } else {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// A scan from the host, every CLOSE_WAIT counted at once (`--stall 0s`).
fn scan(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .args(["--stall", "0s"])
        .output()
        .expect("zombiescan");
    ok(&out);
    out
}

#[test]
fn a_close_wait_leak_in_a_pod_is_reported_as_the_pods() {
    live!();
    let me = std::process::id();
    let uid = format!("4f0c8d2e-7a1b-4c3d-9e8f-{me:012x}");
    let id = format!("{:064x}", u64::from(me) * 7919 + 1);
    let (namespace, pod) = ("shop", format!("checkout-7d9f8-{me}"));
    let mut ns = Netns::new("k8s");
    let server = ns.close_wait_leak(3, 0);
    let scope = format!(
        "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
        uid.replace('-', "_")
    );
    let Some(cgroup) = FakeContainer::at(&scope) else {
        crate::netns::skip(
            "a_close_wait_leak_in_a_pod_is_reported_as_the_pods",
            "no writable cgroup hierarchy to make a pod's cgroup in",
        );
        return;
    };
    cgroup.add(server);
    let _logs = KubeletLogs::new(namespace, &pod, &uid, "api", &id);
    let label = format!("pod {namespace}/{pod} · container api");

    // The table names the namespace after the pod and its container.
    let table = String::from_utf8_lossy(&scan(&["--all-netns"]).stdout).into_owned();
    assert!(table.contains(&label), "{table}");

    // JSON: netns.pod and the container's name, on the finding's part.
    let out = scan(&["--all-netns", "--json"]);
    crate::cli::assert_valid(&out.stdout);
    let all: AllNamespaces = serde_json::from_slice(&out.stdout).expect("json");
    let doc = all
        .namespaces
        .iter()
        .find(|d| d.netns.name.as_deref() == Some(ns.name.as_str()))
        .expect("the pod's namespace");
    let p = doc.netns.pod.as_ref().expect("the pod");
    assert_eq!(
        (p.namespace.as_str(), p.name.as_str(), p.uid.as_str()),
        (namespace, pod.as_str(), uid.as_str())
    );
    let c = doc.netns.container.as_ref().expect("the container");
    assert_eq!(
        (c.name.as_deref(), c.id.as_str()),
        (Some("api"), id.as_str())
    );
    let f = doc
        .findings
        .iter()
        .find(|f| f.kind == "close_wait")
        .expect("close_wait");
    assert_eq!(f.pids, vec![server]);
    // Each process of the pod named after its container; the clients,
    // outside the pod's cgroup, after none.
    for p in &doc.processes {
        let want = (p.pid == server).then_some("api");
        assert_eq!(p.container.as_deref(), want, "pid {}", p.pid);
    }

    // Markdown, for the ticket.
    let md = String::from_utf8_lossy(&scan(&["--all-netns", "--format", "markdown"]).stdout)
        .into_owned();
    assert!(md.contains(&label), "{md}");
    assert!(md.contains("| pid | comm | container |"), "{md}");

    // Prometheus: the pod's names as labels, on the finding's series.
    let prom = String::from_utf8_lossy(&scan(&["--all-netns", "--format", "prometheus"]).stdout)
        .into_owned();
    let want = format!(
        "zombiescan_finding_severity{{netns_name=\"{}\",container=\"api\",k8s_namespace=\"{namespace}\",k8s_pod=\"{pod}\",k8s_container=\"api\",kind=\"close_wait\"}} 2",
        ns.name
    );
    assert!(prom.contains(&want), "{want}\nnot in:\n{prom}");

    // --netns pod/NS/NAME scans that namespace.
    let out = scan(&["--netns", &format!("pod/{namespace}/{pod}"), "--json"]);
    let one: Document = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(one.netns.inode, doc.netns.inode);
    assert!(one.findings.iter().any(|f| f.kind == "close_wait"));
    let out = Command::new(BIN)
        .args(["--netns", &format!("pod/{namespace}/no-such-pod")])
        .output()
        .expect("zombiescan");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no pod shop/no-such-pod on this node"),
        "{err}"
    );
}

fn contrib(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/kubernetes")
        .join(file)
}

/// The YAML documents of a manifest, as JSON values.
fn documents(file: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    let text = std::fs::read_to_string(contrib(file)).expect("manifest");
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| serde_json::Value::deserialize(d).expect("yaml"))
        .collect()
}

/// The DaemonSet and its companions validate against Kubernetes' own API
/// schema (kubernetes-validate, strict: an unknown field fails), for the
/// oldest supported release and the newest; the DaemonSet asks for no
/// more than a scan needs, and its arguments are ones `serve` takes.
#[test]
fn the_daemonset_validates_against_kubernetes_own_schema() {
    let venv = crate::servers::cached("ZOMBIESCAN_VENV", "venv");
    let validate = venv.join("bin/kubernetes-validate");
    if !validate.exists() {
        crate::netns::skip(
            "the_daemonset_validates_against_kubernetes_own_schema",
            "needs kubernetes-validate in the servers' virtualenv (bash .ci/run installs it)",
        );
        return;
    }
    for version in ["1.28.0", "1.37.0"] {
        let out = Command::new(&validate)
            .args(["--strict", "--quiet", "-k", version])
            .arg(contrib("zombiescan.yaml"))
            .output()
            .expect("kubernetes-validate");
        assert!(
            out.status.success(),
            "Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let docs = documents("zombiescan.yaml");
    let kind = |k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("a {k}"))
    };
    let pod = &kind("DaemonSet")["spec"]["template"]["spec"];
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["automountServiceAccountToken"], false);
    let c = &pod["containers"][0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["privileged"], false);
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert_eq!(
        sc["capabilities"]["add"],
        serde_json::json!(["SYS_PTRACE", "SYS_ADMIN"])
    );
    assert!(c["resources"]["limits"]["memory"].is_string());
    // Every flag it gives is one `zombiescan serve` takes.
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .expect("help");
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(args.first(), Some(&"serve"));
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "serve takes no {flag}");
    }
    assert!(
        args.contains(&"--web-config"),
        "TLS and a password on 0.0.0.0"
    );

    // The ServiceMonitor selects the Service, by its port's name.
    let service = kind("Service");
    let monitors = documents("servicemonitor.yaml");
    let sm = &monitors[0];
    assert_eq!(sm["kind"], "ServiceMonitor");
    for (k, v) in sm["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(&service["metadata"]["labels"][k], v, "{k}");
    }
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        service["spec"]["ports"][0]["name"]
    );
    assert_eq!(sm["spec"]["endpoints"][0]["scheme"], "https");
}
