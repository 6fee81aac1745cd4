//! One function per kind of input zombiescan reads from outside, each
//! taking raw bytes and going as far as that input goes: the parser, and
//! for a capture or a recording the classifier and every renderer after
//! it. The fuzz targets in `fuzz/` call these, and the tests replay the
//! fuzz corpora (`fuzz/corpus/TARGET/`) through them, so that what the
//! fuzzer found stays fixed on stable Rust. None may panic, whatever the
//! bytes: an error is an answer.

use std::collections::BTreeMap;

use crate::classify::{self, Thresholds};
use crate::collect::{capture, host, netlink, procnet};
use crate::model::{Family, Filter};
use crate::render;
use crate::report::timeline;
use crate::report::{Options, Report};

/// A netlink sock_diag datagram, as the kernel sends it.
pub fn netlink_datagram(data: &[u8]) {
    let mut sockets = Vec::new();
    let _ = netlink::parse_datagram(data, &mut sockets);
}

/// `/proc/net/tcp` or `tcp6`, with and without a port filter.
pub fn proc_net_tcp(data: &[u8]) {
    for family in [Family::Ipv4, Family::Ipv6] {
        for ports in [vec![], vec![30020]] {
            let filter = Filter {
                ports,
                ..Filter::default()
            };
            let _ = procnet::parse(data, family, 100, &filter, &mut Vec::new());
        }
    }
}

/// The host files: sockstat, netstat/snmp counters, file-nr, uptime.
pub fn host_files(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut sockstat = BTreeMap::new();
    host::parse_sockstat(&text, &mut sockstat);
    let _ = host::parse_counters(&text, "TcpExt");
    let _ = host::parse_counters(&text, "Tcp");
    let _ = host::parse_file_nr(&text);
    let _ = host::parse_uptime(&text);
}

/// A capture file: parsed, then each snapshot classified, reported and
/// rendered in every format.
pub fn capture_file(data: &[u8]) {
    let Ok(snaps) = capture::parse(data, "fuzz") else {
        return;
    };
    let t = Thresholds::default();
    let opts = Options {
        all_sockets: true,
        ..Options::default()
    };
    let reports: Vec<Report> = snaps
        .iter()
        .map(|s| {
            let mut r = Report::new(s, classify::classify(s, &t), &opts);
            r.hints.extend(classify::pointers(s, &t, None));
            r
        })
        .collect();
    let mut out = Vec::new();
    for r in &reports {
        let _ = render::table::write(r, render::table::Look::default(), &mut out);
        let _ = render::json::write(r, &mut out);
    }
    let narrow = render::table::Look {
        explain: true,
        color: true,
        width: Some(60),
    };
    let _ = render::table::write_all(&reports, narrow, &mut out);
    let _ = render::json::write_all(&reports, &mut out);
    let _ = render::markdown::write(&reports, "zombiescan analyze fuzz", &mut out);
    let _ = render::prometheus::write(&reports, &Default::default(), &mut out);
    // The bounds at their tightest: every endpoint "other", a series per pid.
    let tight = render::prometheus::Options {
        top_remotes: 0,
        pid_labels: true,
    };
    let text = render::prometheus::encode(&reports, &tight);
    assert!(
        text.lines()
            .filter(|l| l.starts_with("zombiescan_port_sockets{") && l.contains("outbound"))
            .all(|l| l.contains("remote=\"other\"")),
        "an endpoint past --top-remotes 0 has a series of its own"
    );
}

/// A recording: read line by line, its timeline rendered in every format.
pub fn recording(data: &[u8]) {
    let mut b = timeline::Builder::default();
    if b.read(data).is_err() {
        return;
    }
    let tl = b.finish();
    let mut out = Vec::new();
    let _ = render::timeline::write_table(&tl, "fuzz", &mut out);
    let _ = render::timeline::write_markdown(&tl, "fuzz", &mut out);
    let _ = render::timeline::write_html(&tl, "fuzz", &mut out);
    let _ = render::timeline::write_json(&tl, &["fuzz".into()], &mut out);
}
