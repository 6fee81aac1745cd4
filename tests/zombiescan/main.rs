//! zombiescan's integration tests: the real executable and library on
//! fixtures and on live network namespaces.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The preamble of a live test: returns, loudly, where the test cannot
/// run (not root; under CI that fails instead), naming the test it is in.
macro_rules! live {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let test = path
            .strip_suffix("::here")
            .unwrap_or(path)
            .rsplit("::")
            .next()
            .unwrap_or(path);
        if !$crate::netns::live_or_skip(test) {
            return;
        }
    }};
}

mod capture;
mod cli;
mod docker;
mod exporter_web;
mod findings;
mod fixtures;
mod fuzz_seeds;
mod hostile;
mod kill;
mod kubernetes;
mod live;
mod namespaces;
mod netns;
mod serve;
mod servers;
mod watch;

/// Runs `cmd` to its end: its exit code, its stderr and its peak resident
/// memory in MiB (from wait4, so only its own).
pub fn peak_rss(cmd: &mut std::process::Command) -> (Option<i32>, String, f64) {
    use std::io::Read;
    // Reaped by wait4 below, which also gives its peak memory.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let pid = child.id() as nix::libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for this child.
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals.
    let r = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid);
    let code = nix::libc::WIFEXITED(status).then(|| nix::libc::WEXITSTATUS(status));
    (code, err, usage.ru_maxrss as f64 / 1024.0)
}
