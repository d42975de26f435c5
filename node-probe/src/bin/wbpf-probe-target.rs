//! A tiny workload for the probe's tests: publishes a trace context, then does timed work.
//!
//! `wbpf-probe-target <trace-id-hex|none> <span-id-hex> <sleep-ms>` publishes the context
//! through `wbpf_trace_context` (unless `none`), calls `wbpf_test_work` sleeping that long,
//! clears the context and exits. Both functions are exported, unmangled symbols the probe
//! attaches uprobes to.

use std::process::ExitCode;
use std::time::Duration;

/// The workload convention: trace id as two big-endian halves, span id big-endian.
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_trace_context(trace_id_hi: u64, trace_id_lo: u64, span_id: u64) {
    // Keeps the call (and its arguments) from being optimised away.
    std::hint::black_box((trace_id_hi, trace_id_lo, span_id));
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_test_work(sleep_ns: u64) {
    std::thread::sleep(Duration::from_nanos(std::hint::black_box(sleep_ns)));
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trace_id, span_id, sleep_ms] = args.as_slice() else {
        eprintln!("usage: wbpf-probe-target <trace-id-hex|none> <span-id-hex> <sleep-ms>");
        return ExitCode::from(2);
    };
    let Ok(sleep_ms) = sleep_ms.parse::<u64>() else {
        eprintln!("sleep-ms must be a whole number of milliseconds");
        return ExitCode::from(2);
    };

    let context = if trace_id == "none" {
        None
    } else {
        match (
            u128::from_str_radix(trace_id, 16),
            u64::from_str_radix(span_id, 16),
        ) {
            (Ok(trace), Ok(span)) => Some(((trace >> 64) as u64, trace as u64, span)),
            _ => {
                eprintln!("trace id must be 32 hex digits and span id 16");
                return ExitCode::from(2);
            }
        }
    };

    if let Some((hi, lo, span)) = context {
        wbpf_trace_context(hi, lo, span);
    }
    wbpf_test_work(sleep_ms * 1_000_000);
    if context.is_some() {
        wbpf_trace_context(0, 0, 0);
    }
    ExitCode::SUCCESS
}
