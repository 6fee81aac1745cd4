//! `--watch`, `--record` and `report`: deltas and ages across samples, a
//! recorder killed mid-run, the timeline of a recording.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::netns::{BIN, Netns, ok};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("zombiescan-{}-{name}", std::process::id()))
}

#[test]
fn a_watch_shows_close_wait_growing_and_how_old_it_is() {
    live!();
    let started = std::time::Instant::now();
    let mut ns = Netns::new("watch");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.wait_accepted(2);
    // One more closed by its client every 0.4 s while the watch runs.
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "20", "--then", "close", "--every", "0.4",
    ]);
    let out = ns.exec(&[
        BIN, "--watch", "1s", "--count", "3", "--port", "30020", "--stall", "1s", "--json",
    ]);
    ok(&out);
    let docs: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("one JSON document per sample");
    assert_eq!(docs.len(), 3);
    let cw: Vec<&Value> = docs
        .iter()
        .map(|d| &d["watch"]["states"]["CLOSE_WAIT"])
        .collect();
    let now: Vec<i64> = cw.iter().map(|c| c["now"].as_i64().expect("now")).collect();
    assert!(
        now[0] >= 2 && now[1] > now[0] && now[2] > now[1],
        "growing: {now:?}"
    );
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["watch"]["sample"], i + 1);
        assert_eq!(d["summary"]["by_state"]["CLOSE_WAIT"], now[i]);
        crate::cli::assert_valid(serde_json::to_vec(d).expect("json").as_slice());
    }
    assert_eq!(cw[2]["since_previous"].as_i64(), Some(now[2] - now[1]));
    assert_eq!(cw[2]["since_start"].as_i64(), Some(now[2] - now[0]));
    assert!(
        cw[2]["per_minute"].as_f64().is_some_and(|r| r > 60.0),
        "{}",
        cw[2]
    );
    // Younger than a minute, the last minute is the whole watch.
    assert_eq!(cw[2]["last_minute"], cw[2]["since_start"]);
    assert!(docs[2]["watch"]["drops"].is_array());
    // The kernel tells how long a socket has been in CLOSE_WAIT: known from
    // the first sample, and by the third at least the two samples since.
    assert_eq!(cw[0]["at_least"], false);
    let elapsed = started.elapsed().as_secs_f64();
    assert!(
        cw[2]["oldest_seen_s"]
            .as_f64()
            .is_some_and(|s| s >= 1.8 && s <= elapsed),
        "{} after {elapsed} s",
        cw[2]
    );
    assert_eq!(cw[2]["at_least"], false);
    // One age per socket: the watch and the finding agree.
    let f = docs[2]["findings"]
        .as_array()
        .and_then(|f| f.iter().find(|f| f["kind"] == "close_wait"))
        .expect("close_wait with --stall 1s");
    let (seen, quoted) = (
        cw[2]["oldest_seen_s"].as_f64().unwrap_or(0.0),
        f["evidence"]["oldest_s"].as_f64().unwrap_or(-1.0),
    );
    assert!(
        (seen - quoted).abs() < 0.2,
        "watch {seen} s, finding {quoted} s"
    );
}

fn report(files: &[&Path], format: &str) -> std::process::Output {
    Command::new(BIN)
        .arg("report")
        .args(files)
        .args(["--format", format])
        .output()
        .expect("report")
}

