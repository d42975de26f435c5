// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Pool-fault detector: user page faults on addresses inside a memory pool's mappings.
 *
 * page_fault_user (tracepoint exceptions:page_fault_user) runs on every user page fault of
 *   the machine. A process that maps no pool costs one hash lookup by its thread group id in
 *   pool_ranges, which userspace fills from /proc/<pid>/maps. A fault inside one of the
 *   process's pool ranges (at most WBPF_MAX_POOL_RANGES, a bounded loop) is counted twice:
 *   - per request: per thread, for as long as the thread's published trace id stays the
 *     same. The fault that takes the count over max_request_faults reports a fault storm in
 *     that trace, once per request.
 *   - per process: over a fixed window. The fault that takes the count over
 *     max_window_faults reports a fault burst, once per window, in the faulting thread's
 *     trace. Windows are reset racily by whichever CPU first sees one expire, so counts near
 *     a window edge are approximate.
 *
 * Faults of a process that mapped a pool since userspace last scanned /proc are not seen.
 * One pool-fault detector per probe: its settings live in the single-entry config map.
 */
#include "common.h"

struct fault_config {
	__u64 max_request_faults; /* faults per traced request; u64 max disables */
	__u64 window_ns;          /* per-process counting window */
	__u64 max_window_faults;  /* faults per process per window; u64 max disables */
	__u32 detector;
	__u32 reserved;
};

struct request_faults {
	__u64 trace_id_hi;
	__u64 trace_id_lo;
	__u64 first_ns;
	__u64 count;
	__u64 reported;
};

struct process_faults {
	__u64 start_ns;
	__u64 count;
	__u32 reported;
	__u32 reserved;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fault_config);
} fault_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WBPF_MAX_POOL_PROCS);
	__type(key, __u32);
	__type(value, struct wbpf_pool_ranges);
} pool_ranges SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct request_faults);
} request_faults SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_POOL_PROCS);
	__type(key, __u32);
	__type(value, struct process_faults);
} process_faults SEC(".maps");

/* The pool offset of `address` if it lies in one of the ranges, else u64 max. */
static __always_inline __u64 pool_offset(struct wbpf_pool_ranges *ranges, __u64 address)
{
	__u32 count = ranges->count;

	for (__u32 i = 0; i < WBPF_MAX_POOL_RANGES; i++) {
		struct wbpf_pool_range *range = &ranges->ranges[i];

		if (i >= count)
			break;
		if (address >= range->start && address < range->end)
			return address - range->start + range->file_offset;
	}
	return (__u64)-1;
}

static __always_inline void report(struct fault_config *cfg, __u16 kind, __u64 faults,
				   __u64 window_ns, __u64 limit, __u64 address, __u64 offset,
				   __u64 now)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct wbpf_event *event;

	event = event_reserve(cfg->detector, kind, (__u32)(pid_tgid >> 32), (__u32)pid_tgid, now);
	if (!event)
		return;
	event->duration_ns = window_ns;
	event->threshold_ns = limit;
	event->evidence[0] = (__s64)faults;
	event->evidence[1] = (__s64)address;
	event->evidence[2] = (__s64)offset;
	event->evidence[3] = kind == WBPF_KIND_POOL_FAULT_BURST;
	bpf_ringbuf_submit(event, 0);
}

/* Counts the fault against the request the thread serves, if it published one. */
static __always_inline void count_request(struct fault_config *cfg, __u32 tid, __u64 address,
					  __u64 offset, __u64 now)
{
	struct wbpf_trace_ctx *trace = bpf_map_lookup_elem(&trace_ctx, &tid);
	struct request_faults *faults;

	if (!trace || cfg->max_request_faults == (__u64)-1)
		return;
	faults = bpf_map_lookup_elem(&request_faults, &tid);
	if (!faults || faults->trace_id_hi != trace->trace_id_hi ||
	    faults->trace_id_lo != trace->trace_id_lo) {
		struct request_faults fresh = {
			.trace_id_hi = trace->trace_id_hi,
			.trace_id_lo = trace->trace_id_lo,
			.first_ns = now,
		};

		if (bpf_map_update_elem(&request_faults, &tid, &fresh, BPF_ANY))
			return;
		faults = bpf_map_lookup_elem(&request_faults, &tid);
		if (!faults)
			return;
	}
	/* Only this thread touches its entry, and a thread runs on one CPU at a time. */
	faults->count += 1;
	if (faults->count > cfg->max_request_faults && !faults->reported) {
		faults->reported = 1;
		report(cfg, WBPF_KIND_POOL_FAULT_STORM, faults->count, now - faults->first_ns,
		       cfg->max_request_faults, address, offset, now);
	}
}

/* Counts the fault against its process's current window. */
static __always_inline void count_process(struct fault_config *cfg, __u32 pid, __u64 address,
					  __u64 offset, __u64 now)
{
	struct process_faults *window;
	__u64 count;

	if (cfg->max_window_faults == (__u64)-1)
		return;
	window = bpf_map_lookup_elem(&process_faults, &pid);
	if (!window) {
		struct process_faults fresh = { .start_ns = now };

		bpf_map_update_elem(&process_faults, &pid, &fresh, BPF_NOEXIST);
		window = bpf_map_lookup_elem(&process_faults, &pid);
		if (!window)
			return;
	}
	if (now - window->start_ns > cfg->window_ns) {
		window->start_ns = now;
		window->count = 0;
		window->reported = 0;
	}
	count = __sync_fetch_and_add(&window->count, 1) + 1;
	if (count > cfg->max_window_faults &&
	    __sync_val_compare_and_swap(&window->reported, 0, 1) == 0)
		report(cfg, WBPF_KIND_POOL_FAULT_BURST, count, cfg->window_ns,
		       cfg->max_window_faults, address, offset, now);
}

SEC("tracepoint/exceptions/page_fault_user")
int page_fault_user(struct trace_event_raw_exceptions *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 pid = (__u32)(pid_tgid >> 32);
	struct wbpf_pool_ranges *ranges;
	struct fault_config *cfg;
	__u64 address, offset, now;
	__u32 zero = 0;

	ranges = bpf_map_lookup_elem(&pool_ranges, &pid);
	if (!ranges)
		return 0;
	address = ctx->address;
	offset = pool_offset(ranges, address);
	if (offset == (__u64)-1)
		return 0;
	cfg = bpf_map_lookup_elem(&fault_config, &zero);
	if (!cfg)
		return 0;

	now = bpf_ktime_get_ns();
	count_request(cfg, (__u32)pid_tgid, address, offset, now);
	count_process(cfg, pid, address, offset, now);
	return 0;
}
