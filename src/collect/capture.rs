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
use std::io::{BufWriter, Read, Write};
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

/// Writes `snapshots` to `path`, gzip-compressed.
pub fn write(path: &Path, snapshots: &[Snapshot]) -> Result<()> {
    #[derive(Serialize)]
    struct Out<'a> {
        format: &'a str,
        version: u32,
        zombiescan: &'a str,
        snapshots: &'a [Snapshot],
    }
    let file = File::create(path).map_err(|e| Error::write(path, e))?;
    let mut gz = GzEncoder::new(BufWriter::new(file), Compression::fast());
    serde_json::to_writer(
        &mut gz,
        &Out {
            format: FORMAT,
            version: VERSION,
            zombiescan: env!("CARGO_PKG_VERSION"),
            snapshots,
        },
    )
    .map_err(|e| Error::write(path, e.into()))?;
    gz.finish()
        .and_then(|mut w| w.flush())
        .map_err(|e| Error::write(path, e))
}

/// Parses a capture from its bytes (gzip or plain JSON).
pub fn parse(bytes: &[u8], what: &str) -> Result<Vec<Snapshot>> {
    let bad = |detail: String| Error::Capture {
        file: what.to_string(),
        detail,
    };
    let mut json = Vec::new();
    let text: &[u8] = if bytes.starts_with(&[0x1f, 0x8b]) {
        GzDecoder::new(bytes)
            .read_to_end(&mut json)
            .map_err(|e| bad(format!("truncated or corrupt ({e})")))?;
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
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    parse(&bytes, &path.display().to_string())
}
