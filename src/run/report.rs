//! `zombiescan report FILE...`: the timeline of recordings.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::Format;
use crate::config::Config;
use crate::error::{Error, Outcome, RunError};
use crate::report::timeline;
use crate::{collect, render};

pub fn run(cfg: &Config, files: &[PathBuf], out: &mut dyn Write) -> Result<Outcome, RunError> {
    let mut timeline = timeline::Builder::default();
    for f in files {
        let file = collect::capture::open_input_stream(f)
            .map_err(|detail| Error::read(f, std::io::Error::other(detail)))?;
        timeline
            .read(std::io::BufReader::with_capacity(1 << 16, file))
            .map_err(|e| Error::read(f, e))?;
    }
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    if timeline.rounds() == 0 {
        return Err(Error::malformed(
            names.join(", "),
            "no sample: not a zombiescan recording (--record FILE writes one)",
        )
        .into());
    }
    let tl = timeline.finish();
    let what = names.join(" ");
    match cfg.format {
        Format::Markdown => render::timeline::write_markdown(&tl, &what, out)?,
        Format::Html => render::timeline::write_html(&tl, &what, out)?,
        Format::Json => render::timeline::write_json(&tl, &names, out)?,
        Format::Table => render::timeline::write_table(&tl, &what, out)?,
        // Refused with a usage error when the options are read.
        Format::Prometheus => {}
    }
    out.flush()?;
    Ok(Outcome::default())
}
