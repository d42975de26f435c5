//! Bytes as a config file: the whole file, and a Collector `tail_sampling` block as
//! `wbpf validate` reads one; what parses is built into samplers, as the gateway does at start.
//! Error messages are rendered too: they quote the file by line and column.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wbpf_sampler::{HeadSampler, TailSampler};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    match wbpf_config::parse_str(text, "fuzz.yaml") {
        Ok(config) => {
            let sampling = &config.gateway.sampling;
            if let Some(block) = &sampling.tail_sampling {
                drop(TailSampler::build(block).map_err(|err| err.to_string()));
            }
            if let Some(block) = sampling.trigger_rules_block() {
                drop(TailSampler::build(&block).map_err(|err| err.to_string()));
            }
            if let Some(head) = &sampling.head {
                drop(HeadSampler::from_config(head).map_err(|err| err.to_string()));
            }
        }
        Err(err) => drop(err.to_string()),
    }

    match wbpf_config::parse_tail_sampling_block(text, "fuzz.yaml") {
        Ok(block) => drop(TailSampler::build(&block).map_err(|err| err.to_string())),
        Err(err) => drop(err.to_string()),
    }
});
