//! The executable's surface: help, exit codes, errors, the man page, and its
//! JSON against the schema.

use std::path::Path;
use std::process::{Command, Stdio};

use clap::CommandFactory;
use serde_json::Value;

use crate::netns::{BIN, Netns, ok, ok_as};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("run zombiescan")
}

#[test]
fn usage_errors_exit_2_with_one_line() {
    for args in [
        &["--state", "HALF_OPEN"][..],
        &["--port", "0"],
        &["--bogus"],
        &["--pid", "1", "--no-processes"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.starts_with("zombiescan: ") || err.starts_with("error: "),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
    let err = String::from_utf8_lossy(&run(&["--state", "HALF_OPEN"]).stderr).into_owned();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("CLOSE_WAIT"), "names the valid states: {err}");
}

#[test]
fn help_has_examples_and_exit_codes() {
    let out = run(&["--help"]);
    ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for want in [
        "--port",
        "--json",
        "--source",
        "Examples:",
        "jq",
        "Exit status",
    ] {
        assert!(help.contains(want), "--help lacks {want}");
    }
}

/// Text for roff: backslashes and hyphens escaped, no line starting with a
/// control character.
fn roff(text: &str) -> String {
    let t = text.replace('\\', "\\e").replace('-', "\\-");
    if t.starts_with('.') || t.starts_with('\'') {
        format!("\\&{t}")
    } else {
        t
    }
}

/// The man pages: zombiescan(1), with the sections a man page has, and
/// one page per subcommand it refers to.
fn man_pages() -> Vec<(String, Vec<u8>)> {
    use zombiescan::classify::Kind;
    use zombiescan::cli::{EXAMPLES, EXIT_STATUS};
    let mut cmd = zombiescan::cli::Cli::command().disable_help_subcommand(true);
    cmd.build();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut page = Vec::new();
    man.render_title(&mut page).expect("title");
    man.render_name_section(&mut page).expect("name");
    man.render_synopsis_section(&mut page).expect("synopsis");
    man.render_description_section(&mut page)
        .expect("description");
    man.render_options_section(&mut page).expect("options");
    man.render_subcommands_section(&mut page)
        .expect("subcommands");
    let mut extra = String::from(".SH EXAMPLES\n");
    for (c, what) in EXAMPLES {
        extra.push_str(&format!(".TP\n\\fB{}\\fR\n{}\n", roff(c), roff(what)));
    }
    extra.push_str(".SH \"EXIT STATUS\"\n");
    for (code, what) in EXIT_STATUS {
        extra.push_str(&format!(".TP\n{code}\n{}\n", roff(what)));
    }
    extra.push_str(".SH FINDINGS\nEach finding has a kind, a severity (info, warning, critical), the count of sockets, the ports and pids concerned, the figures behind it, an explanation and a remediation for the server that holds the sockets.\n");
    for k in Kind::ALL {
        extra.push_str(&format!(
            ".TP\n\\fB{}\\fR\n{}\n",
            roff(k.name()),
            roff(k.when())
        ));
    }
    extra.push_str(&format!(
        ".SH ENVIRONMENT\n.TP\nNO_COLOR\n{}\n.TP\nCOLUMNS\n{}\n.TP\nZOMBIESCAN_MAX_INPUT\n{}\n.TP\nZOMBIESCAN_OWNERS\n{}\n",
        roff("set and not empty: no colour on a terminal"),
        roff("the width to fit when stdout is not a terminal that reports its size"),
        roff("the most bytes read from a capture, compressed or inflated (default 1 GiB)"),
        roff("proc: find the owners by walking /proc/PID/fd; bpf: by the kernel's walk (a BPF task_file iterator: root, a kernel with BTF) wherever it can be used, and where it cannot, the report's limitations say why; unset: the kernel's where the host holds 2,000 file handles or more, where it is the cheaper. A watch, a recorder and the exporter walk /proc, remembering the fd tables")
    ));
    extra.push_str(&format!(
        ".SH FILES\n.TP\n/proc/net/tcp, /proc/net/tcp6\n{}\n.TP\n/proc/PID/fd, /proc/PID/limits\n{}\n.TP\n/sys/kernel/btf/vmlinux\n{}\n.TP\n/run/netns\n{}\n.TP\n/var/lib/docker, /run/containerd\n{}\n.TP\n/var/log/pods, /var/log/containers\n{}\n",
        roff("the socket table when netlink is unavailable (--source proc)"),
        roff("which process holds each socket, and its descriptor limit"),
        roff("the kernel's BTF, for the BPF iterator that finds owners in the kernel"),
        roff("the names ip netns gives namespaces"),
        roff("container names (or the data roots the running dockerd and containerd name)"),
        roff("kubelet's logs: the names of pods and their containers")
    ));
    extra.push_str(".SH \"SEE ALSO\"\n\\fBss\\fR(8), \\fBip-netns\\fR(8), \\fBlsof\\fR(8), \\fBtcp\\fR(7), \\fBsock_diag\\fR(7), \\fBproc\\fR(5)\n");
    page.extend_from_slice(extra.as_bytes());
    man.render_version_section(&mut page).expect("version");
    let mut pages = vec![("zombiescan.1".to_string(), page)];
    for sub in cmd.get_subcommands() {
        let name = format!("zombiescan-{}", sub.get_name());
        // clap names are &'static str without its "string" feature.
        let leaked: &'static str = Box::leak(name.clone().into_boxed_str());
        let sub = sub.clone().name(leaked).display_name(leaked);
        let mut p = Vec::new();
        clap_mangen::Man::new(sub).render(&mut p).expect("render");
        p.extend_from_slice(b".SH \"SEE ALSO\"\n\\fBzombiescan\\fR(1)\n");
        pages.push((format!("{name}.1"), p));
    }
    pages
}

#[test]
fn man_pages_are_generated_from_the_cli_and_fresh() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let pages = man_pages();
    let main = String::from_utf8_lossy(&pages[0].1).into_owned();
    for section in [
        "EXAMPLES",
        "EXIT STATUS",
        "FINDINGS",
        "FILES",
        "SEE ALSO",
        "ENVIRONMENT",
    ] {
        assert!(
            main.contains(&format!(".SH {section}"))
                || main.contains(&format!(".SH \"{section}\"")),
            "{section}"
        );
    }
    assert!(!main.contains(".SH EXTRA"));
    // Every page the main one refers to exists.
    for (name, _) in &pages[1..] {
        let stem = name.trim_end_matches(".1");
        assert!(
            main.contains(&format!("{}(1)", stem.replace('-', "\\-")))
                || main.contains(&format!("{stem}(1)")),
            "{stem}"
        );
    }
    assert!(!main.contains("zombiescan\\-help(1)") && !main.contains("zombiescan-help(1)"));
    for (name, rendered) in &pages {
        let path = dir.join(name);
        if std::env::var_os("ZOMBIESCAN_BLESS").is_some() {
            std::fs::write(&path, rendered).expect("write man page");
        }
        let checked_in = std::fs::read(&path).unwrap_or_default();
        assert!(
            &checked_in == rendered,
            "man/{name} is stale: regenerate with `ZOMBIESCAN_BLESS=1 cargo test man_pages`"
        );
    }
}

