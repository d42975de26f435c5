/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * What every wBPF object carries: the thread -> trace context map and the uprobe filling it,
 * the ring buffer, the per-CPU counters, and the helper that fills an event's common fields.
 *
 * Each detector type is its own object, so that one failing to load (a tracepoint this kernel
 * lacks, a verifier refusal) leaves the others running. The price is that every loaded
 * object attaches its own context uprobe: the breakpoint trap is shared by all programs on
 * that address, so each extra object adds one short program run per context call, and one
 * LRU map of WBPF_MAX_THREADS entries.
 */
#ifndef WBPF_COMMON_H
#define WBPF_COMMON_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "wbpf.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct wbpf_trace_ctx);
} trace_ctx SEC(".maps");

/* Threshold per detector index (nanoseconds); written by userspace. */
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

/* The workload's wbpf_trace_context(trace_id_hi, trace_id_lo, span_id); zeros clear. */
SEC("uprobe")
int BPF_KPROBE(trace_context, __u64 trace_id_hi, __u64 trace_id_lo, __u64 span_id)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
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

/*
 * Reserves an event and fills everything but the evidence (zeroed) for thread `tid` of
 * process `pid`, with the current task's command name. Counts and returns NULL when the
 * ring buffer is full.
 */
static __always_inline struct wbpf_event *event_reserve(__u32 detector, __u16 kind, __u32 pid,
							 __u32 tid, __u64 ktime_ns)
{
	struct wbpf_event *event;
	struct wbpf_trace_ctx *trace;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count(WBPF_COUNTER_RINGBUF_FULL);
		return NULL;
	}
	event->ktime_ns = ktime_ns;
	event->duration_ns = 0;
	event->threshold_ns = 0;
	event->pid = pid;
	event->tid = tid;
	event->detector = detector;
	event->kind = kind;
	event->evidence[0] = 0;
	event->evidence[1] = 0;
	event->evidence[2] = 0;
	event->evidence[3] = 0;

	trace = bpf_map_lookup_elem(&trace_ctx, &tid);
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
	return event;
}

#endif /* WBPF_COMMON_H */
