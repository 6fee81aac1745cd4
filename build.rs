//! Builds bpf/owners.bpf.c, the kernel-side owner lookup, with clang's BPF
//! target when clang is there (CLANG names another); without it zombiescan
//! is built without it and finds owners by walking /proc, as it does
//! wherever BPF is refused. ZOMBIESCAN_NO_BPF=1 builds without it.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(zombiescan_bpf)");
    println!("cargo::rerun-if-changed=bpf/owners.bpf.c");
    println!("cargo::rerun-if-env-changed=ZOMBIESCAN_NO_BPF");
    println!("cargo::rerun-if-env-changed=CLANG");
    if env::var_os("ZOMBIESCAN_NO_BPF").is_some() {
        return;
    }
    let Some(out) = env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let built = Command::new(&clang)
        .args([
            "-O2",
            "-g",
            "-target",
            "bpf",
            "-c",
            "bpf/owners.bpf.c",
            "-o",
        ])
        .arg(out.join("owners.bpf.o"))
        .status()
        .is_ok_and(|s| s.success());
    if built {
        println!("cargo::rustc-cfg=zombiescan_bpf");
    } else {
        println!(
            "cargo::warning=no {clang} with the BPF target: built without the BPF owner lookup (owners come from /proc)"
        );
    }
}