#[test]
fn a_recorder_killed_mid_run_leaves_a_readable_recording() {
    live!();
    let mut ns = Netns::new("rec");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "30", "--then", "close", "--every", "0.1",
    ]);
    let file = temp("night.ndjson");
    let _ = std::fs::remove_file(&file);
    let mut rec = Command::new("ip")
        .args([
            "netns", "exec", &ns.name, BIN, "--watch", "200ms", "--record",
        ])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .expect("recorder");
    std::thread::sleep(Duration::from_millis(1500));
    rec.kill().expect("SIGKILL");
    let _ = rec.wait();
    let mut out = Vec::new();
    let _ = std::io::Read::read_to_end(rec.stdout.as_mut().expect("stdout"), &mut out);
    assert!(
        out.is_empty(),
        "a recorder whose stdout is not a terminal prints nothing"
    );
    let lines = std::fs::read_to_string(&file).expect("recording");
    assert!(
        lines.lines().count() >= 3,
        "{} samples",
        lines.lines().count()
    );
    let out = report(&[&file], "table");
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("CLOSE_WAIT") && text.contains("samples"),
        "{text}"
    );
    // Power lost mid-write: a torn last line is counted, the rest reads.
    let mut torn = lines.clone().into_bytes();
    torn.extend_from_slice(&lines.as_bytes()[..lines.len().min(80)]);
    std::fs::write(&file, torn).expect("write");
    let out = report(&[&file], "markdown");
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 lines could not be read"));
    let _ = std::fs::remove_file(&file);
}

/// A recorder off a terminal folds the healthy connections into counts:
/// its sample counts, groups and owns what one that keeps every socket
/// (`--sockets`) records.
#[test]
fn a_recorders_sample_is_the_same_with_its_healthy_connections_folded() {
    live!();
    let mut ns = Netns::new("recfold");
    ns.close_wait_leak(3, 5);
    let sample = |extra: &[&str], name: &str| -> Value {
        let file = temp(name);
        let _ = std::fs::remove_file(&file);
        let out = Command::new("ip")
            .args(["netns", "exec", &ns.name, BIN, "--record"])
            .arg(&file)
            .args(extra)
            .output()
            .expect("recorder");
        ok(&out);
        let text = std::fs::read_to_string(&file).expect("recording");
        let _ = std::fs::remove_file(&file);
        serde_json::from_str(text.lines().next().expect("a sample")).expect("json")
    };
    let folded = sample(&[], "folded.ndjson");
    let kept = sample(&["--sockets"], "kept.ndjson");
    for key in ["total", "by_state", "ports", "processes"] {
        assert_eq!(folded[key], kept[key], "{key}");
    }
    assert_eq!(folded["by_state"]["ESTABLISHED"], 10);
}

#[test]
fn the_recording_rotates_at_its_size_limit() {
    live!();
    let ns = Netns::new("rot");
    let file = temp("rot.ndjson");
    let old = temp("rot.ndjson.1");
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&old);
    let out = ns.exec(&[
        BIN,
        "--watch",
        "100ms",
        "--count",
        "6",
        "--record",
        file.to_str().expect("path"),
        "--record-max",
        "600",
    ]);
    ok(&out);
    let (a, b) = (
        std::fs::read_to_string(&old).expect("FILE.1"),
        std::fs::read_to_string(&file).expect("FILE"),
    );
    assert!(b.len() <= 600 && !a.is_empty());
    assert!(a.lines().count() + b.lines().count() <= 6);
    let out = report(&[&old, &file], "table");
    ok(&out);
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&old);
}

