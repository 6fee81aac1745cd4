//! What the owner lookup needs from the kernel's BTF
//! (`/sys/kernel/btf/vmlinux`, the format of include/uapi/linux/btf.h):
//! the id of the iterator's function and the offsets of four fields. The
//! file (5 MB, 150,000 types) is streamed through a buffer of 64 KiB and
//! only the type offsets are kept (4 bytes a type): a full parse would
//! cost tens of megabytes and milliseconds for four numbers. The parser
//! reads at offsets from a [`Source`]: the file, or bytes in the tests.

use std::fs::File;
use std::io::{Error, ErrorKind};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The kernel's layout, as the owner lookup reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// The BTF id of the function `bpf_iter_task_file`: the program's
    /// attach point.
    pub iter_task_file: u32,
    /// Byte offsets of task_struct.tgid, file.f_inode, inode.i_mode and
    /// inode.i_ino.
    pub tgid: u32,
    pub f_inode: u32,
    pub i_mode: u32,
    pub i_ino: u32,
}

/// The fields, as (struct, member).
const FIELDS: [(&str, &str); 4] = [
    ("task_struct", "tgid"),
    ("file", "f_inode"),
    ("inode", "i_mode"),
    ("inode", "i_ino"),
];
const ITER: &str = "bpf_iter_task_file";

const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_FUNC: u32 = 12;
/// TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: followed to the type
/// they qualify.
const QUALIFIERS: [u32; 5] = [8, 9, 10, 11, 18];

/// Reads the running kernel's layout.
pub fn kernel() -> Result<Layout, String> {
    read(Path::new("/sys/kernel/btf/vmlinux"))
}

/// Reads the layout from the BTF at `path`.
pub fn read(path: &Path) -> Result<Layout, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    layout(&file, 64 * 1024).map_err(|e| format!("{}: {e}", path.display()))
}

/// Bytes read at an offset: the kernel's file, or bytes in the tests.
trait Source {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize>;

