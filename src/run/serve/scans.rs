//! The exporter's scans: one scanner thread owns the memory of the
//! owners' fd tables (as a watch does) and runs a scan when a scrape asks
//! for one; scrapes that arrive while it runs wait for that same scan. A
//! scrape waits at most its timeout, then gets the last complete scan and
//! its age. A failed scan (or a panic in one) is logged and served as
//! `zombiescan_scrape_error 1`; the exporter serves on.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::log;
use crate::config::Config;
use crate::error;
use crate::render::prometheus;
use crate::{collect, pipeline};

/// The last scan the scanner completed.
struct Done {
    /// Its exposition; empty when it failed.
    text: Arc<String>,
    failed: bool,
    finished: Instant,
    took: Duration,
}

#[derive(Default)]
struct State {
    /// A scrape waits for a scan.
    wanted: bool,
    scanning: bool,
    /// Scans completed, failed ones included.
    scans: u64,
    failed: u64,
    last: Option<Done>,
    /// The last successful scan, served when a new one is late.
    last_good: Option<Done>,
    /// Scrapes waiting for a scan.
    waiting: u32,
    stopping: bool,
}

pub struct Shared {
    state: Mutex<State>,
    /// Wakes the scanner.
    changed: Condvar,
    /// Scans completed: scrapes wait on it.
    done: tokio::sync::watch::Sender<u64>,
}