#[test]
fn the_timeline_of_a_recorded_incident() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recording/closewait.ndjson");
    let out = report(&[&file], "markdown");
    ok(&out);
    let md = String::from_utf8_lossy(&out.stdout).into_owned();
    // Markdown escapes the underscores.
    let row = md
        .lines()
        .find(|l| l.starts_with("| CLOSE\\_WAIT |"))
        .expect("CLOSE_WAIT row");
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    // series | first | began to rise | peak | peak at | last
    assert_eq!(&cells[1..7], EXPECTED_CLOSE_WAIT, "{row}");
    let finding = md
        .lines()
        .find(|l| l.starts_with("| close\\_wait port 30020 |"))
        .expect("finding row");
    assert!(finding.contains(EXPECTED_CLOSE_WAIT[2]), "{finding}");

    let out = report(&[&file], "html");
    let html = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    assert!(html.contains("<svg") && html.contains("data-state=\"CLOSE_WAIT\""));
    assert!(!html.contains("<script"), "self-contained, static");
    for tag in ["svg", "table", "body", "html", "head"] {
        assert_eq!(
            html.matches(&format!("<{tag}")).count(),
            html.matches(&format!("</{tag}>")).count(),
            "{tag}"
        );
    }

    // For scripts: the documented JSON, read back into its types.
    for json in [report(&[&file], "json"), {
        let mut c = Command::new(BIN);
        c.arg("report").arg(&file).arg("--json");
        c.output().expect("report --json")
    }] {
        ok(&json);
        crate::cli::assert_valid_timeline(&json.stdout);
        let doc: zombiescan::render::timeline::TimelineDoc =
            serde_json::from_slice(&json.stdout).expect("reads back");
        let cw = doc
            .states
            .iter()
            .find(|s| s.name == "CLOSE_WAIT")
            .expect("CLOSE_WAIT");
        assert_eq!(cw.values.len(), doc.samples);
        assert_eq!(doc.times.len(), doc.samples);
        assert_eq!((cw.first, cw.peak, cw.last), (2, 7, 0));
        assert!(
            cw.onset_at
                .as_deref()
                .is_some_and(|t| t.contains("03:57:18")),
            "{cw:?}"
        );
        assert!(cw.peak_at.contains("03:57:19"), "{cw:?}");
    }
    // Prometheus has no timeline: a usage error, not a silent table.
    let out = report(&[&file], "prometheus");
    assert_eq!(out.status.code(), Some(2));
}

/// What `fixtures/recording/closewait.ndjson` (see fixtures/README.md)
/// holds: CLOSE_WAIT on port 30020 from 2 to its peak, then down when the
/// server exited.
const EXPECTED_CLOSE_WAIT: [&str; 6] = ["CLOSE\\_WAIT", "2", "03:57:18", "7", "03:57:19", "0"];

/// Every socket's owners, by inode (0: none found).
fn owners(snap: &zombiescan::model::Snapshot) -> std::collections::BTreeMap<u64, Vec<u32>> {
    snap.sockets
        .iter()
        .filter(|s| s.inode != 0)
        .map(|s| (s.inode, snap.owners_of(s).to_vec()))
        .collect()
}

#[test]
fn the_owners_a_watch_remembers_follow_the_processes() {
    use zombiescan::collect::{self, procs::Memory};
    live!();
    let mut ns = Netns::new("memory");
    let server = ns.spawn(&["listen", "--port", "30020"])[0];
    let c1 = ns.spawn(&["connect", "--port", "30020", "--count", "3"])[0];
    ns.wait_accepted(3);
    let opts = ns.scan_options(true);
    let mut memory = Memory::default();
    let scan = |memory: Option<&mut Memory>| {
        let mut snaps = collect::scan(&opts, memory).expect("scan");
        assert_eq!(snaps.len(), 1, "--netns scans one namespace");
        snaps.remove(0)
    };
    let held = |o: &std::collections::BTreeMap<u64, Vec<u32>>, pid: u32| {
        o.values().filter(|p| p.contains(&pid)).count()
    };
    let first = owners(&scan(Some(&mut memory)));
    assert_eq!(first, owners(&scan(None)));
    assert_eq!((held(&first, server), held(&first, c1)), (4, 3));

    // A new client process, new sockets in the server: found, and the
    // same as a scan that remembers nothing.
    let c2 = ns.spawn(&["connect", "--port", "30020", "--count", "2"])[0];
    ns.wait_accepted(5);
    let second = owners(&scan(Some(&mut memory)));
    assert_eq!(second, owners(&scan(None)));
    assert_eq!(
        (held(&second, server), held(&second, c1), held(&second, c2)),
        (6, 3, 2)
    );

    // The first client killed: its sockets are gone, the server's ends of
    // them wait in CLOSE_WAIT, still the server's.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c1 as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    ns.wait_states(&[("CLOSE_WAIT", 3)]);
    let third = owners(&scan(Some(&mut memory)));
    assert_eq!(third, owners(&scan(None)));
    assert_eq!(
        (held(&third, server), held(&third, c1), held(&third, c2)),
        (6, 0, 2)
    );
}

