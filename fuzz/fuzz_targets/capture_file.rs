#![no_main]
//! zombiescan::fuzzing::capture_file on any bytes: it must never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zombiescan::fuzzing::capture_file(data));
