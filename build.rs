//! Builds bpf/owners.bpf.c, the kernel-side owner lookup, with clang's BPF
//! target when clang is there (CLANG names another); without it zombiescan
//! is built without it and finds owners by walking /proc, as it does
//! wherever BPF is refused. ZOMBIESCAN_NO_BPF=1 builds without it.
//!
//! From the object it keeps what src/collect/bpf.rs loads: the program's
//! instructions (`owners.insns`) and where they load the map `wanted`
//! (`owners.rs`). It checks here that the object is what that loader
//! expects: one program, relocations against `wanted` only, and each
//! placeholder offset on exactly one load.

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

/// Writes the program's instructions and the indices of its loads of
/// `wanted`.
fn extract(object: &Path, out: &Path) -> Result<(), String> {
    let elf = fs::read(object).map_err(|e| e.to_string())?;
    let sections = sections(&elf)?;
    let name_of = |i: usize| -> Result<&str, String> {
        let names = sections
            .get(usize::from(u16_at(&elf, 62)?))
            .ok_or("no .shstrtab")?;
        cstr(&elf, names.offset + sections[i].name as usize)
    };
    let mut program = None;
    for i in 0..sections.len() {
        if name_of(i)? == SECTION {
            program = Some(i);
        }
    }
    let program = program.ok_or("no iter/task_file section")?;
    let code = slice(&elf, sections[program].offset, sections[program].size)?;
    if !code.len().is_multiple_of(8) {
        return Err("a torn instruction".into());
    }
    let mut wanted_at = Vec::new();
    for s in &sections {
        // SHT_REL for the program; .rel.BTF* and others are not loaded.
        if s.kind != 9 || s.info as usize != program {
            continue;
        }
        let symtab = sections.get(s.link as usize).ok_or("no symbol table")?;
        let strtab = sections
            .get(symtab.link as usize)
            .ok_or("no string table")?;
        for rel in slice(&elf, s.offset, s.size)?.chunks_exact(16) {
            let at = u64_at(rel, 0)? as usize;
            let sym = (u64_at(rel, 8)? >> 32) as usize;
            let name = cstr(
                &elf,
                strtab.offset + u32_at(&elf, symtab.offset + sym * 24)? as usize,
            )?;
            if name != "wanted" || !at.is_multiple_of(8) || code.get(at) != Some(&0x18) {
                return Err(format!("a relocation against {name} at {at}"));
            }
            wanted_at.push(at / 8);
        }
    }
    if wanted_at.is_empty() {
        return Err("no load of the map wanted".into());
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
    fs::write(out.join("owners.insns"), code).map_err(|e| e.to_string())?;
    fs::write(
        out.join("owners.rs"),
        format!("pub const WANTED_AT: &[usize] = &{wanted_at:?};\n"),
    )
    .map_err(|e| e.to_string())
}

struct Section {
    name: u32,
    kind: u32,
    offset: usize,
    size: usize,
    link: u32,
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
                link: u32_at(elf, h + 40)?,
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
