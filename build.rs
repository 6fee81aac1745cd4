//! Builds bpf/owners.bpf.c, the kernel-side owner lookup, with clang's BPF
//! target when clang is there (CLANG names another); without it zombiescan
//! is built without it and finds owners by walking /proc, as it does
//! wherever BPF is refused. ZOMBIESCAN_NO_BPF=1 builds without it.
//!
//! From the object it keeps what src/collect/bpf.rs loads: the program's
//! instructions (`owners.insns`). It checks here that the object is what
//! that loader expects: the program's section, no relocation (no map, no
//! global), and each placeholder offset on exactly one load.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The program's section, and the placeholder offsets the loader replaces
/// (bpf/owners.bpf.c's OFF_*).
const SECTION: &str = "iter/task_file";
const PLACEHOLDERS: [u16; 4] = [0x7ff1, 0x7ff2, 0x7ff3, 0x7ff4];

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
    let object = out.join("owners.bpf.o");
    let built = Command::new(&clang)
        .args(["-O2", "-target", "bpf", "-c", "bpf/owners.bpf.c", "-o"])
        .arg(&object)
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        println!(
            "cargo::warning=no {clang} with the BPF target: built without the BPF owner lookup (owners come from /proc)"
        );
        return;
    }
    match extract(&object, &out) {
        Ok(()) => println!("cargo::rustc-cfg=zombiescan_bpf"),
        Err(e) => println!(
            "cargo::warning=bpf/owners.bpf.o is not what the loader expects ({e}): built without the BPF owner lookup"
        ),
    }
}

/// Writes the program's instructions.
fn extract(object: &Path, out: &Path) -> Result<(), String> {
    let elf = fs::read(object).map_err(|e| e.to_string())?;
    let sections = sections(&elf)?;
    let names = sections
        .get(usize::from(u16_at(&elf, 62)?))
        .ok_or("no .shstrtab")?;
    let mut program = None;
    for (i, s) in sections.iter().enumerate() {
        if cstr(&elf, names.offset + s.name as usize)? == SECTION {
            program = Some(i);
        }
    }
    let program = program.ok_or("no iter/task_file section")?;
    let code = slice(&elf, sections[program].offset, sections[program].size)?;
    if !code.len().is_multiple_of(8) {
        return Err("a torn instruction".into());
    }
    // SHT_REL (9) or SHT_RELA (4) for the program: a map or a global the
    // loader would have to place.
    if sections
        .iter()
        .any(|s| (s.kind == 9 || s.kind == 4) && s.info as usize == program)
    {
        return Err("relocations in the program".into());
    }
    for magic in PLACEHOLDERS {
        let loads = code
            .chunks_exact(8)
            .filter(|i| i[0] & 7 == 1 && u16::from_le_bytes([i[2], i[3]]) == magic)
            .count();
        if loads != 1 {
            return Err(format!("{loads} loads at the placeholder {magic:#x}"));
        }
    }
    fs::write(out.join("owners.insns"), code).map_err(|e| e.to_string())
}

struct Section {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    info: u32,
}

/// The section headers of a little-endian ELF64 object.
fn sections(elf: &[u8]) -> Result<Vec<Section>, String> {
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a little-endian ELF64 object".into());
    }
    let at = u64_at(elf, 40)? as usize;
    let size = usize::from(u16_at(elf, 58)?);
    let count = usize::from(u16_at(elf, 60)?);
    (0..count)
        .map(|i| {
            let h = at + i * size;
            Ok(Section {
                name: u32_at(elf, h)?,
                kind: u32_at(elf, h + 4)?,
                offset: u64_at(elf, h + 24)? as usize,
                size: u64_at(elf, h + 32)? as usize,
                info: u32_at(elf, h + 44)?,
            })
        })
        .collect()
}

fn slice(b: &[u8], at: usize, len: usize) -> Result<&[u8], String> {
    b.get(at..at + len).ok_or_else(|| "cut short".into())
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    Ok(u16::from_le_bytes(
        slice(b, at, 2)?.try_into().map_err(|_| "u16")?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    Ok(u32::from_le_bytes(
        slice(b, at, 4)?.try_into().map_err(|_| "u32")?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    Ok(u64::from_le_bytes(
        slice(b, at, 8)?.try_into().map_err(|_| "u64")?,
    ))
}

fn cstr(b: &[u8], at: usize) -> Result<&str, String> {
    let rest = b.get(at..).ok_or("a name out of bounds")?;
    let end = rest
        .iter()
        .position(|&c| c == 0)
        .ok_or("an unterminated name")?;
    std::str::from_utf8(&rest[..end]).map_err(|e| e.to_string())
}
