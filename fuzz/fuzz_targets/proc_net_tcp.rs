#![no_main]
//! zombiescan::fuzzing::proc_net_tcp on any bytes: it must never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zombiescan::fuzzing::proc_net_tcp(data));