/// The pixels of a PNG as RGB.
fn rgb_pixels(png_bytes: Vec<u8>) -> (u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("a frame");
    let step = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let px = buf[..info.buffer_size()]
        .chunks_exact(step)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, px)
}

fn hex_rgb(color: &str) -> [u8; 3] {
    let v = u32::from_str_radix(color.trim_start_matches('#'), 16).expect("hex color");
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

#[test]
fn the_timeline_page_renders_in_a_browser() {
    live!();
    if Command::new("chromium").arg("--version").output().is_err() {
        crate::netns::skip(
            "the_timeline_page_renders_in_a_browser",
            "needs Debian's chromium (.ci/run installs it)",
        );
        return;
    }
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/recording/closewait.ndjson");
    let page = temp("timeline.html");
    let shot = temp("timeline.png");
    let profile = temp("chromium-profile");
    std::fs::write(&page, report(&[&file], "html").stdout).expect("write page");
    // In a namespace of its own: the browser reaches no network at all.
    let ns = Netns::new("browser");
    let browse = |extra: &[&str]| {
        let url = format!("file://{}", page.display());
        let profile = format!("--user-data-dir={}", profile.display());
        let args = [
            &["chromium", "--headless", "--no-sandbox", "--disable-gpu"][..],
            &["--hide-scrollbars", "--window-size=1000,800", &profile],
            extra,
            &[&url],
        ]
        .concat();
        let out = ns.exec(&args);
        ok(&out);
        out.stdout
    };
    // What the browser made of the page: a title that names what was
    // measured, the story, and the states' chart with a line per state
    // (then the findings' and the drops' charts).
    let dom = String::from_utf8(browse(&["--dump-dom"])).expect("utf-8");
    assert!(dom.contains("<title>zombiescan timeline: "), "{dom}");
    assert!(dom.contains("<h2>What happened</h2>"), "{dom}");
    let start = dom.find("id=\"states\"").expect("the states' chart");
    let chart = &dom[start..start + dom[start..].find("</svg>").expect("its end")];
    let states = ["FIN_WAIT2", "TIME_WAIT", "CLOSE_WAIT", "LISTEN"];
    for s in states {
        assert!(chart.contains(&format!("data-state=\"{s}\"")), "{s}");
    }
    assert_eq!(chart.matches("<polyline").count(), states.len());
    assert!(dom.contains("id=\"findings\""), "{dom}");

    // What it drew: each state's colour, in the legend at the right of
    // the plot and along the lines inside it.
    let arg = format!("--screenshot={}", shot.display());
    browse(&[&arg]);
    let (width, px) = rgb_pixels(std::fs::read(&shot).expect("screenshot"));
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&page);
    // The screenshot stays, under target/, for a person to look at.
    let kept = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/timeline.png");
    let _ = std::fs::rename(&shot, &kept).or_else(|_| std::fs::remove_file(&shot));
    // The plot ends 250 px before the chart's right edge (its legend's
    // room), 32 px of the page's margin in.
    let (plot_end, legend_end) = (680, 1000);
    let count = |color: [u8; 3], xs: std::ops::Range<u32>| {
        px.iter()
            .enumerate()
            .filter(|(i, p)| **p == color && xs.contains(&(*i as u32 % width)))
            .count()
    };
    let colors = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e"];
    for (s, c) in states.iter().zip(colors) {
        assert!(
            count(hex_rgb(c), plot_end..legend_end) >= 30,
            "legend swatch of {s} ({c})"
        );
    }
    // FIN_WAIT2 runs under CLOSE_WAIT, and shows through its dashes.
    for (s, c) in states.iter().zip(colors) {
        assert!(count(hex_rgb(c), 0..plot_end) >= 100, "line of {s} ({c})");
    }
}

