//! Fuzzes the zip path of the unpacker: any bytes, prefixed with a zip
//! signature so that the input reaches the zip reader.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut bytes = b"PK\x03\x04".to_vec();
    bytes.extend_from_slice(data);
    common::unpack_and_check(&bytes);
});
