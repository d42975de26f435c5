// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Function-latency detector and trace-context tracker.
 *
 * trace_context: uprobe on the workload's context function
 *   wbpf_trace_context(u64 trace_id_hi, u64 trace_id_lo, u64 span_id); remembers per thread
 *   which span it is serving. An all-zero trace id or span id clears the thread's entry.
 * fn_enter / fn_exit: uprobe and uretprobe on a timed symbol. Userspace attaches them once
 *   per detector with the detector index as the attach cookie, so one pair of programs serves
 *   every detector. A return slower than the detector's threshold reserves a ring-buffer event
 *   carrying the thread's trace context.
 *
 * Known limit: entries are keyed by (thread, detector), so a recursive call overwrites its
 * caller's start time; the caller's return is then counted as unmatched, not timed. A
 * per-thread depth stack would fix it at the cost of a bounded loop on every return.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "wbpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct call_key {
	__u32 tid;
	__u32 detector;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct wbpf_trace_ctx);
} trace_ctx SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, struct call_key);
	__type(value, __u64);
} call_start SEC(".maps");

/* Threshold in nanoseconds per detector index; written by userspace before attaching. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WBPF_MAX_DETECTORS);
	__type(key, __u32);
	__type(value, __u64);
} thresholds SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, WBPF_RINGBUF_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WBPF_COUNTER_COUNT);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 counter)
{
	__u64 *value = bpf_map_lookup_elem(&counters, &counter);

	/* Per-CPU slot and the program cannot migrate while it runs: no atomics needed. */
	if (value)
		*value += 1;
}

static __always_inline __u32 current_tid(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

SEC("uprobe")
int BPF_KPROBE(trace_context, __u64 trace_id_hi, __u64 trace_id_lo, __u64 span_id)
{
	__u32 tid = current_tid();
	struct wbpf_trace_ctx value = {
		.trace_id_hi = trace_id_hi,
		.trace_id_lo = trace_id_lo,
		.span_id = span_id,
	};

	if ((trace_id_hi == 0 && trace_id_lo == 0) || span_id == 0) {
		bpf_map_delete_elem(&trace_ctx, &tid);
		return 0;
	}
	bpf_map_update_elem(&trace_ctx, &tid, &value, BPF_ANY);
	return 0;
}

SEC("uprobe")
int fn_enter(struct pt_regs *ctx)
{
	struct call_key key = {
		.tid = current_tid(),
		.detector = (__u32)bpf_get_attach_cookie(ctx),
	};
	__u64 now = bpf_ktime_get_ns();

	bpf_map_update_elem(&call_start, &key, &now, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int fn_exit(struct pt_regs *ctx)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct call_key key = {
		.tid = (__u32)pid_tgid,
		.detector = (__u32)bpf_get_attach_cookie(ctx),
	};
	struct wbpf_latency_event *event;
	struct wbpf_trace_ctx *trace;
	__u64 *start, *threshold;
	__u64 duration;

	start = bpf_map_lookup_elem(&call_start, &key);
	if (!start) {
		count(WBPF_COUNTER_UNMATCHED_RETURN);
		return 0;
	}
	/* Read before deleting: the element's memory may be reused once it is gone. */
	duration = now - *start;
	bpf_map_delete_elem(&call_start, &key);

	threshold = bpf_map_lookup_elem(&thresholds, &key.detector);
	if (!threshold || duration <= *threshold)
		return 0;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count(WBPF_COUNTER_RINGBUF_FULL);
		return 0;
	}
	event->ktime_ns = now;
	event->duration_ns = duration;
	event->threshold_ns = *threshold;
	event->pid = (__u32)(pid_tgid >> 32);
	event->tid = key.tid;
	event->detector = key.detector;
	event->kind = WBPF_KIND_FUNCTION_LATENCY;

	trace = bpf_map_lookup_elem(&trace_ctx, &key.tid);
	if (trace) {
		event->trace_id_hi = trace->trace_id_hi;
		event->trace_id_lo = trace->trace_id_lo;
		event->span_id = trace->span_id;
		event->flags = WBPF_FLAG_HAS_CONTEXT;
	} else {
		event->trace_id_hi = 0;
		event->trace_id_lo = 0;
		event->span_id = 0;
		event->flags = 0;
	}
	if (bpf_get_current_comm(event->comm, sizeof(event->comm)))
		__builtin_memset(event->comm, 0, sizeof(event->comm));

	bpf_ringbuf_submit(event, 0);
	return 0;
}
