#![no_main]
//! zombiescan::fuzzing::netlink_datagram on any bytes: it must never panic.

libfuzzer_sys::fuzz_target!(|data: &[u8]| zombiescan::fuzzing::netlink_datagram(data));
