//! Capture files: every snapshot of a scan, frozen, for an analysis later,
//! on another machine, by someone else (`zombiescan capture -o FILE`,
//! `zombiescan analyze FILE`).
//!
//! The file is gzip-compressed JSON: `{"format": "zombiescan-capture",
//! "version": 1, "zombiescan": "0.1.0", "snapshots": [...]}`, each snapshot
//! the model as it was collected (sockets with their raw diag fields and
//! tcp_info, owners, processes, host counters, namespace). Uncompressed JSON
//! reads too. A file of a later version, a truncated or a foreign one is
//! refused with a sentence that says which.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::Serialize;
use serde::de::DeserializeSeed;

use crate::error::{Error, Result};
use crate::model::Snapshot;

pub const FORMAT: &str = "zombiescan-capture";
pub const VERSION: u32 = 1;

/// A file zombiescan writes: created 0600 (captures hold full command
/// lines, where passwords are common) and never through a symbolic link
/// planted at its path. `append` for a recording, else a new file.
pub fn create_private(path: &Path, append: bool) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other(
            "it is a symbolic link: refusing to write through it",
        ));
    }
    let mut o = std::fs::OpenOptions::new();
    if append {
        o.append(true).create(true);
    } else {
        o.write(true).create_new(true);
    }
    o.mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// Writes `snapshots` to `path`, gzip-compressed: to a new private file in
/// the same directory, renamed into place once complete, so that a reader
/// never sees half a capture and a link planted at `path` is replaced, not
/// followed.
pub fn write(path: &Path, snapshots: &[Snapshot]) -> Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(Error::write(
            path,
            std::io::Error::other("it is a symbolic link: refusing to write through it"),
        ));
    }
    let name = path
        .file_name()
        .map_or_else(|| "capture".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let file = create_private(&tmp, false).map_err(|e| Error::write(path, e))?;
    let written = write_to(file, snapshots).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::write(path, e));
    }
    Ok(())
}

fn write_to(file: File, snapshots: &[Snapshot]) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Out<'a> {
        format: &'a str,
        version: u32,
        zombiescan: &'a str,
        snapshots: &'a [Snapshot],
    }
    let mut gz = GzEncoder::new(BufWriter::new(file), Compression::fast());
    serde_json::to_writer(
        &mut gz,
        &Out {
            format: FORMAT,
            version: VERSION,
            zombiescan: env!("CARGO_PKG_VERSION"),
            snapshots,
        },
    )?;
    let w = gz.finish()?;
    let file = w.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()
}

/// The most bytes of input read from a file, compressed or not: 1 GiB, or
/// `ZOMBIESCAN_MAX_INPUT` (bytes). A capture of 100,000 sockets is about
/// 60 MB of JSON.
pub fn max_input() -> u64 {
    std::env::var("ZOMBIESCAN_MAX_INPUT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1 << 30)
}

fn too_big(max: u64) -> String {
    format!(
        "larger than the bound on input, {max} bytes: set ZOMBIESCAN_MAX_INPUT=BYTES to raise it"
    )
}

/// Opens an input file that must be a regular file (not a device, a pipe
/// or a directory, which could be endless) of at most [`max_input`] bytes.
pub fn open_input(path: &Path) -> std::result::Result<File, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max_input() {
        return Err(too_big(max_input()));
    }
    Ok(f)
}

/// Opens a file read as a stream (a recording): a regular file, of any
/// size, since it is read a line at a time.
pub fn open_input_stream(path: &Path) -> std::result::Result<File, String> {
    let f = File::open(path).map_err(|e| e.to_string())?;
    let meta = f.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    Ok(f)
}

/// A reader that fails once more than `max` bytes have come through it:
/// the bound on input applies to what is parsed, after inflating.
struct Bounded<'a, R> {
    inner: R,
    left: u64,
    over: &'a std::cell::Cell<bool>,
}

impl<R: Read> Read for Bounded<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One byte more tells a file of exactly `max` bytes from a
            // larger one.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.over.set(true);
            return Err(std::io::Error::other("over the bound on input"));
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Parses a capture from its bytes (gzip or plain JSON).
pub fn parse(bytes: &[u8], what: &str) -> Result<Vec<Snapshot>> {
    parse_from(bytes, what)
}