/// The two pages a watch of two samples draws on a pseudo-terminal (under
/// `script`) of 100 columns: the first on 200 rows, the second after the
/// terminal shrank to 12 (stty on /dev/tty: a background job's stdin is
/// /dev/null), so both show the same report, two seconds apart.
fn pages_on_a_shrinking_terminal(ns: &Netns) -> [Vec<String>; 2] {
    let cmd = format!(
        "stty rows 200 cols 100; (sleep 1; stty rows 12 cols 100 </dev/tty) & \
         NO_COLOR=1 exec {BIN} --watch 2s --count 2 --port 30020"
    );
    let out = ns.exec(&["script", "-qec", &cmd, "/dev/null"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // Each page: home, lines each cleared to their end, the rest of the
    // screen cleared; no line feed after the last line (it would scroll).
    let pages: Vec<&str> = text.split("\x1b[H").collect();
    assert_eq!(pages.len(), 3, "one page per sample: {text:?}");
    let lines = |page: &str| -> Vec<String> {
        assert!(
            !page.ends_with('\n'),
            "a line feed on the bottom row scrolls"
        );
        page.split_terminator("\r\n")
            .map(|l| {
                l.strip_suffix("\x1b[K")
                    .expect("line cleared to its end")
                    .to_string()
            })
            .collect()
    };
    let first = pages[1]
        .strip_suffix("\x1b[J")
        .expect("rest of screen cleared");
    // After the last page, a line feed puts the prompt below it.
    let last = pages[2]
        .strip_suffix("\x1b[J\r\n")
        .expect("rest of screen cleared, then the line feed at the end");
    [lines(first), lines(last)]
}

#[test]
fn a_watch_on_a_terminal_shows_what_fits() {
    live!();
    let mut ns = Netns::new("screen");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "4", "--then", "close",
    ]);
    ns.wait_accepted(4);
    // Settled, so that both samples show the same report.
    ns.wait_states(&[("CLOSE_WAIT", 4), ("FIN_WAIT2", 4)]);
    let [tall, short] = pages_on_a_shrinking_terminal(&ns);
    assert!(tall.len() > 12, "the whole report: {tall:#?}");
    assert!(!tall.iter().any(|l| l.contains("more lines")));
    assert_eq!(short.len(), 12, "{short:#?}");
    // The top of the same report (its times and ages aside).
    assert!(short[0].starts_with("zombiescan · ") && tall[0].starts_with("zombiescan · "));
    assert!(short.iter().all(|l| l.chars().count() <= 100));
    assert!(
        short[11].starts_with(&format!("… {} more lines", tall.len() - 11)),
        "{short:#?}\n{tall:#?}"
    );
}

