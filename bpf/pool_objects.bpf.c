// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Pool-object detector: the life of objects in a shared memory pool, seen through uprobes
 * on the pool library's hooks (the demo's wbpf_pool_alloc, wbpf_pool_release and
 * wbpf_pool_access, each taking the object id as its first argument).
 *
 * pool_alloc: records the object in live_objects with the allocating thread and the trace
 *   context that thread published, so a leak found later is reported in the trace that
 *   allocated it.
 * pool_release: moves a live object to released_objects. An id already released is a
 *   double release, reported once per object, in the releasing thread's trace.
 * pool_access: stamps a live object's last access and counts it. An access to a released id
 *   is a stale reference, reported once per object, in the accessing thread's trace.
 * Leaks (alive past an age without access) are found by userspace scanning live_objects.
 *
 * Each program does at most three map operations and no loop. Object ids are global keys
 * (objects are shared by reference between processes), so ids must be unique across the
 * pools whose library is probed. live_objects is a plain hash map so that leaks, which are
 * never touched, cannot be evicted; an object allocated while it is full is not tracked and
 * counted. released_objects is an LRU: the oldest releases are forgotten first, so a stale
 * access long after its release may go unseen. Two threads releasing one object at the same
 * instant may both see it live, and that double release is missed.
 */
#include "common.h"

/* Index of the (only) pool-object detector; set by userspace. */
const volatile __u32 detector = 0;

struct pool_release {
	__u64 alloc_ns;
	__u64 release_ns;
	__u32 release_pid;
	__u32 release_tid;
	__u32 stale_reported;
	__u32 double_reported;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WBPF_MAX_POOL_OBJECTS);
	__type(key, __u64);
	__type(value, struct wbpf_pool_object);
} live_objects SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_POOL_RELEASED);
	__type(key, __u64);
	__type(value, struct pool_release);
} released_objects SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(pool_alloc, __u64 object_id)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct wbpf_pool_object object = {};
	struct wbpf_trace_ctx *trace;

	object.alloc_ns = bpf_ktime_get_ns();
	object.pid = (__u32)(pid_tgid >> 32);
	object.tid = tid;
	trace = bpf_map_lookup_elem(&trace_ctx, &tid);
	if (trace) {
		object.alloc_ctx = *trace;
		object.flags = WBPF_FLAG_HAS_CONTEXT;
	}
	bpf_get_current_comm(object.comm, sizeof(object.comm));

	/* An id that comes round again starts a new life. */
	bpf_map_delete_elem(&released_objects, &object_id);
	if (bpf_map_update_elem(&live_objects, &object_id, &object, BPF_ANY))
		count(WBPF_COUNTER_MAP_FULL);
	return 0;
}

static __always_inline void report(__u16 kind, __u64 object_id, struct pool_release *released,
				   __u64 now)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct wbpf_event *event;

	event = event_reserve(detector, kind, (__u32)(pid_tgid >> 32), (__u32)pid_tgid, now);
	if (!event)
		return;
	event->evidence[0] = (__s64)object_id;
	event->evidence[1] = (__s64)(now - released->alloc_ns);
	event->evidence[2] = (__s64)(now - released->release_ns);
	event->evidence[3] = released->release_pid;
	bpf_ringbuf_submit(event, 0);
}

SEC("uprobe")
int BPF_KPROBE(pool_release, __u64 object_id)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct pool_release *released, record = {};
	struct wbpf_pool_object *live;

	live = bpf_map_lookup_elem(&live_objects, &object_id);
	if (live) {
		/* Read before deleting: the element's memory may be reused once it is gone. */
		record.alloc_ns = live->alloc_ns;
		record.release_ns = now;
		record.release_pid = (__u32)(pid_tgid >> 32);
		record.release_tid = (__u32)pid_tgid;
		bpf_map_delete_elem(&live_objects, &object_id);
		bpf_map_update_elem(&released_objects, &object_id, &record, BPF_ANY);
		return 0;
	}

	released = bpf_map_lookup_elem(&released_objects, &object_id);
	if (!released) {
		/* Allocated before the probe attached, or forgotten: nothing to compare with. */
		count(WBPF_COUNTER_UNMATCHED_RETURN);
		return 0;
	}
	if (__sync_val_compare_and_swap(&released->double_reported, 0, 1) == 0)
		report(WBPF_KIND_POOL_DOUBLE_RELEASE, object_id, released, now);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(pool_access, __u64 object_id)
{
	__u64 now = bpf_ktime_get_ns();
	struct pool_release *released;
	struct wbpf_pool_object *live;

	live = bpf_map_lookup_elem(&live_objects, &object_id);
	if (live) {
		/* Racing accesses may store their times in either order: close enough for ages. */
		live->last_access_ns = now;
		__sync_fetch_and_add(&live->accesses, 1);
		return 0;
	}

	released = bpf_map_lookup_elem(&released_objects, &object_id);
	if (released && __sync_val_compare_and_swap(&released->stale_reported, 0, 1) == 0)
		report(WBPF_KIND_POOL_STALE_ACCESS, object_id, released, now);
	return 0;
}
