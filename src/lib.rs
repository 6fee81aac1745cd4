//! zombiescan: Linux connection-state diagnostics.
//!
//! Data flows one way, and imports with it:
//!
//! ```text
//! collect ──► model ──► classify ──► report ──► render
//! ```
//!
//! - `collect` reads the kernel and /proc (or a capture) into a
//!   [`model::Snapshot`]; its parsers are pure functions over bytes.
//! - `classify` turns a snapshot into findings: pure, no I/O, no clock.
//! - `report` computes every fact a renderer shows, once: groups, totals,
//!   each listed socket's direction, kinds and age; a watch's changes, a
//!   recording's timeline, a kill's choice.
//! - `render` only formats a report (table, JSON, Markdown, Prometheus,
//!   the timeline page) and escapes what came from outside.
//! - `pipeline` is what every mode shares (scan, classify, report), and
//!   `run` holds one driver per [`config::Mode`].
//!
//! `units` (human durations, RFC 3339) is a leaf every layer may use.
//! Nothing imports upward: `collect` and `classify` import `model`;
//! `report` imports `classify` and `model`; `render` imports `report`,
//! `model`, `units` and the types of `classify`; only `run/` and
//! `pipeline` import them all. Only `main.rs`, `run/` and `collect/`
//! touch the OS.

pub mod classify;
pub mod cli;
pub mod collect;
pub mod config;
pub mod error;
pub mod fuzzing;
pub mod model;
pub mod pipeline;
pub mod render;
pub mod report;
pub mod run;
pub mod units;

#[cfg(test)]
mod testing;

pub use error::{Outcome, RunError};
pub use run::{STOP, run};