#[test]
fn a_watch_of_every_namespace_follows_each_on_its_own() {
    live!();
    let mut ns = Netns::new("allwatch");
    ns.spawn(&["listen", "--port", "30020"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "2", "--then", "close",
    ]);
    ns.wait_accepted(2);
    ns.wait_states(&[("CLOSE_WAIT", 2)]);
    // From the host's namespace: this one and at least the host's own.
    let file = temp("allnetns.ndjson");
    let _ = std::fs::remove_file(&file);
    let out = Command::new(BIN)
        .args(["--all-netns", "--watch", "0.3s", "--count", "2", "--json"])
        .output()
        .expect("run");
    ok(&out);
    let rounds: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .expect("one JSON document per sample");
    assert_eq!(rounds.len(), 2);
    let first: Vec<Value> = rounds[0]["namespaces"]
        .as_array()
        .map(|d| d.iter().map(|d| d["netns"]["inode"].clone()).collect())
        .unwrap_or_default();
    for (i, round) in rounds.iter().enumerate() {
        crate::cli::assert_valid(serde_json::to_vec(round).expect("json").as_slice());
        let docs = round["namespaces"].as_array().expect("namespaces");
        assert!(docs.len() >= 2);
        // Every namespace is at its own sample: i + 1 for those of the
        // first round, 1 for one that appeared since (other tests make
        // theirs meanwhile).
        for d in docs {
            let want = if first.contains(&d["netns"]["inode"]) {
                i + 1
            } else {
                1
            };
            assert_eq!(d["watch"]["sample"], want, "{}", d["netns"]);
        }
        let ours = docs
            .iter()
            .find(|d| d["netns"]["name"] == ns.name.as_str())
            .expect("the test's namespace");
        let cw = &ours["watch"]["states"]["CLOSE_WAIT"];
        assert_eq!(cw["now"], 2);
        assert_eq!(cw["since_start"], 0, "against its own first sample");
    }
    // Recorded, a line per namespace and round; its timeline has two
    // rounds.
    let rec = Command::new(BIN)
        .args(["--all-netns", "--watch", "0.3s", "--count", "2", "--record"])
        .arg(&file)
        .output()
        .expect("record");
    ok(&rec);
    // A line per namespace and round: two for this test's namespace (the
    // others come and go with the tests running beside this one).
    let lines = std::fs::read_to_string(&file).expect("recording");
    let ours = lines
        .lines()
        .filter(|l| l.contains(&format!("ip netns {}", ns.name)))
        .count();
    assert_eq!(ours, 2, "{lines}");
    let md = report(&[&file], "markdown");
    let md = String::from_utf8_lossy(&md.stdout);
    assert!(md.contains("2 samples"), "{md}");
    let _ = std::fs::remove_file(&file);
}

/// A night at `--watch 5s` (17,280 samples) of a server whose workers are
/// recycled, five new pids a sample: the report's memory follows what it
/// shows, not every series ever seen times every sample.
#[test]
fn a_night_of_churning_pids_is_reported_in_bounded_memory() {
    use std::io::Write;
    let file = temp("churn.ndjson");
    {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&file).expect("create"));
        let mut live: std::collections::VecDeque<u32> = (1000..1020).collect();
        let mut next = 1020;
        for i in 0..17_280u64 {
            for _ in 0..5 {
                live.pop_front();
                live.push_back(next);
                next += 1;
            }
            let procs: Vec<String> = live
                .iter()
                .map(|p| {
                    format!(
                        r#"{{"pid":{p},"comm":"gunicorn","sockets":3,"fds_open":12,"fd_limit":1024,"by_state":{{"ESTABLISHED":2,"CLOSE_WAIT":{}}}}}"#,
                        i % 7
                    )
                })
                .collect();
            writeln!(
                out,
                r#"{{"t":"2026-11-25T03:00:00.000Z","t_ms":{},"host":"h","netns":"n","total":300,"by_state":{{"ESTABLISHED":250,"CLOSE_WAIT":{}}},"ports":[{{"port":30020,"direction":"inbound","remote":null,"by_state":{{"CLOSE_WAIT":{}}}}}],"processes":[{}],"findings":[],"counters":{{}}}}"#,
                1_795_575_845_000 + i * 5000,
                i % 50,
                i % 50,
                procs.join(",")
            )
            .expect("write");
        }
    }
    let (code, _, max_rss_mib) = crate::peak_rss(
        Command::new(BIN)
            .args(["report", "--format", "markdown"])
            .arg(&file),
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, Some(0));
    assert!(max_rss_mib < 150.0, "report took {max_rss_mib:.0} MiB");
}

