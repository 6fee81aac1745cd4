//! One driver per [`Mode`]: `once` (scan, capture, analyze), `watch`
//! (and the recorder), `report` (the timeline of recordings), `kill`,
//! `serve` (the exporter); `term` owns the terminal. Each driver calls the
//! [`pipeline`](crate::pipeline) and a renderer.

mod kill;
mod once;
mod report;
mod serve;
mod term;
mod watch;

use std::io::Write;
use std::sync::atomic::AtomicBool;

use crate::cli::Format;
use crate::config::{Config, Mode};
use crate::error::{Outcome, RunError};
use crate::render;
use crate::report::Report;

/// Set by SIGINT/SIGTERM: a watch ends after the current sample, the
/// exporter stops.
pub static STOP: AtomicBool = AtomicBool::new(false);

/// Runs the mode `cfg` asks for, writing to `out`.
pub fn run(cfg: &Config, out: &mut dyn Write) -> Result<Outcome, RunError> {
    match &cfg.mode {
        Mode::Scan => once::scan(cfg, out),
        Mode::Capture { output } => once::capture(cfg, output, out),
        Mode::Analyze { file } => once::analyze(cfg, file, out),
        Mode::Watch(w) => watch::run(cfg, w, out),
        Mode::Report { files } => report::run(cfg, files, out),
        Mode::Kill { choice, yes } => kill::run(cfg, choice, *yes, out),
        Mode::Serve {
            listen,
            scrape_timeout,
            web_config,
            max_connections,
        } => serve::run(
            cfg,
            &serve::Options {
                listen: *listen,
                scrape_timeout: *scrape_timeout,
                web_config: web_config.clone(),
                max_connections: *max_connections,
            },
        ),
        Mode::Completions { shell } => once::completions(*shell, out),
    }
}

/// The reports in the format asked for.
fn write(cfg: &Config, reports: &[Report], out: &mut dyn Write) -> std::io::Result<()> {
    // --all-netns labels each namespace, even when there is only one.
    let many = reports.len() > 1 || cfg.all_netns;
    match (cfg.format, reports) {
        (Format::Table, [one]) if !many => render::table::write(one, term::look(cfg), out),
        (Format::Table, all) => render::table::write_all(all, term::look(cfg), out),
        (Format::Json, [one]) if !many => render::json::write(one, out),
        (Format::Json, all) => render::json::write_all(all, out),
        (Format::Prometheus, all) => render::prometheus::write(all, &cfg.metrics, out),
        (Format::Markdown | Format::Html, all) => {
            render::markdown::write(all, &cfg.command_line, out)
        }
    }
}
