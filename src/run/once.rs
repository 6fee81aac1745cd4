//! The modes that report once: a scan, a capture (and the report of the
//! same snapshot), the analysis of a capture; and the completion scripts.

use std::io::Write;
use std::path::Path;

use crate::config::Config;
use crate::error::{Outcome, RunError};
use crate::{cli, collect, pipeline};

pub fn scan(cfg: &Config, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let scanned = pipeline::scan(cfg, None)?;
    report(cfg, &scanned, None, out)
}

pub fn capture(cfg: &Config, output: &Path, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let scanned = pipeline::scan(cfg, None)?;
    let snaps = &scanned.snapshots;
    collect::capture::write(output, snaps)?;
    let sockets: usize = snaps.iter().map(|s| s.sockets.len()).sum();
    let notice = format!(
        "captured {sockets} sockets in {} network namespace{} to {}",
        snaps.len(),
        if snaps.len() == 1 { "" } else { "s" },
        output.display()
    );
    report(cfg, &scanned, Some(notice), out)
}

pub fn analyze(cfg: &Config, file: &Path, out: &mut dyn Write) -> Result<Outcome, RunError> {
    let snaps = pipeline::read_capture(cfg, file)?;
    report(cfg, &pipeline::Scanned::new(cfg, snaps), None, out)
}

fn report(
    cfg: &Config,
    scanned: &pipeline::Scanned,
    notice: Option<String>,
    out: &mut dyn Write,
) -> Result<Outcome, RunError> {
    let reports = scanned.reports(cfg);
    super::write(cfg, &reports, out)?;
    out.flush()?;
    Ok(Outcome {
        failed: pipeline::failed(cfg, &reports),
        notice,
    })
}

pub fn completions(shell: cli::CompletionShell, out: &mut dyn Write) -> Result<Outcome, RunError> {
    use clap::CommandFactory;
    use clap_complete::Shell;
    let shell = match shell {
        cli::CompletionShell::Bash => Shell::Bash,
        cli::CompletionShell::Zsh => Shell::Zsh,
        cli::CompletionShell::Fish => Shell::Fish,
    };
    clap_complete::generate(shell, &mut cli::Cli::command(), "zombiescan", out);
    out.flush()?;
    Ok(Outcome::default())
}
