//! zombiescan's integration tests: the real executable and library on
//! fixtures and on live network namespaces.

// Test code: a failed expectation is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

/// The preamble of a live test: returns, loudly, where the test cannot
/// run (not root; under CI that fails instead), naming the test it is in.
macro_rules! live {
    () => {{
        fn here() {}
        let path = std::any::type_name_of_val(&here);
        let test = path
            .strip_suffix("::here")
            .unwrap_or(path)
            .rsplit("::")
            .next()
            .unwrap_or(path);
        if !$crate::netns::live_or_skip(test) {
            return;
        }
    }};
}

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
