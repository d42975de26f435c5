/* SPDX-License-Identifier: (GPL-2.0-only OR MIT) */
/*
 * Definitions shared by the wBPF kernel programs and mirrored by the node probe's userspace
 * (node-probe/src/events.rs). Any change to a layout here must be made there too; the
 * static assertions pin the sizes both sides rely on.
 */
#ifndef WBPF_H
#define WBPF_H

/* Detector instances per probe; a detector's index keys its entries in every object's maps. */
#define WBPF_MAX_DETECTORS 64
/* Threads tracked at once in the per-thread maps (LRU: the oldest entries go first). */
#define WBPF_MAX_THREADS 16384
/* Ring buffer of each object, in bytes (a power of two, a multiple of the page). */
#define WBPF_RINGBUF_BYTES (256 * 1024)
#define WBPF_COMM_LEN 16
/* Latency histogram buckets per detector: log2 octaves split in four (see hist_bucket). */
#define WBPF_HIST_BUCKETS 256
/* Processes and command names the syscall-latency filters can hold. */
#define WBPF_MAX_FILTER_PIDS 1024
#define WBPF_MAX_FILTER_COMMS 64
/* Migration reasons counted (enum migrate_reason has ten on 6.x kernels). */
#define WBPF_MIGRATE_REASONS 16

/* Event kinds: what the event's evidence words mean. */
#define WBPF_KIND_FUNCTION_LATENCY 1 /* no evidence */
#define WBPF_KIND_SYSCALL_LATENCY 2  /* syscall nr, return value */
#define WBPF_KIND_RECLAIM_STALL 3    /* nr_reclaimed, order, source (0 direct, 1 memcg) */
#define WBPF_KIND_MIGRATION_STORM 4  /* reason, pages in window, failed in window */
#define WBPF_KIND_MIGRATION_FAILURES 5 /* as above */
#define WBPF_KIND_OOM_KILL 6         /* total_vm kB, anon_rss kB, file_rss kB, oom_score_adj */

/* Event flags. */
#define WBPF_FLAG_HAS_CONTEXT 1

/* Indexes of each object's per-CPU counter array. */
#define WBPF_COUNTER_RINGBUF_FULL 0 /* an event was dropped: no room in the ring buffer */
#define WBPF_COUNTER_UNMATCHED_RETURN 1 /* an end with no recorded start (nesting, attach) */
#define WBPF_COUNTER_COUNT 2

/* The trace a thread is serving, as published through the context function. */
struct wbpf_trace_ctx {
	__u64 trace_id_hi; /* trace id bytes 0..8, big-endian */
	__u64 trace_id_lo; /* trace id bytes 8..16, big-endian */
	__u64 span_id;     /* span id bytes 0..8, big-endian */
};

/* One trigger, as written to the ring buffer. Natural alignment, no implicit padding. */
struct wbpf_event {
	__u64 ktime_ns;     /*  0: CLOCK_MONOTONIC when the symptom ended or was seen */
	__u64 duration_ns;  /*  8: how long it lasted; the window for counted symptoms */
	__u64 threshold_ns; /* 16: the limit it crossed (a count for counted symptoms) */
	__u64 trace_id_hi;  /* 24: zeros when the thread published no context */
	__u64 trace_id_lo;  /* 32 */
	__u64 span_id;      /* 40 */
	__u32 pid;          /* 48: thread group id */
	__u32 tid;          /* 52 */
	__u32 detector;     /* 56: index into the probe's detector table */
	__u16 kind;         /* 60: WBPF_KIND_* */
	__u16 flags;        /* 62: WBPF_FLAG_* */
	char comm[WBPF_COMM_LEN]; /* 64: task command name, NUL-padded */
	__s64 evidence[4];  /* 80: meaning set by kind */
};

_Static_assert(sizeof(struct wbpf_trace_ctx) == 24, "wbpf_trace_ctx layout changed");
_Static_assert(sizeof(struct wbpf_event) == 112, "wbpf_event layout changed");

#endif /* WBPF_H */
