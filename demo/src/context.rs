//! Trace context across the boundaries the tracing SDK cannot see: the kernel (through the
//! `wbpf_trace_context` uprobe hook) and the demo's line protocol (W3C `traceparent`).

use std::cell::Cell;
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::SpanContext;
use opentelemetry::Context;
use opentelemetry_sdk::propagation::TraceContextPropagator;

const TRACEPARENT: &str = "traceparent";

/// Tells the node probe which span the calling thread works for from now on.
///
/// A no-op that exists to be uprobed: the probe keys its thread-id -> trace-context map on the
/// arguments of each call. `trace_id_hi` and `trace_id_lo` are the trace id's bytes 0-7 and
/// 8-15 read big-endian, `span_id` the span id's bytes read big-endian; all zero means the
/// thread no longer works for any request. On x86-64 it starts with a 5-byte nop, which
/// makes the uprobe cheap (see [`crate::probe_site`]).
#[cfg(target_arch = "x86_64")]
#[no_mangle]
#[unsafe(naked)]
pub extern "C" fn wbpf_trace_context(trace_id_hi: u64, trace_id_lo: u64, span_id: u64) {
    core::arch::naked_asm!(crate::probe_site!(), "ret")
}

#[cfg(not(target_arch = "x86_64"))]
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_trace_context(trace_id_hi: u64, trace_id_lo: u64, span_id: u64) {
    std::hint::black_box((trace_id_hi, trace_id_lo, span_id));
}

/// The three hook arguments for `span`, in the probe's convention.
pub fn hook_args(span: &SpanContext) -> [u64; 3] {
    let trace = span.trace_id().to_bytes();
    let mut hi = [0u8; 8];
    let mut lo = [0u8; 8];
    hi.copy_from_slice(&trace[..8]);
    lo.copy_from_slice(&trace[8..]);
    [
        u64::from_be_bytes(hi),
        u64::from_be_bytes(lo),
        u64::from_be_bytes(span.span_id().to_bytes()),
    ]
}

/// Whether this process announces spans through the hook at all.
static PUBLISHING: AtomicBool = AtomicBool::new(true);

/// Turns announcing off (or on) for the whole process: `--no-context` makes a workload that
/// never tells the probe which request a thread serves, as an uninstrumented application
/// would, so its triggers must be matched by process, thread and time.
pub fn set_publishing(on: bool) {
    PUBLISHING.store(on, Ordering::Relaxed);
}

thread_local! {
    /// What this thread last announced through the hook.
    static ANNOUNCED: Cell<[u64; 3]> = const { Cell::new([0; 3]) };
}

/// Announces a span to the probe for as long as it lives; on drop, re-announces whatever was
/// announced before (all zeros once the outermost guard of a request is dropped).
#[derive(Debug)]
#[must_use = "the span is announced only while the guard lives"]
pub struct SpanAnnouncement {
    /// What to re-announce on drop; `None` when announcing is off.
    previous: Option<[u64; 3]>,
    /// The announcement belongs to the thread that made it.
    _not_send: PhantomData<*const ()>,
}

impl SpanAnnouncement {
    pub fn enter(span: &SpanContext) -> Self {
        let previous = PUBLISHING.load(Ordering::Relaxed).then(|| {
            let args = hook_args(span);
            wbpf_trace_context(args[0], args[1], args[2]);
            ANNOUNCED.with(|announced| announced.replace(args))
        });
        Self {
            previous,
            _not_send: PhantomData,
        }
    }
}

impl Drop for SpanAnnouncement {
    fn drop(&mut self) {
        let Some(previous) = self.previous else {
            return;
        };
        ANNOUNCED.with(|announced| announced.set(previous));
        let [hi, lo, span] = previous;
        wbpf_trace_context(hi, lo, span);
    }
}

/// The `traceparent` value for the span in `cx`, if it has a valid one.
pub fn inject(cx: &Context) -> Option<String> {
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// A context whose remote parent is `traceparent`; the empty context without one (or if it is
/// malformed, which makes the next span a new root, as W3C trace context prescribes).
pub fn extract(traceparent: Option<&str>) -> Context {
    let Some(value) = traceparent else {
        return Context::new();
    };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    TraceContextPropagator::new().extract(&carrier)
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

    use super::*;

    fn span_context() -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("0102030405060708090a0b0c0d0e0f10").expect("hex"),
            SpanId::from_hex("a1a2a3a4a5a6a7a8").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        )
    }

    #[test]
    fn hook_arguments_are_big_endian_halves() {
        assert_eq!(
            hook_args(&span_context()),
            [
                0x0102_0304_0506_0708,
                0x090a_0b0c_0d0e_0f10,
                0xa1a2_a3a4_a5a6_a7a8
            ]
        );
    }

    #[test]
    fn announcements_nest_and_end_with_zeros() {
        let outer = SpanAnnouncement::enter(&span_context());
        {
            let _inner = SpanAnnouncement::enter(&span_context());
        }
        assert_eq!(ANNOUNCED.with(Cell::get), hook_args(&span_context()));
        drop(outer);
        assert_eq!(ANNOUNCED.with(Cell::get), [0; 3]);
    }

    #[test]
    fn traceparent_round_trips() {
        let cx = Context::new().with_remote_span_context(span_context());
        let header = inject(&cx).expect("valid context");
        assert_eq!(
            header,
            "00-0102030405060708090a0b0c0d0e0f10-a1a2a3a4a5a6a7a8-01"
        );
        let back = extract(Some(&header));
        assert_eq!(
            back.span().span_context().trace_id(),
            span_context().trace_id()
        );
        assert!(!extract(Some("garbage")).span().span_context().is_valid());
        assert!(inject(&Context::new()).is_none());
    }
}