/// Checks `report --json` output against its own schema.
pub fn assert_valid_timeline(doc: &[u8]) {
    assert_valid_against("zombiescan-timeline.schema.json", doc);
}

/// Every object a schema describes, closed: the published schemas let new
/// fields appear (their promise), the tests allow none that is not named.
fn closed(schema: &mut Value) {
    match schema {
        Value::Object(o) => {
            if o.contains_key("properties") {
                o.insert("additionalProperties".into(), Value::Bool(false));
            }
            for v in o.values_mut() {
                closed(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(closed),
        _ => {}
    }
}

fn schema(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("schema file")).expect("schema JSON")
}

/// The published schemas keep the promise their description makes: a
/// script validating today's output with them accepts tomorrow's new fields.
#[test]
fn schemas_allow_new_fields_as_they_promise() {
    for name in [
        "zombiescan.schema.json",
        "zombiescan-kill.schema.json",
        "zombiescan-timeline.schema.json",
    ] {
        let s = schema(name);
        assert!(
            s["description"]
                .as_str()
                .is_some_and(|d| d.contains("new fields may appear")),
            "{name}: the promise"
        );
        assert!(
            !s.to_string().contains(r#""additionalProperties":false"#),
            "{name} refuses new fields"
        );
    }
    // An --all-netns document with a field of a later version: accepted by
    // the published schema, refused by the tests' closed one.
    let later = serde_json::json!({
        "schema_version": 1,
        "generated_at": "2026-12-05T03:00:00Z",
        "namespaces": [],
        "a_field_of_later": 1,
    });
    let accepts = |s: Value| validate("zombiescan.schema.json", s, &later).is_ok();
    let published = schema("zombiescan.schema.json");
    let mut strict = published.clone();
    closed(&mut strict);
    assert!(
        accepts(published),
        "the published schema refuses a new field"
    );
    assert!(
        !accepts(strict),
        "the tests' schema lets an unnamed field by"
    );
}

/// `doc` validated by `schema`, formats asserted; the error in words.
fn validate(name: &str, schema: Value, doc: &Value) -> Result<(), String> {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    compiler
        .add_resource(name, schema)
        .expect("schema resource");
    let idx = compiler
        .compile(name, &mut schemas)
        .expect("schema compiles");
    schemas.validate(doc, idx).map_err(|e| format!("{e:#}"))
}

/// Checks a document against `schema/NAME`, closed (no unnamed field).
pub fn assert_valid_against(name: &str, doc: &[u8]) {
    let mut s = schema(name);
    closed(&mut s);
    let v: Value = serde_json::from_slice(doc).expect("JSON");
    if let Err(e) = validate(name, s, &v) {
        panic!("output does not match schema/{name}:\n{e}");
    }
}

pub fn assert_valid(doc: &[u8]) {
    assert_valid_against("zombiescan.schema.json", doc);
}

#[test]
fn json_of_a_host_scan_matches_the_schema() {
    // Runs as any user: unreadable processes become limitations.
    let out = run(&["--json", "--sockets"]);
    ok(&out);
    assert_valid(&out.stdout);
    // Whose each sockstat counter is: the host's are listed, the
    // namespace's (inuse, tw) are not.
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let wide = &doc["host"]["sockstat_host_wide"];
    assert!(
        wide.as_array().is_some_and(
            |w| w.iter().any(|k| k == "TCP.orphan") && !w.iter().any(|k| k == "TCP.inuse")
        ),
        "{wide}"
    );
    let out = run(&["--json", "--sockets", "--source", "proc"]);
    ok(&out);
    assert_valid(&out.stdout);
}

#[test]
fn json_of_a_busy_namespace_matches_the_schema() {
    live!();
    let mut ns = Netns::new("schema");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&[
        "listen",
        "--host",
        "::",
        "--port",
        "30021",
        "--on-accept",
        "close",
    ]);
    ns.spawn(&["connect", "--port", "30020", "--count", "3", "--keepalive"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.spawn(&[
        "connect",
        "--host",
        "::1",
        "--port",
        "30021",
        "--count",
        "2",
        "--then",
        "close-after-peer",
    ]);
    ns.wait_accepted(7);
    for source in ["netlink", "proc"] {
        let out = ns.zombiescan(&["--json", "--sockets", "--source", source]);
        assert_valid(&out.stdout);
        let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
        assert!(
            doc["sockets"].as_array().is_some_and(|s| s.len() >= 13),
            "{source}"
        );
    }
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let (r, w) = nix::unistd::pipe().expect("pipe");
    drop(r);
    let status = Command::new(BIN)
        .args(["--json", "--sockets"])
        .stdout(Stdio::from(w))
        .status()
        .expect("run");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn an_unusable_source_exits_3_with_one_line() {
    live!();
    // A private mount namespace with an empty /proc, as in a bare container.
    let without_proc = |args: &str| {
        let script = format!("mount -t tmpfs none /proc && exec {BIN} {args}");
        Command::new("unshare")
            .args(["--mount", "sh", "-c", &script])
            .output()
            .expect("unshare")
    };
    let out = without_proc("--source proc");
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/proc/thread-self/net/tcp") && err.contains("--source netlink"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // netlink needs no /proc: the scan goes on and says what it missed.
    let out = without_proc("--json");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let lim = doc["limitations"].to_string();
    assert!(lim.contains("sockstat") && lim.contains("file-nr"), "{lim}");
    assert!(!doc["host"]["kernel"].as_str().unwrap_or("").is_empty());
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("!!! SKIPPED colour test: script(1) from util-linux is missing");
        return;
    }
    let on_tty = |no_color: Option<&str>| {
        let mut cmd = Command::new("script");
        cmd.args(["-qec", BIN, "/dev/null"]).env_remove("NO_COLOR");
        if let Some(v) = no_color {
            cmd.env("NO_COLOR", v);
        }
        let out = cmd.output().expect("script");
        ok(&out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(on_tty(None).contains("\x1b["), "a terminal gets colour");
    assert!(
        !on_tty(Some("1")).contains("\x1b["),
        "NO_COLOR turns it off"
    );
    let piped = run(&[]);
    assert!(
        !String::from_utf8_lossy(&piped.stdout).contains('\x1b'),
        "a pipe gets none"
    );
}

#[test]
fn a_recording_or_capture_that_cannot_be_written_exits_3_naming_it() {
    let out = Command::new(BIN)
        .args(["capture", "-o", "/nonexistent-dir/x.zsc", "--no-processes"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot write /nonexistent-dir/x.zsc"), "{err}");

    let out = Command::new(BIN)
        .args([
            "--no-processes",
            "--record",
            "/nonexistent-dir/night.ndjson",
        ])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot write /nonexistent-dir/night.ndjson"),
        "{err}"
    );
}

#[test]
fn completions_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _zombiescan"),
        ("zsh", "#compdef zombiescan"),
        ("fish", "complete -c zombiescan"),
    ] {
        let out = run(&["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(marker), "{shell}: {marker}");
        for word in ["kill", "port", "older-than", "all-netns"] {
            assert!(text.contains(word), "{shell} completes {word}");
        }
    }
    // The bash script is valid bash.
    let script = run(&["completions", "bash"]).stdout;
    let mut bash = std::process::Command::new("bash")
        .arg("-n")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("bash");
    std::io::Write::write_all(&mut bash.stdin.take().expect("stdin"), &script).expect("write");
    assert!(bash.wait().expect("bash -n").success());
    assert_eq!(run(&["completions", "tcsh"]).status.code(), Some(2));

    // And it completes, as bash calls it on TAB: a subcommand, a flag of
    // one, a global flag, a flag's values.
    let file = std::env::temp_dir().join(format!("zombiescan-{}.bash", std::process::id()));
    std::fs::write(&file, &script).expect("write");
    for (line, want) in [
        ("zombiescan ser", "serve"),
        ("zombiescan serve --lis", "--listen"),
        ("zombiescan kill --old", "--older-than"),
        ("zombiescan --all-n", "--all-netns"),
        // Values, not file names.
        ("zombiescan --state CLOSE_W", "CLOSE_WAIT"),
        ("zombiescan kill --finding close_w", "close_wait"),
    ] {
        let words: Vec<&str> = line.split(' ').collect();
        let cur = words.last().copied().unwrap_or_default();
        let prev = words[words.len().saturating_sub(2)];
        let call = format!(
            "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _zombiescan zombiescan {cur} {prev}; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
            words.len() - 1
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &call])
            .output()
            .expect("bash");
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(got.lines().any(|l| l == want), "{line} ⇥ {got:?}");
    }
    // --netns offers the `ip netns` names (root makes one to offer).
    if nix::unistd::geteuid().is_root() {
        let ns = crate::netns::Netns::new("cmpl");
        let prefix = &ns.name[..ns.name.len() - 1];
        let line = format!("zombiescan --netns {prefix}");
        let call = format!(
            "source {}; COMP_WORDS=({line}); COMP_CWORD=2; COMP_LINE='{line}'; \
             COMP_POINT=${{#COMP_LINE}}; _zombiescan zombiescan {prefix} --netns; \
             printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            file.display(),
        );
        let out = std::process::Command::new("bash")
            .args(["-c", &call])
            .output()
            .expect("bash");
        let got = String::from_utf8_lossy(&out.stdout);
        assert!(got.lines().any(|l| l == ns.name), "{line} ⇥ {got:?}");
    } else {
        eprintln!("!!! not root: --netns name completion not checked");
    }
    for shell in ["zsh", "fish"] {
        let text = String::from_utf8_lossy(&run(&["completions", shell]).stdout).into_owned();
        assert!(
            text.contains("ip netns list"),
            "{shell} completes --netns names"
        );
    }
    let _ = std::fs::remove_file(&file);
}

/// The static build (`RUSTFLAGS='-C target-feature=+crt-static' cargo build
/// --release --target x86_64-unknown-linux-gnu`, which .ci/run makes) runs
/// in a root that holds nothing but itself and a mounted /proc: no libc,
/// no loader.
#[test]
fn the_static_binary_runs_in_an_empty_root() {
    live!();
    let bin = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/x86_64-unknown-linux-gnu/release/zombiescan");
    if !bin.exists() {
        crate::netns::skip(
            "the_static_binary_runs_in_an_empty_root",
            "needs the static build (bash .ci/run makes it)",
        );
        return;
    }
    let root = std::env::temp_dir().join(format!("zombiescan-emptyroot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("proc")).expect("root");
    std::fs::copy(&bin, root.join("zombiescan")).expect("copy");
    let r = root.display();
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount --bind /proc {r}/proc && exec chroot {r} /zombiescan --json --port 30020 --no-follow"
        ))
        .output()
        .expect("unshare");
    let _ = std::fs::remove_dir_all(&root);
    ok(&out);
    assert_valid(&out.stdout);
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(doc["source"], "netlink");
}

/// The Debian package (`cargo deb`, from the static binary): installed with
/// dpkg, zombiescan runs from PATH and its man page is found; removed, it
/// leaves nothing behind.
#[test]
fn the_debian_package_installs_runs_and_removes() {
    live!();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ready = Command::new("cargo")
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
        && root
            .join("target/x86_64-unknown-linux-gnu/release/zombiescan")
            .exists()
        && root.join("target/completions/zombiescan.bash").exists();
    let installed = Command::new("dpkg")
        .args(["-s", "zombiescan"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ready || installed {
        let why = if installed {
            "a zombiescan package is installed here already: not touching it"
        } else {
            "needs cargo-deb, the static build and the completions (bash .ci/run makes them)"
        };
        crate::netns::skip("the_debian_package_installs_runs_and_removes", why);
        return;
    }
    let deb = std::env::temp_dir().join(format!("zombiescan-{}.deb", std::process::id()));
    let out = Command::new("cargo")
        .current_dir(root)
        .args([
            "deb",
            "--no-build",
            "--no-strip",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--output",
        ])
        .arg(&deb)
        .output()
        .expect("cargo deb");
    ok(&out);
    let dpkg = |args: &[&str]| {
        let out = Command::new("dpkg").args(args).output().expect("dpkg");
        ok_as(&out, &format!("dpkg {args:?}"));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    dpkg(&["-i", deb.to_str().expect("path")]);
    let on_path = Command::new("sh")
        .args([
            "-c",
            "command -v zombiescan && zombiescan --version && man -w zombiescan",
        ])
        .output()
        .expect("sh");
    // The units as systemd reads them (their binary and man pages now
    // installed), where systemd-analyze is there.
    let units = [
        "/lib/systemd/system/zombiescan-record.service",
        "/lib/systemd/system/zombiescan-serve.service",
    ];
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .args(units)
        .output();
    let files = dpkg(&["-L", "zombiescan"]);
    dpkg(&["--purge", "zombiescan"]);
    if let Ok(v) = verified {
        assert!(
            v.status.success() && v.stderr.is_empty(),
            "systemd-analyze verify: {}",
            String::from_utf8_lossy(&v.stderr)
        );
    }
    let _ = std::fs::remove_file(&deb);
    let text = String::from_utf8_lossy(&on_path.stdout);
    assert!(
        on_path.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&on_path.stderr)
    );
    assert!(
        text.contains("/usr/bin/zombiescan") && text.contains("zombiescan 0."),
        "{text}"
    );
    assert!(text.contains("zombiescan.1"), "man -w: {text}");
    for f in [
        "/lib/systemd/system/zombiescan-record.service",
        "/lib/systemd/system/zombiescan-serve.service",
        "/usr/share/man/man1/zombiescan-serve.1",
        "/usr/share/bash-completion/completions/zombiescan",
        "/usr/share/zsh/vendor-completions/_zombiescan",
        "/usr/share/fish/vendor_completions.d/zombiescan.fish",
        "/usr/share/man/man1/zombiescan-kill.1",
    ] {
        assert!(
            files.lines().any(|l| l.starts_with(f)),
            "{f} not packed:\n{files}"
        );
    }
    assert!(!Path::new("/usr/bin/zombiescan").exists(), "removed");
}
