#![no_main]
//! zombiescan::fuzzing::host_files on any bytes: it must never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zombiescan::fuzzing::host_files(data));
