//! Fuzzes the tar.gz path of the unpacker: the input is gzipped as it
//! comes, so the fuzzer explores tar headers rather than deflate streams.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use std::io::Write;

fuzz_target!(|data: &[u8]| {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).expect("gzip");
    common::unpack_and_check(&gz.finish().expect("gzip"));
});
