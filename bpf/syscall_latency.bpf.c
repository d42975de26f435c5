// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Syscall-latency detector: raw tracepoints on sys_enter and sys_exit (no tracefs needed),
 * or, on kernels without raw tracepoints, the raw_syscalls tracepoints (the *_tp programs);
 * userspace loads one pair.
 *
 * sys_enter: a thread of a watched process (its thread group id in watched_pids, its cgroup
 *   v2 id in watched_cgroups when filter_cgroups is set, or its command name in
 *   watched_comms when filter_comms is set, looked up in that order) records the syscall
 *   number and start time, tagged with the detector that watches it. The first configured
 *   detector wins when several name the same process, cgroup or command.
 * sys_exit: a recorded syscall slower than its detector's threshold becomes an event with
 *   the syscall number and return value as evidence.
 *
 * Both programs run on every syscall of the machine; the work is two hash lookups (one more
 * per cgroup or command-name filter in use) and no loop. The cgroup is the one the thread is
 * directly in (bpf_get_current_cgroup_id), so a filter names leaf cgroups. A thread that
 * exits inside a syscall (exit_group) leaves its entry behind until the LRU map evicts it.
 */
#include "common.h"

/* Set by userspace when any detector filters by command name, and by cgroup. */
const volatile __u32 filter_comms = 0;
const volatile __u32 filter_cgroups = 0;

struct comm_key {
	char comm[WBPF_COMM_LEN];
};

struct syscall_start {
	__u64 ktime_ns;
	__u32 nr;
	__u32 detector;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WBPF_MAX_FILTER_PIDS);
	__type(key, __u32);
	__type(value, __u32);
} watched_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WBPF_MAX_FILTER_COMMS);
	__type(key, struct comm_key);
	__type(value, __u32);
} watched_comms SEC(".maps");

/* Cgroup v2 id (the inode number of its directory) -> detector. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, WBPF_MAX_FILTER_CGROUPS);
	__type(key, __u64);
	__type(value, __u32);
} watched_cgroups SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct syscall_start);
} syscall_start SEC(".maps");

/*
 * Argument `n` of a raw tracepoint. Read through a plain pointer: args[] is a flexible array
 * in vmlinux.h, and a CO-RE relocation of an index into it is rejected by the loader.
 */
static __always_inline __u64 raw_arg(struct bpf_raw_tracepoint_args *ctx, int n)
{
	return ((__u64 *)ctx)[n];
}

static __always_inline __u32 *watching_detector(__u32 pid)
{
	struct comm_key key;
	__u32 *detector;

	detector = bpf_map_lookup_elem(&watched_pids, &pid);
	if (detector)
		return detector;
	if (filter_cgroups) {
		__u64 cgroup = bpf_get_current_cgroup_id();

		detector = bpf_map_lookup_elem(&watched_cgroups, &cgroup);
		if (detector)
			return detector;
	}
	if (!filter_comms)
		return NULL;
	__builtin_memset(&key, 0, sizeof(key));
	if (bpf_get_current_comm(key.comm, sizeof(key.comm)))
		return NULL;
	return bpf_map_lookup_elem(&watched_comms, &key);
}

static __always_inline int on_enter(__u32 nr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_start start;
	__u32 *detector;

	detector = watching_detector((__u32)(pid_tgid >> 32));
	if (!detector)
		return 0;
	start.ktime_ns = bpf_ktime_get_ns();
	start.nr = nr;
	start.detector = *detector;
	bpf_map_update_elem(&syscall_start, &tid, &start, BPF_ANY);
	return 0;
}

static __always_inline int on_exit(__s64 ret)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct syscall_start *found, start;
	struct wbpf_event *event;
	__u64 *threshold, duration;

	found = bpf_map_lookup_elem(&syscall_start, &tid);
	if (!found)
		return 0;
	/* Copy before deleting: the element's memory may be reused once it is gone. */
	start = *found;
	bpf_map_delete_elem(&syscall_start, &tid);
	duration = now - start.ktime_ns;

	threshold = bpf_map_lookup_elem(&thresholds, &start.detector);
	if (!threshold || duration <= *threshold)
		return 0;

	event = event_reserve(start.detector, WBPF_KIND_SYSCALL_LATENCY, (__u32)(pid_tgid >> 32),
			      tid, now);
	if (!event)
		return 0;
	event->duration_ns = duration;
	event->threshold_ns = *threshold;
	event->evidence[0] = start.nr;
	event->evidence[1] = ret;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

/* raw_syscalls:sys_enter(struct pt_regs *regs, long id) */
SEC("raw_tracepoint/sys_enter")
int sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	return on_enter((__u32)raw_arg(ctx, 1));
}

/* raw_syscalls:sys_exit(struct pt_regs *regs, long ret) */
SEC("raw_tracepoint/sys_exit")
int sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	return on_exit((__s64)raw_arg(ctx, 1));
}

SEC("tracepoint/raw_syscalls/sys_enter")
int sys_enter_tp(struct trace_event_raw_sys_enter *ctx)
{
	return on_enter((__u32)ctx->id);
}

SEC("tracepoint/raw_syscalls/sys_exit")
int sys_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	return on_exit(ctx->ret);
}