/// In an 80-column pseudo-terminal no line is wider than the screen and
/// every pid is whole, piped to `cat` too (the width comes from the
/// terminal behind the pipe); one that reports 0×0 (script(1), some CI
/// runners) is laid out as with no terminal at all, at 80 columns, not one
/// letter per column.
#[test]
fn a_scan_fits_an_80_column_terminal_and_a_0x0_one_is_not_narrow() {
    live!();
    let mut ns = Netns::new("cols");
    let server = ns.spawn(&["listen", "--port", "30020", "--workers", "2"]);
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "4", "--then", "close",
    ]);
    ns.wait_accepted(4);
    ns.wait_states(&[("CLOSE_WAIT", 4)]);
    let run = |stty: &str| {
        let cmd = format!("stty {stty}; NO_COLOR=1 exec {BIN} --port 30020 --stall 0s --sockets");
        let out = ns.exec(&["script", "-qec", &cmd, "/dev/null"]);
        ok(&out);
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    };
    let eighty = run("rows 24 cols 80");
    // Run under `ip netns exec NAME`: the namespace is named, as --netns
    // names it.
    assert!(
        eighty.contains(&format!("ip netns {}", ns.name)),
        "{eighty}"
    );
    for l in eighty.lines() {
        assert!(l.chars().count() <= 80, "wider than 80: {l}");
    }
    for pid in &server {
        let whole = eighty
            .split(|c: char| !c.is_ascii_digit())
            .any(|w| w == pid.to_string());
        assert!(whole, "pid {pid} not whole:\n{eighty}");
    }
    // The first screen holds the verdict: the finding, where, and its
    // owner's pid.
    let screen: Vec<&str> = eighty.lines().take(24).collect();
    let verdict = screen
        .iter()
        .find(|l| l.starts_with("WARNING close_wait ×4 · port 30020 · "))
        .unwrap_or_else(|| panic!("no verdict in the first 24 lines:\n{}", screen.join("\n")));
    assert!(
        server.iter().any(|p| verdict.contains(&p.to_string())),
        "{verdict}"
    );
    // Piped to cat on that terminal: no line wider, no word split.
    let piped = {
        let cmd = format!(
            "stty rows 24 cols 80; NO_COLOR=1 {BIN} --port 30020 --stall 0s --sockets | cat"
        );
        let out = ns.exec(&["script", "-qec", &cmd, "/dev/null"]);
        ok(&out);
        String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
    };
    for l in piped.lines() {
        assert!(l.chars().count() <= 80, "piped, wider than 80: {l}");
    }
    assert!(piped.contains("close_wait"), "{piped}");
    // 0×0: as with no terminal, 80 columns, and never one letter a line.
    let zero = run("rows 0 cols 0");
    let widest = |t: &str| t.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    assert!(widest(&zero) <= 80 && widest(&zero) > 40, "{zero}");
    let title = zero.lines().next().unwrap_or_default();
    assert!(title.starts_with("zombiescan · "), "{zero}");
    assert!(zero.contains("close_wait"), "{zero}");
}

/// A watch in an 80×24 pane is for a glance: every finding's line (with
/// its owner and age) is on the first page.
#[test]
fn a_watch_page_at_80x24_shows_every_finding() {
    live!();
    let mut ns = Netns::new("page");
    let server = ns.spawn(&["listen", "--port", "30020"])[0];
    ns.spawn(&[
        "connect", "--port", "30020", "--count", "4", "--then", "close",
    ]);
    ns.wait_accepted(4);
    ns.wait_states(&[("CLOSE_WAIT", 4), ("FIN_WAIT2", 4)]);
    let cmd = format!(
        "stty rows 24 cols 80; NO_COLOR=1 exec {BIN} --watch 1s --count 1 --port 30020 --stall 0s"
    );
    let out = ns.exec(&["script", "-qec", &cmd, "/dev/null"]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let page = text.split("\x1b[H").nth(1).expect("a page");
    let lines: Vec<String> = page
        .split("\r\n")
        .map(|l| l.replace("\x1b[K", "").replace("\x1b[J", ""))
        .filter(|l| !l.is_empty())
        .collect();
    assert!(lines.len() <= 24, "{lines:#?}");
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{lines:#?}");
    let cw = lines
        .iter()
        .find(|l| l.starts_with("WARNING close_wait ×4"))
        .unwrap_or_else(|| panic!("close_wait line: {lines:#?}"));
    assert!(
        cw.contains(&format!("(pid {server})")) && cw.contains("oldest"),
        "{cw}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("INFO fin_wait2 ×4")),
        "{lines:#?}"
    );
}
