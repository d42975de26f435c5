//! Bytes as an OTLP/HTTP JSON body: decode, then the path to storage.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    match wbpf_otlp::decode::json(body) {
        Ok(request) => wbpf_fuzz::ingest(request),
        Err(err) => drop(err.to_string()),
    }
});