/// Parses a capture as it is read (gzip or plain JSON): the text is never
/// held whole, and at most [`max_input`] bytes of it, after inflating, are
/// read. Memory follows the sockets the capture holds, not its size.
pub fn parse_from(input: impl Read, what: &str) -> Result<Vec<Snapshot>> {
    let bad = |detail: String| Error::Capture {
        file: what.to_string(),
        detail,
    };
    let max = max_input();
    let mut input = BufReader::with_capacity(1 << 16, input);
    let gzip = input
        .fill_buf()
        .map_err(|e| bad(format!("unreadable ({e})")))?
        .starts_with(&[0x1f, 0x8b]);
    let text: Box<dyn Read> = if gzip {
        Box::new(GzDecoder::new(input))
    } else {
        Box::new(input)
    };
    let over = std::cell::Cell::new(false);
    // serde_json reads a byte at a time: from a BufReader of its own (by
    // value, where std reads a byte straight from the buffer).
    let text = BufReader::with_capacity(
        1 << 16,
        Bounded {
            inner: text,
            left: max,
            over: &over,
        },
    );
    let mut verdict = None;
    let parsed = {
        let mut de = serde_json::Deserializer::from_reader(text);
        Stream {
            verdict: &mut verdict,
        }
        .deserialize(&mut de)
        .and_then(|snaps| de.end().map(|()| snaps))
    };
    if over.get() {
        let what = if gzip { "inflates " } else { "" };
        return Err(bad(format!("{what}{}", too_big(max))));
    }
    if let Some(v) = verdict {
        return Err(bad(v));
    }
    let snapshots = parsed.map_err(|e| {
        if e.is_io() {
            bad(format!("truncated or corrupt ({e})"))
        } else if e.is_eof() {
            bad(format!("truncated ({e})"))
        } else {
            bad(format!("not a zombiescan capture ({e})"))
        }
    })?;
    if snapshots.is_empty() {
        return Err(bad("holds no snapshot".into()));
    }
    Ok(snapshots)
}

/// The capture's top-level object, read key by key: `format` and
/// `version` are checked as they arrive (before the snapshots in every
/// file zombiescan writes), so that a newer or a foreign file says so
/// rather than failing on a field this version does not know. A refusal
/// is left in `verdict`.
struct Stream<'v> {
    verdict: &'v mut Option<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Stream<'_> {
    type Value = Vec<Snapshot>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        de: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Stream<'_> {
    type Value = Vec<Snapshot>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a zombiescan capture object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        use serde::de::{Error as _, IgnoredAny};
        let mut refuse = |why: String| {
            let e = A::Error::custom(&why);
            *self.verdict = Some(why);
            e
        };
        let (mut format, mut version, mut snapshots) = (None::<String>, None::<u32>, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "format" => {
                    let f: String = map.next_value()?;
                    if f != FORMAT {
                        return Err(refuse(NOT_OURS.into()));
                    }
                    format = Some(f);
                }
                "version" => {
                    let v: u32 = map.next_value()?;
                    check_version(Some(v)).map_err(&mut refuse)?;
                    version = Some(v);
                }
                "snapshots" => snapshots = Some(map.next_value::<Vec<Snapshot>>()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if format.is_none() {
            return Err(refuse(NOT_OURS.into()));
        }
        check_version(version).map_err(&mut refuse)?;
        snapshots.ok_or_else(|| A::Error::missing_field("snapshots"))
    }
}

const NOT_OURS: &str = "not a zombiescan capture (no \"format\": \"zombiescan-capture\")";

fn check_version(v: Option<u32>) -> std::result::Result<(), String> {
    match v {
        Some(VERSION) => Ok(()),
        Some(v) if v > VERSION => Err(format!(
            "written by a newer zombiescan (capture version {v}, this one reads {VERSION}): upgrade zombiescan"
        )),
        v => Err(format!("unknown capture version {v:?}")),
    }
}

/// Reads a capture file.
pub fn read(path: &Path) -> Result<Vec<Snapshot>> {
    let what = path.display().to_string();
    let file = open_input(path).map_err(|detail| Error::Capture {
        file: what.clone(),
        detail,
    })?;
    parse_from(file, &what)
}
