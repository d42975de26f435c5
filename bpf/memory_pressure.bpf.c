// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
/*
 * Memory-pressure detector: reclaim stalls, page-migration storms and failures, OOM kills.
 * Classic tracepoints read through the CO-RE trace_event_raw_* layouts of the kernel's BTF.
 *
 * Reclaim: vmscan direct reclaim (the allocating thread reclaims for the whole machine) and
 *   memcg reclaim (the thread reclaims because its cgroup is over its limit) are both stalls
 *   of the thread that allocates. begin records the time per thread; end compares the stall
 *   with the threshold and reports the thread, its trace and nr_reclaimed.
 * Migration: mm_migrate_pages reports one migrate_pages() call. Pages (succeeded + failed)
 *   and failed pages are summed per reason over a fixed window; the first call that takes a
 *   sum over its limit in a window reports a storm (or failures) once for that window.
 *   Windows are reset racily by whichever CPU first sees one expire, so counts near a window
 *   edge are approximate.
 * OOM: oom:mark_victim reports the victim process, attributed to its thread's trace.
 *
 * One memory-pressure detector per probe: its settings live in the single-entry config map.
 */
#include "common.h"

struct pressure_config {
	__u64 stall_ns;      /* reclaim stalls longer than this trigger */
	__u64 window_ns;     /* migration counting window */
	__u64 max_pages;     /* pages migrated per reason per window; u64 max disables */
	__u64 max_failures;  /* failed pages per reason per window; u64 max disables */
	__u32 detector;
	__u32 oom_kill;      /* non-zero: report OOM victims */
};

struct reclaim_start {
	__u64 ktime_ns;
	__s32 order;
	__u32 memcg;
};

struct migrate_window {
	__u64 start_ns;
	__u64 pages;
	__u64 failed;
	__u32 storm_reported;
	__u32 failures_reported;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pressure_config);
} pressure_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, WBPF_MAX_THREADS);
	__type(key, __u32);
	__type(value, struct reclaim_start);
} reclaim_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, WBPF_MIGRATE_REASONS);
	__type(key, __u32);
	__type(value, struct migrate_window);
} migrate_windows SEC(".maps");

static __always_inline struct pressure_config *pressure_settings(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pressure_config, &zero);
}

static __always_inline int reclaim_begin(int order, __u32 memcg)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct reclaim_start start = {
		.ktime_ns = bpf_ktime_get_ns(),
		.order = order,
		.memcg = memcg,
	};

	bpf_map_update_elem(&reclaim_start, &tid, &start, BPF_ANY);
	return 0;
}

static __always_inline int reclaim_end(unsigned long nr_reclaimed)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct pressure_config *cfg = pressure_settings();
	struct reclaim_start *found, start;
	struct wbpf_event *event;
	__u64 stall;

	found = bpf_map_lookup_elem(&reclaim_start, &tid);
	if (!found) {
		count(WBPF_COUNTER_UNMATCHED_RETURN);
		return 0;
	}
	start = *found;
	bpf_map_delete_elem(&reclaim_start, &tid);
	stall = now - start.ktime_ns;
	if (!cfg || stall <= cfg->stall_ns)
		return 0;

	event = event_reserve(cfg->detector, WBPF_KIND_RECLAIM_STALL, (__u32)(pid_tgid >> 32), tid,
			      now);
	if (!event)
		return 0;
	event->duration_ns = stall;
	event->threshold_ns = cfg->stall_ns;
	event->evidence[0] = (__s64)nr_reclaimed;
	event->evidence[1] = start.order;
	event->evidence[2] = start.memcg;
	bpf_ringbuf_submit(event, 0);
	return 0;
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_begin")
int direct_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template *ctx)
{
	return reclaim_begin(ctx->order, 0);
}

