//! Fuzzes init's Runtime API server: the bytes are one connection's, fed
//! through the real HTTP/1.1 parser and request router over loopback, with
//! an event ready for every `/next`. Any answer is fine; a panic or a hang
//! is not.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    lamb_init::fuzzing::runtime_api(data);
});