    fn read_exact_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<()> {
        let mut got = 0;
        while got < buf.len() {
            match self.read_at(&mut buf[got..], at + got as u64) {
                Ok(0) => return Err(Error::new(ErrorKind::UnexpectedEof, "cut short")),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl Source for File {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        FileExt::read_at(self, buf, at)
    }
}

impl Source for [u8] {
    fn read_at(&self, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
        let rest = usize::try_from(at)
            .ok()
            .and_then(|a| self.get(a..))
            .unwrap_or(&[]);
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }
}

/// The layout, from BTF read `chunk` bytes at a time.
fn layout<S: Source + ?Sized>(file: &S, chunk: usize) -> Result<Layout, String> {
    let mut head = [0u8; 24];
    file.read_exact_at(&mut head, 0)
        .map_err(|e| format!("its header: {e}"))?;
    let u32_at = |i: usize| le32(&head, i);
    if head[..2] != [0x9f, 0xeb] {
        return Err("not little-endian BTF".into());
    }
    let base = u64::from(u32_at(4));
    let types = (base + u64::from(u32_at(8)), u64::from(u32_at(12)));
    let strings = (base + u64::from(u32_at(16)), u64::from(u32_at(20)));
    let names = find_names(file, strings, chunk)?;
    let name = |n: &str| names.iter().find(|(s, _)| *s == n).map(|(_, o)| *o);
    let mut index = Index::default();
    scan_types(file, types, chunk, &name, &mut index)?;
    let iter_task_file = index.func.ok_or(format!("no function {ITER}"))?;
    let mut offsets = [0u32; 4];
    for (k, (outer, member)) in FIELDS.iter().enumerate() {
        let wanted = name(member).ok_or(format!("no member {member}"))?;
        let found = index
            .structs
            .iter()
            .filter(|s| name(outer) == Some(s.name))
            .find_map(|s| member_offset(file, types, &index.offsets, s.id, wanted, 0));
        let bits = found.ok_or(format!("no {outer}.{member}"))?;
        if bits % 8 != 0 {
            return Err(format!("{outer}.{member} is a bitfield"));
        }
        offsets[k] = bits / 8;
    }
    let [tgid, f_inode, i_mode, i_ino] = offsets;
    Ok(Layout {
        iter_task_file,
        tgid,
        f_inode,
        i_mode,
        i_ino,
    })
}

/// Where each name the layout needs starts in the string section.
fn find_names<S: Source + ?Sized>(
    file: &S,
    (at, len): (u64, u64),
    chunk: usize,
) -> Result<Vec<(&'static str, u32)>, String> {
    let wanted: Vec<&'static str> = FIELDS
        .iter()
        .flat_map(|(s, m)| [*s, *m])
        .chain([ITER])
        .collect();
    let longest = wanted.iter().map(|n| n.len()).max().unwrap_or(0);
    let mut found: Vec<(&'static str, u32)> = Vec::new();
    let mut stream = Stream::new(file, at, len, chunk);
    // The start of a string cut by the end of a chunk, while it is short
    // enough to be a wanted one.
    let mut cut: Option<Vec<u8>> = Some(Vec::new());
    let mut start = 0u32;
    let mut pos = 0u32;
    while let Some(chunk) = stream.next_chunk()? {
        let mut rest = chunk;
        while let Some(end) = memchr::memchr(0, rest) {
            let piece = &rest[..end];
            let whole;
            let name: &[u8] = match cut.take() {
                Some(mut c) if !c.is_empty() => {
                    c.extend_from_slice(piece);
                    whole = c;
                    &whole
                }
                Some(_) => piece,
                // The string began too long to be wanted.
                None => &[],
            };
            if let Some(n) = wanted.iter().find(|n| n.as_bytes() == name)
                && !found.iter().any(|(f, _)| f == n)
            {
                found.push((n, start));
            }
            cut = Some(Vec::new());
            start = pos + end as u32 + 1;
            pos += end as u32 + 1;
            rest = &rest[end + 1..];
        }
        pos += rest.len() as u32;
        if let Some(c) = &mut cut {
            c.extend_from_slice(rest);
            if c.len() > longest {
                cut = None;
            }
        }
    }
    Ok(found)
}

#[derive(Default)]
struct Index {
    /// Where each type starts in the type section, by id - 1.
    offsets: Vec<u32>,
    /// The structs whose name is one of FIELDS' (a name may be given to
    /// more than one).
    structs: Vec<Named>,
    func: Option<u32>,
}

struct Named {
    id: u32,
    name: u32,
}

/// One pass over the types: their offsets, the wanted structs and the
/// function.
fn scan_types<S: Source + ?Sized>(
    file: &S,
    (at, len): (u64, u64),
    chunk: usize,
    name: &dyn Fn(&str) -> Option<u32>,
    index: &mut Index,
) -> Result<(), String> {
    let outers: Vec<u32> = FIELDS.iter().filter_map(|(s, _)| name(s)).collect();
    let iter = name(ITER);
    let mut stream = Stream::new(file, at, len, chunk);
    let mut id = 0u32;
    while stream.offset() < len {
        id += 1;
        index.offsets.push(stream.offset() as u32);
        let head = stream.take::<12>()?;
        let name_off = le32(&head, 0);
        let info = le32(&head, 4);
        let (kind, vlen) = ((info >> 24) & 0x1f, u64::from(info & 0xffff));
        if (kind == KIND_STRUCT || kind == KIND_UNION) && outers.contains(&name_off) {
            index.structs.push(Named { id, name: name_off });
        }
        if kind == KIND_FUNC && Some(name_off) == iter && index.func.is_none() {
            index.func = Some(id);
        }
        stream.skip(extra(kind, vlen)?)?;
    }
    Ok(())
}

/// The bytes that follow a type's 12-byte header (btf.h: "the kind
/// dependent data").
fn extra(kind: u32, vlen: u64) -> Result<u64, String> {
    Ok(match kind {
        // INT, VAR, DECL_TAG: one u32.
        1 | 14 | 17 => 4,
        // PTR, FWD, the qualifiers, FUNC, FLOAT.
        2 | 7 | 8 | 9 | 10 | 11 | 12 | 16 | 18 => 0,
        // ARRAY.
        3 => 12,
        // STRUCT, UNION, DATASEC, ENUM64: 12 bytes a member.
        4 | 5 | 15 | 19 => 12 * vlen,
        // ENUM, FUNC_PROTO: 8 bytes each.
        6 | 13 => 8 * vlen,
        k => return Err(format!("a BTF kind {k} this reader does not know")),
    })
}

/// The bit offset of the member named `wanted` in the struct or union
/// `id`, looking into its anonymous members (C11's unnamed structs and
/// unions) too.
fn member_offset<S: Source + ?Sized>(
    file: &S,
    (at, _): (u64, u64),
    offsets: &[u32],
    id: u32,
    wanted: u32,
    depth: u32,
) -> Option<u32> {
    let mut id = id;
    // Follow typedefs and qualifiers to the struct.
    let (kind_flag, vlen, start) = loop {
        let start = at + u64::from(*offsets.get(id.checked_sub(1)? as usize)?);
        let mut head = [0u8; 12];
        file.read_exact_at(&mut head, start).ok()?;
        let info = le32(&head, 4);
        match (info >> 24) & 0x1f {
            KIND_STRUCT | KIND_UNION => break (info >> 31 == 1, info & 0xffff, start + 12),
            k if QUALIFIERS.contains(&k) => id = le32(&head, 8),
            _ => return None,
        }
    };
    let mut members = vec![0u8; 12 * vlen as usize];
    file.read_exact_at(&mut members, start).ok()?;
    let mut anonymous = Vec::new();
    for m in members.chunks_exact(12) {
        let (name, ty, off) = (le32(m, 0), le32(m, 4), le32(m, 8));
        // With kind_flag, the high 8 bits are a bitfield's size.
        let bits = if kind_flag { off & 0x00ff_ffff } else { off };
        if name == wanted {
            return Some(bits);
        }
        if name == 0 {
            anonymous.push((ty, bits));
        }
    }
    if depth >= 4 {
        return None;
    }
    anonymous.into_iter().find_map(|(ty, bits)| {
        member_offset(file, (at, 0), offsets, ty, wanted, depth + 1).map(|b| b + bits)
    })
}

fn le32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// A section of the file, read forward through one buffer.
struct Stream<'a, S: Source + ?Sized> {
    file: &'a S,
    at: u64,
    len: u64,
    buf: Vec<u8>,
    /// The buffer holds the section's bytes [base, base + filled).
    base: u64,
    filled: usize,
    pos: u64,
}

impl<'a, S: Source + ?Sized> Stream<'a, S> {
    /// `chunk`: at least 12, a type's header.
    fn new(file: &'a S, at: u64, len: u64, chunk: usize) -> Stream<'a, S> {
        Stream {
            file,
            at,
            len,
            buf: vec![0; chunk.max(12)],
            base: 0,
            filled: 0,
            pos: 0,
        }
    }

    fn offset(&self) -> u64 {
        self.pos
    }

    /// Fills the buffer from `pos`.
    fn fill(&mut self) -> Result<(), String> {
        let want = (self.len - self.pos).min(self.buf.len() as u64) as usize;
        self.file
            .read_exact_at(&mut self.buf[..want], self.at + self.pos)
            .map_err(|e| format!("reading BTF: {e}"))?;
        self.base = self.pos;
        self.filled = want;
        Ok(())
    }

    /// The rest of the buffer, refilled when used up; `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<&[u8]>, String> {
        if self.pos >= self.len {
            return Ok(None);
        }
        if self.pos >= self.base + self.filled as u64 || self.pos < self.base {
            self.fill()?;
        }
        let from = (self.pos - self.base) as usize;
        self.pos = self.base + self.filled as u64;
        Ok(Some(&self.buf[from..self.filled]))
    }

    fn take<const N: usize>(&mut self) -> Result<[u8; N], String> {
        if self.pos + N as u64 > self.len {
            return Err("BTF cut short".into());
        }
        if self.pos < self.base || self.pos + N as u64 > self.base + self.filled as u64 {
            self.fill()?;
        }
        let from = (self.pos - self.base) as usize;
        self.pos += N as u64;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[from..from + N]);
        Ok(out)
    }

    fn skip(&mut self, n: u64) -> Result<(), String> {
        if self.pos + n > self.len {
            return Err("BTF cut short".into());
        }
        self.pos += n;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob written by hand: the header, then types, then strings.
    fn blob(types: &[u8], strings: &[u8]) -> Vec<u8> {
        let mut b = vec![0x9f, 0xeb, 1, 0];
        for v in [
            24u32,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(types);
        b.extend_from_slice(strings);
        b
    }

    fn ty(out: &mut Vec<u8>, name: u32, kind: u32, vlen: u32, kflag: bool, size_or_type: u32) {
        let info = (u32::from(kflag) << 31) | (kind << 24) | vlen;
        for v in [name, info, size_or_type] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    fn member(out: &mut Vec<u8>, name: u32, ty: u32, bits: u32) {
        for v in [name, ty, bits] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// Names in a string section, and where each starts.
    fn strings(names: &[&str]) -> (Vec<u8>, Vec<u32>) {
        let mut s = vec![0u8];
        let mut at = Vec::new();
        for n in names {
            at.push(s.len() as u32);
            s.extend_from_slice(n.as_bytes());
            s.push(0);
        }
        (s, at)
    }

    #[test]
    fn offsets_through_anonymous_unions_typedefs_and_bitfield_flags() {
        let names = [
            "int",
            "task_struct",
            "pid",
            "tgid",
            "file",
            "f_inode",
            "inode",
            "i_mode",
            "i_ino",
            "bpf_iter_task_file",
            "a_name_far_longer_than_any_wanted_one",
            "u",
        ];
        let (strs, at) = strings(&names);
        let s = |n: &str| at[names.iter().position(|x| *x == n).expect("name")];
        let mut t = Vec::new();
        // 1: int.
        ty(&mut t, s("int"), 1, 0, false, 4);
        t.extend_from_slice(&0x20u32.to_le_bytes());
        // 2: an enum of 3 values, to be skipped.
        ty(
            &mut t,
            s("a_name_far_longer_than_any_wanted_one"),
            6,
            3,
            false,
            4,
        );
        t.extend_from_slice(&[0u8; 24]);
        // 3: struct task_struct { int pid @ 0x4a0 bytes; int tgid @ 0x4a4 },
        //    with kind_flag: member offsets carry a bitfield size of 0.
        ty(&mut t, s("task_struct"), 4, 2, true, 0x1000);
        member(&mut t, s("pid"), 1, 0x4a0 * 8);
        member(&mut t, s("tgid"), 1, 0x4a4 * 8);
        // 4: struct inode { u16 i_mode @ 0; unsigned long i_ino @ 64 }.
        ty(&mut t, s("inode"), 4, 2, false, 600);
        member(&mut t, s("i_mode"), 1, 0);
        member(&mut t, s("i_ino"), 1, 64 * 8);
        // 5: a pointer to inode.
        ty(&mut t, 0, 2, 0, false, 4);
        // 6: an anonymous union holding f_inode.
        ty(&mut t, 0, 5, 1, false, 8);
        member(&mut t, s("f_inode"), 5, 0);
        // 7: a typedef of it.
        ty(&mut t, s("u"), 8, 0, false, 6);
        // 8: struct file { int x @ 0; typedef'd anonymous union @ 32 }.
        ty(&mut t, s("file"), 4, 2, false, 200);
        member(&mut t, s("pid"), 1, 0);
        member(&mut t, 0, 7, 32 * 8);
        // 9: the function.
        ty(&mut t, s("bpf_iter_task_file"), 12, 0, false, 1);
        let b = blob(&t, &strs);
        // Whole, and 13 bytes at a time: names and headers cut by the
        // buffer's end.
        let got = [layout(&b[..], 64 * 1024), layout(&b[..], 13)];
        let want = Layout {
            iter_task_file: 9,
            tgid: 0x4a4,
            f_inode: 32,
            i_mode: 0,
            i_ino: 64,
        };
        assert_eq!(got, [Ok(want), Ok(want)]);
    }

    #[test]
    fn a_missing_field_or_a_foreign_file_is_an_error() {
        let (strs, at) = strings(&["task_struct", "bpf_iter_task_file"]);
        let mut t = Vec::new();
        ty(&mut t, at[0], 4, 0, false, 8);
        ty(&mut t, at[1], 12, 0, false, 1);
        let missing = layout(&blob(&t, &strs)[..], 64 * 1024);
        let foreign = layout(&b"not btf at all, but long enough to have a header"[..], 64);
        let cut = layout(&blob(&t, &strs)[..30], 64);
        assert_eq!(missing, Err("no member tgid".into()));
        assert_eq!(foreign, Err("not little-endian BTF".into()));
        assert!(
            cut.is_err_and(|e| e.contains("cut short")),
            "a file cut short"
        );
    }

    /// The running kernel's BTF, where there is one: the layout is found,
    /// and agrees with what is known of x86-64 and arm64 kernels (i_mode
    /// first in struct inode).
    #[test]
    fn the_running_kernels_layout() {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        if !path.exists() {
            eprintln!("!!! skipped: no /sys/kernel/btf/vmlinux");
            return;
        }
        let l = read(path).expect("layout");
        assert_eq!(l.i_mode, 0);
        assert!(l.iter_task_file > 0);
        assert!(l.tgid > 0 && l.tgid < 0x7fff, "{l:?}");
        assert!(l.i_ino > 0 && l.i_ino < 0x7fff, "{l:?}");
    }
}
