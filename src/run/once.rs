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
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli::Cli::command(), "zombiescan", &mut script);
    let script = String::from_utf8_lossy(&script);
    out.write_all(netns_names(shell, &script).as_bytes())?;
    out.flush()?;
    Ok(Outcome::default())
}

/// `--netns` completes the `ip netns` names (read when TAB is pressed)
/// as well as paths: the generated scripts only know paths.
fn netns_names(shell: clap_complete::Shell, script: &str) -> String {
    use clap_complete::Shell;
    const BASH_FILES: &str = r#"COMPREPLY=($(compgen -f "${cur}"))"#;
    const BASH_NAMES: &str = r#"COMPREPLY=($(compgen -W "$(ip netns list 2>/dev/null | cut -d' ' -f1)" -- "${cur}") $(compgen -f -- "${cur}"))"#;
    const ZSH_FILES: &str = ":NAME|PATH|PID|pod/NS/NAME:_default'";
    const ZSH_NAMES: &str = r#":NAME|PATH|PID|pod/NS/NAME:{compadd -- ${${(f)"$(ip netns list 2>/dev/null)"}%% *}; _files}'"#;
    const FISH_NAMES: &str = r#" -a "(ip netns list 2>/dev/null | string replace -r ' .*' '')""#;
    let mut out = String::with_capacity(script.len() + 1024);
    let mut after_netns = false;
    for line in script.split_inclusive('\n') {
        let body = line.trim_end_matches('\n');
        let trimmed = body.trim_start();
        let mut line = line.to_string();
        match shell {
            Shell::Bash if after_netns && trimmed == BASH_FILES => {
                line = line.replace(BASH_FILES, BASH_NAMES);
            }
            Shell::Zsh if trimmed.starts_with("'--netns=[") => {
                line = line.replace(ZSH_FILES, ZSH_NAMES);
            }
            Shell::Fish if body.contains(" -l netns ") && body.ends_with(" -r") => {
                line = format!("{body}{FISH_NAMES}\n");
            }
            _ => {}
        }
        after_netns = trimmed == "--netns)";
        out.push_str(&line);
    }
    out
}
