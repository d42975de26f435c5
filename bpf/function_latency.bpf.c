// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Function-latency detector.
 *
 * fn_enter / fn_exit: uprobe and uretprobe on a timed symbol. Userspace attaches them once
 *   per detector with the detector index as the attach cookie, so one pair of programs serves
 *   every detector. Every timed call is counted in the detector's latency histogram; a return
 *   slower than the detector's threshold reserves a ring-buffer event carrying the thread's
 *   trace context. An adaptive detector's threshold is rewritten by userspace from the
 *   histogram (u64 max until it has enough samples).
 *
 * Known limit: entries are keyed by (thread, detector), so a recursive call overwrites its
 * caller's start time; the caller's return is then counted as unmatched, not timed. A
 * per-thread depth stack would fix it at the cost of a bounded loop on every return.
 */
#include "common.h"

struct call_key {
	__u32 tid;
	__u32 detector;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, struct call_key);
	__type(value, __u64);
} call_start SEC(".maps");

/* Call counts per (detector, bucket), at key detector * WBPF_HIST_BUCKETS + bucket. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, WBPF_MAX_DETECTORS * WBPF_HIST_BUCKETS);
	__type(key, __u32);
	__type(value, __u64);
} latency_hist SEC(".maps");

/* Index of the highest set bit; value must be non-zero. Six steps, no loop. */
static __always_inline __u32 log2_u64(__u64 value)
{
	__u32 bits = 0;

	if (value >> 32) { value >>= 32; bits += 32; }
	if (value >> 16) { value >>= 16; bits += 16; }
	if (value >> 8) { value >>= 8; bits += 8; }
	if (value >> 4) { value >>= 4; bits += 4; }
	if (value >> 2) { value >>= 2; bits += 2; }
	if (value >> 1) { bits += 1; }
	return bits;
}

/*
 * Buckets 0..3 hold exactly 0..3 ns; above, each power of two is split in four equal parts:
 * bucket 4 * (msb - 1) + the two bits below the top one. Mirrored by node-probe/src/adaptive.rs.
 */
static __always_inline __u32 hist_bucket(__u64 value)
{
	__u32 msb;

	if (value < 4)
		return (__u32)value;
	msb = log2_u64(value);
	return 4 * (msb - 1) + (__u32)((value >> (msb - 2)) & 3);
}

static __always_inline void record_latency(__u32 detector, __u64 duration)
{
	__u32 key;
	__u64 *slot;

	if (detector >= WBPF_MAX_DETECTORS)
		return;
	key = detector * WBPF_HIST_BUCKETS + hist_bucket(duration);
	slot = bpf_map_lookup_elem(&latency_hist, &key);
	if (slot)
		*slot += 1;
}

SEC("uprobe")
int fn_enter(struct pt_regs *ctx)
{
	struct call_key key = {
		.tid = (__u32)bpf_get_current_pid_tgid(),
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
	struct wbpf_event *event;
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
	record_latency(key.detector, duration);

	threshold = bpf_map_lookup_elem(&thresholds, &key.detector);
	if (!threshold || duration <= *threshold)
		return 0;

	event = event_reserve(key.detector, WBPF_KIND_FUNCTION_LATENCY, (__u32)(pid_tgid >> 32),
			      key.tid, now);
	if (!event)
		return 0;
	event->duration_ns = duration;
	event->threshold_ns = *threshold;
	bpf_ringbuf_submit(event, 0);
	return 0;
}
