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
use std::io::{BufWriter, Read};
use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::Snapshot;

pub const FORMAT: &str = "zombiescan-capture";
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct CaptureFile {
    format: String,
    version: u32,
    zombiescan: String,
    snapshots: Vec<Snapshot>,
}

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

/// Parses a capture from its bytes (gzip or plain JSON), inflating at most
/// [`max_input`] bytes.
pub fn parse(bytes: &[u8], what: &str) -> Result<Vec<Snapshot>> {
    let bad = |detail: String| Error::Capture {
        file: what.to_string(),
        detail,
    };
    let mut json = Vec::new();
    let max = max_input();
    let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        GzDecoder::new(bytes)
            .take(max.saturating_add(1))
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("truncated or corrupt ({e})")))?;
        if json.len() as u64 > max {
            return Err(bad(format!("inflates {}", too_big(max))));
        }
        &json
    } else {
        bytes
    };
    // Format and version first, so that a newer file says so rather than
    // failing on a field this version does not know.
    #[derive(Deserialize)]
    struct Head {
        format: Option<String>,
        version: Option<u32>,
    }
    let head: Head = serde_json::from_slice(text).map_err(|e| {
        if e.is_eof() {
            bad(format!("truncated ({e})"))
        } else {
            bad(format!("not a zombiescan capture ({e})"))
        }
    })?;
    if head.format.as_deref() != Some(FORMAT) {
        return Err(bad(
            "not a zombiescan capture (no \"format\": \"zombiescan-capture\")".into(),
        ));
    }
    match head.version {
        Some(VERSION) => {}
        Some(v) if v > VERSION => {
            return Err(bad(format!(
                "written by a newer zombiescan (capture version {v}, this one reads {VERSION}): upgrade zombiescan"
            )));
        }
        v => return Err(bad(format!("unknown capture version {v:?}"))),
    }
    let file: CaptureFile =
        serde_json::from_slice(text).map_err(|e| bad(format!("corrupt ({e})")))?;
    if file.snapshots.is_empty() {
        return Err(bad("holds no snapshot".into()));
    }
    Ok(file.snapshots)
}

/// Reads a capture file.
pub fn read(path: &Path) -> Result<Vec<Snapshot>> {
    let what = path.display().to_string();
    let file = open_input(path).map_err(|detail| Error::Capture {
        file: what.clone(),
        detail,
    })?;
    let mut bytes = Vec::new();
    file.take(max_input().saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::read(path, e))?;
    parse(&bytes, &what)
}
