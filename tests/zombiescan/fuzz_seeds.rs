//! The fuzz targets' seeds (`fuzz/seeds/TARGET/`), replayed on stable
//! through the very entry points the targets call: what the fuzzer was
//! given, and any input it once broke zombiescan with, must keep passing.

use std::path::Path;

fn replay(target: &str, entry: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(target);
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        entry(&data);
        // And every prefix of a small seed: the cuts a fuzzer tries first.
        if data.len() <= 4096 {
            for cut in (0..data.len()).step_by(97) {
                entry(&data[..cut]);
            }
        }
        n += 1;
    }
    assert!(n > 0, "no seed for {target}");
}

#[test]
fn the_fuzz_seeds_pass_through_every_entry_point() {
    use zombiescan::fuzzing::*;
    replay("netlink_datagram", netlink_datagram);
    replay("proc_net_tcp", proc_net_tcp);
    replay("host_files", host_files);
    replay("capture_file", capture_file);
    replay("recording", recording);
}