impl Default for Shared {
    fn default() -> Shared {
        Shared {
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
            done: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Shared {
    /// The scanner returns.
    pub fn stop(&self) {
        self.lock().stopping = true;
        self.changed.notify_all();
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data: go on with it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Runs a scan each time a scrape asks, until the exporter stops.
pub fn scanner(cfg: &Config, shared: &Shared) {
    let mut memory = collect::procs::Memory::default();
    run_scans(shared, || {
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            let scanned = pipeline::scan(cfg, Some(&mut memory))?;
            let reports = scanned.reports(cfg);
            Ok::<_, error::Error>(prometheus::encode(&reports, &cfg.metrics))
        }));
        match result {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => {
                // What the walk remembered may be half-updated.
                memory = collect::procs::Memory::default();
                Err("it panicked (a bug: please report it)".into())
            }
        }
    });
}

/// The scanner's loop: `scan` each time a scrape asks, until stopping.
fn run_scans(shared: &Shared, mut scan: impl FnMut() -> Result<String, String>) {
    loop {
        {
            let mut st = shared.lock();
            while !st.wanted && !st.stopping {
                st = shared
                    .changed
                    .wait_timeout(st, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            if st.stopping {
                return;
            }
            st.wanted = false;
            st.scanning = true;
        }
        let started = Instant::now();
        let (text, failed) = match scan() {
            Ok(text) => (text, false),
            Err(e) => {
                log(&format!("scan failed: {e}"));
                (String::new(), true)
            }
        };
        let done = Done {
            text: Arc::new(text),
            failed,
            finished: Instant::now(),
            took: started.elapsed(),
        };
        let mut st = shared.lock();
        st.scanning = false;
        st.scans += 1;
        if failed {
            st.failed += 1;
        } else {
            st.last_good = Some(Done {
                text: Arc::clone(&done.text),
                ..done
            });
        }
        st.last = Some(done);
        shared.done.send_replace(st.scans);
    }
}

/// What a scrape serves: the scan running now (its own, or one it shares
/// with the scrapes that came during it) when it completes within `wait`,
/// else the last complete one; `None` before any scan completed.
pub async fn fetch(shared: &Shared, wait: Duration) -> Option<(Arc<String>, prometheus::Scrape)> {
    let until = tokio::time::Instant::now() + wait;
    let mut done = shared.done.subscribe();
    let seen = {
        let mut st = shared.lock();
        if !st.scanning {
            st.wanted = true;
            shared.changed.notify_all();
        }
        st.waiting += 1;
        st.scans
    };
    // Counted out however the wait ends, a scraper that went away too.
    struct Waiting<'a>(&'a Shared);
    impl Drop for Waiting<'_> {
        fn drop(&mut self) {
            self.0.lock().waiting -= 1;
        }
    }
    let waiting = Waiting(shared);
    let _ = tokio::time::timeout_at(until, done.wait_for(|n| *n > seen)).await;
    drop(waiting);
    let st = shared.lock();
    let fresh = st.scans > seen;
    let done = match (&st.last, &st.last_good) {
        (Some(last), _) if fresh => last,
        // Late: the last complete scan that did not fail.
        (_, Some(good)) => good,
        (Some(last), None) => last,
        (None, None) => return None,
    };
    let scrape = prometheus::Scrape {
        error: done.failed,
        duration_s: done.took.as_secs_f64(),
        age_s: done.finished.elapsed().as_secs_f64(),
        scans: st.scans,
        failed_scans: st.failed,
    };
    Some((Arc::clone(&done.text), scrape))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    fn shared() -> Shared {
        Shared::default()
    }

    /// A scrape, as a connection of the exporter makes it.
    fn fetch(shared: &Shared, wait: Duration) -> Option<(Arc<String>, prometheus::Scrape)> {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime")
            .block_on(super::fetch(shared, wait))
    }

    fn wait_until(shared: &Shared, what: &str, done: impl Fn(&State) -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        while !done(&shared.lock()) {
            assert!(Instant::now() < until, "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A scanner whose scans ("scan 1", "scan 2", ...) each wait for a
    /// message on the channel returned.
    fn gated<'s>(s: &'s std::thread::Scope<'s, '_>, shared: &'s Shared) -> mpsc::Sender<()> {
        let (go, gate) = mpsc::channel::<()>();
        s.spawn(move || {
            let mut n = 0;
            run_scans(shared, || {
                gate.recv().map_err(|e| e.to_string())?;
                n += 1;
                Ok(format!("scan {n}\n"))
            });
        });
        go
    }

    fn stop(shared: &Shared) {
        shared.stop();
    }

    /// Eight scrapes that come while a scan runs get that one scan.
    #[test]
    fn concurrent_scrapes_share_one_scan() {
        let shared = &shared();
        std::thread::scope(|s| {
            let go = gated(s, shared);
            let scrapes: Vec<_> = (0..8)
                .map(|_| s.spawn(|| fetch(shared, Duration::from_secs(60))))
                .collect();
            wait_until(shared, "8 scrapes waiting on one scan", |st| {
                st.waiting == 8 && st.scanning
            });
            go.send(()).expect("scan");
            for t in scrapes {
                let (text, scrape) = t.join().expect("scrape").expect("served");
                assert_eq!(text.as_str(), "scan 1\n");
                assert_eq!((scrape.scans, scrape.error), (1, false));
            }
            stop(shared);
        });
    }

    /// A scan that takes longer than the scrape may wait: the scrape gets
    /// the last complete scan and its age; before any, nothing.
    #[test]
    fn a_late_scan_serves_the_last_complete_one() {
        let shared = &shared();
        std::thread::scope(|s| {
            let go = gated(s, shared);
            assert!(fetch(shared, Duration::from_millis(20)).is_none());
            go.send(()).expect("scan");
            wait_until(shared, "the first scan", |st| st.scans == 1);
            std::thread::sleep(Duration::from_millis(30));
            // The second scan waits at the gate.
            let (text, scrape) = fetch(shared, Duration::from_millis(20)).expect("served");
            assert_eq!(text.as_str(), "scan 1\n");
            assert!(scrape.age_s >= 0.03, "{scrape:?}");
            go.send(()).expect("scan");
            wait_until(shared, "the second scan", |st| st.scans == 2);
            stop(shared);
        });
    }

    /// A failed scan, or one that panics, is an error to the scrape; the
    /// next scan serves again.
    #[test]
    fn a_failed_scan_is_an_error_not_a_dead_exporter() {
        let shared = shared();
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut n = 0;
                run_scans(&shared, || {
                    n += 1;
                    match n {
                        1 => Err("namespace not found".into()),
                        2 => {
                            let r = std::panic::catch_unwind(|| panic!("a bug"));
                            r.map_err(|_| "it panicked".to_string())
                        }
                        _ => Ok("fine\n".into()),
                    }
                });
            });
            let wait = Duration::from_secs(60);
            let (text, scrape) = fetch(&shared, wait).expect("served");
            assert!(text.is_empty() && scrape.error, "{scrape:?}");
            let (_, scrape) = fetch(&shared, wait).expect("served");
            assert_eq!((scrape.error, scrape.failed_scans), (true, 2));
            let (text, scrape) = fetch(&shared, wait).expect("served");
            assert_eq!(text.as_str(), "fine\n");
            assert_eq!(
                (scrape.error, scrape.scans, scrape.failed_scans),
                (false, 3, 2)
            );
            stop(&shared);
        });
    }
}