SEC("tracepoint/vmscan/mm_vmscan_direct_reclaim_end")
int direct_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return reclaim_end(ctx->nr_reclaimed);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_begin")
int memcg_reclaim_begin(struct trace_event_raw_mm_vmscan_direct_reclaim_begin_template *ctx)
{
	return reclaim_begin(ctx->order, 1);
}

SEC("tracepoint/vmscan/mm_vmscan_memcg_reclaim_end")
int memcg_reclaim_end(struct trace_event_raw_mm_vmscan_direct_reclaim_end_template *ctx)
{
	return reclaim_end(ctx->nr_reclaimed);
}

static __always_inline void report_migration(struct pressure_config *cfg, __u16 kind,
					      __u32 reason, __u64 pages, __u64 failed,
					      __u64 limit, __u64 now)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct wbpf_event *event;

	event = event_reserve(cfg->detector, kind, (__u32)(pid_tgid >> 32), (__u32)pid_tgid, now);
	if (!event)
		return;
	event->duration_ns = cfg->window_ns;
	event->threshold_ns = limit;
	event->evidence[0] = reason;
	event->evidence[1] = (__s64)pages;
	event->evidence[2] = (__s64)failed;
	bpf_ringbuf_submit(event, 0);
}

SEC("tracepoint/migrate/mm_migrate_pages")
int migrate_pages(struct trace_event_raw_mm_migrate_pages *ctx)
{
	struct pressure_config *cfg = pressure_settings();
	__u64 now = bpf_ktime_get_ns();
	__u64 failed = ctx->failed;
	__u64 pages = ctx->succeeded + failed;
	__u32 reason = (__u32)ctx->reason;
	struct migrate_window *window;

	if (!cfg || reason >= WBPF_MIGRATE_REASONS)
		return 0;
	window = bpf_map_lookup_elem(&migrate_windows, &reason);
	if (!window)
		return 0;
	if (now - window->start_ns > cfg->window_ns) {
		window->start_ns = now;
		window->pages = 0;
		window->failed = 0;
		window->storm_reported = 0;
		window->failures_reported = 0;
	}
	pages += __sync_fetch_and_add(&window->pages, pages);
	failed += __sync_fetch_and_add(&window->failed, failed);

	if (pages > cfg->max_pages &&
	    __sync_val_compare_and_swap(&window->storm_reported, 0, 1) == 0)
		report_migration(cfg, WBPF_KIND_MIGRATION_STORM, reason, pages, failed,
				 cfg->max_pages, now);
	if (failed > cfg->max_failures &&
	    __sync_val_compare_and_swap(&window->failures_reported, 0, 1) == 0)
		report_migration(cfg, WBPF_KIND_MIGRATION_FAILURES, reason, pages, failed,
				 cfg->max_failures, now);
	return 0;
}

SEC("tracepoint/oom/mark_victim")
int mark_victim(struct trace_event_raw_mark_victim *ctx)
{
	struct pressure_config *cfg = pressure_settings();
	__u32 victim = (__u32)ctx->pid;
	__u32 comm_offset = ctx->__data_loc_comm & 0xffff;
	struct wbpf_event *event;
	struct task_struct *task;
	__u32 tgid = victim;

	if (!cfg || !cfg->oom_kill)
		return 0;
	/* The tracepoint names the victim task; its process is that task's thread group. */
	task = bpf_get_current_task_btf();
	if (task && task->pid == (pid_t)victim)
		tgid = (__u32)task->tgid;

	event = event_reserve(cfg->detector, WBPF_KIND_OOM_KILL, tgid, victim, bpf_ktime_get_ns());
	if (!event)
		return 0;
	bpf_probe_read_kernel_str(event->comm, sizeof(event->comm), (void *)ctx + comm_offset);
	event->evidence[0] = (__s64)ctx->total_vm;
	event->evidence[1] = (__s64)ctx->anon_rss;
	event->evidence[2] = (__s64)ctx->file_rss;
	event->evidence[3] = ctx->oom_score_adj;
	bpf_ringbuf_submit(event, 0);
	return 0;
}
