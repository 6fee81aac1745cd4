//! zombiescan's integration tests: the real executable and library on
//! fixtures and on live network namespaces.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod capture;
mod cli;
mod docker;
mod findings;
mod fixtures;
mod fuzz_seeds;
mod hostile;
mod kill;
mod live;
mod namespaces;
mod netns;
mod serve;
mod servers;
mod watch;
