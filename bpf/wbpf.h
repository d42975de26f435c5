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
/* Processes, command names and cgroups the syscall-latency filters can hold. */
#define WBPF_MAX_FILTER_PIDS 1024
#define WBPF_MAX_FILTER_COMMS 64
#define WBPF_MAX_FILTER_CGROUPS 64
/* Migration reasons counted (enum migrate_reason has ten on 6.x kernels). */
#define WBPF_MIGRATE_REASONS 16
/* Pool objects tracked while alive, and released ones remembered (LRU) for stale ids. */
#define WBPF_MAX_POOL_OBJECTS 32768
#define WBPF_MAX_POOL_RELEASED 32768
/* Processes mapping a pool, and pool mappings per process, the fault filter can hold. */
#define WBPF_MAX_POOL_PROCS 1024
#define WBPF_MAX_POOL_RANGES 8

/* Event kinds: what the event's evidence words mean. */
#define WBPF_KIND_FUNCTION_LATENCY 1 /* no evidence */
#define WBPF_KIND_SYSCALL_LATENCY 2  /* syscall nr, return value */
#define WBPF_KIND_RECLAIM_STALL 3    /* nr_reclaimed, order, source (0 direct, 1 memcg) */
#define WBPF_KIND_MIGRATION_STORM 4  /* reason, pages in window, failed in window */
#define WBPF_KIND_MIGRATION_FAILURES 5 /* as above */
#define WBPF_KIND_OOM_KILL 6         /* total_vm kB, anon_rss kB, file_rss kB, oom_score_adj */
#define WBPF_KIND_POOL_STALE_ACCESS 7 /* object id, ns since alloc, ns since release, releaser */
#define WBPF_KIND_POOL_DOUBLE_RELEASE 8 /* as above */
#define WBPF_KIND_POOL_LEAK 9        /* object id, ns since alloc, ns idle, accesses (userspace) */
#define WBPF_KIND_POOL_FAULT_STORM 10 /* faults, last address, its pool offset, 0 (request) */
#define WBPF_KIND_POOL_FAULT_BURST 11 /* faults, last address, its pool offset, 1 (process) */

/* Event flags. */
#define WBPF_FLAG_HAS_CONTEXT 1

/* Indexes of each object's per-CPU counter array. */
#define WBPF_COUNTER_RINGBUF_FULL 0 /* an event was dropped: no room in the ring buffer */
#define WBPF_COUNTER_UNMATCHED_RETURN 1 /* an end with no recorded start (nesting, attach) */
#define WBPF_COUNTER_MAP_FULL 2 /* something was not tracked: a bounded map was full */
#define WBPF_COUNTER_COUNT 3

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

/*
 * A live pool object, as the pool-object detector keeps it (key: the object id) and as
 * userspace reads it when scanning for leaks (node-probe/src/leak_scan.rs).
 */
struct wbpf_pool_object {
	__u64 alloc_ns;       /*  0: CLOCK_MONOTONIC of the allocation */
	__u64 last_access_ns; /*  8: of the latest access; 0 until the first */
	__u64 accesses;       /* 16 */
	struct wbpf_trace_ctx alloc_ctx; /* 24: what the allocating thread was serving */
	__u32 pid;            /* 48: allocating process */
	__u32 tid;            /* 52: allocating thread */
	__u32 flags;          /* 56: WBPF_FLAG_HAS_CONTEXT when alloc_ctx is set */
	__u32 reserved;       /* 60 */
	char comm[WBPF_COMM_LEN]; /* 64: allocating task's command name */
};

/* The pool mappings of one process (key: its thread group id), written by userspace. */
struct wbpf_pool_range {
	__u64 start;       /* first address of the mapping */
	__u64 end;         /* one past its last address */
	__u64 file_offset; /* pool offset mapped at `start` */
};

struct wbpf_pool_ranges {
	__u32 count; /* ranges in use, at most WBPF_MAX_POOL_RANGES */
	__u32 reserved;
	struct wbpf_pool_range ranges[WBPF_MAX_POOL_RANGES];
};

_Static_assert(sizeof(struct wbpf_pool_object) == 80, "wbpf_pool_object layout changed");
_Static_assert(sizeof(struct wbpf_pool_ranges) == 8 + 24 * WBPF_MAX_POOL_RANGES,
	       "wbpf_pool_ranges layout changed");
_Static_assert(sizeof(struct wbpf_trace_ctx) == 24, "wbpf_trace_ctx layout changed");
_Static_assert(sizeof(struct wbpf_event) == 112, "wbpf_event layout changed");

#endif /* WBPF_H */
