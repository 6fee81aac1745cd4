#![no_main]
//! zombiescan::fuzzing::recording on any bytes: it must never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zombiescan::fuzzing::recording(data));
