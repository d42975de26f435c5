//! End to end on the running kernel: the memory-pressure detector's tracepoints, workloads
//! confined to a small memory cgroup (cgroup v1 or v2), a real OTLP/gRPC sink. Needs root; a
//! failure to load eBPF fails the test with the reason.
//!
//! A process over its cgroup's limit reclaims synchronously (try_to_free_mem_cgroup_pages,
//! the `mm_vmscan_memcg_reclaim_*` tracepoints); anonymous memory that cannot be reclaimed
//! (no swap) ends in a cgroup OOM kill (`oom:mark_victim`). Compaction, forced through
//! /proc/sys/vm/compact_memory, migrates pages with reason `compaction`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{collect, from_pid, hex, int, string, target};
use opentelemetry_proto::tonic::trace::v1::Span;
use wbpf_config::{
    ContextConfig, DetectorConfig, MemoryPressureConfig, MigrationConfig, ProbeConfig,
};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const SPAN_ID: &str = "b7ad6b7169203331";
const MIB: u64 = 1 << 20;

/// A child memory cgroup of this process's, removed on drop.
struct Cgroup {
    dir: PathBuf,
}

impl Cgroup {
    fn new(name: &str, limit: u64) -> Cgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").expect("read /proc/self/cgroup");
        let (parent, limit_file) = own
            .lines()
            .find_map(|line| {
                let path = line.strip_prefix(|c: char| c.is_ascii_digit())?;
                let path = path.trim_start_matches(|c: char| c.is_ascii_digit());
                let v1 = path.strip_prefix(":memory:")?;
                Some((
                    Path::new("/sys/fs/cgroup/memory").join(v1.trim_start_matches('/')),
                    "memory.limit_in_bytes",
                ))
            })
            .or_else(|| {
                let v2 = own.lines().find_map(|line| line.strip_prefix("0::"))?;
                ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
                    .into_iter()
                    .map(|root| Path::new(root).join(v2.trim_start_matches('/')))
                    .find(|dir| {
                        std::fs::read_to_string(dir.join("cgroup.controllers"))
                            .is_ok_and(|controllers| controllers.contains("memory"))
                    })
                    .map(|dir| (dir, "memory.max"))
            })
            .expect("a memory cgroup controller (v1 memory or v2 with memory enabled)");

        let dir = parent.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|error| panic!("mkdir {}: {error}", dir.display()));
        std::fs::write(dir.join(limit_file), limit.to_string())
            .unwrap_or_else(|error| panic!("{limit_file} in {}: {error}", dir.display()));
        // No swap escape hatch on v2 (absent on v1 without swap accounting).
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        Cgroup { dir }
    }

    /// Runs the target inside the cgroup; returns its pid and exit status.
    async fn run(&self, args: &[&str]) -> (u32, std::process::ExitStatus) {
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"",
            self.dir.display()
        );
        let mut command = Command::new("sh");
        command.arg("-c").arg(script).arg(target()).args(args);
        common::run(&mut command).await
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

fn config(gateway: String, migration: Option<MigrationConfig>) -> ProbeConfig {
    ProbeConfig {
        gateway: gateway.into(),
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![DetectorConfig::MemoryPressure(MemoryPressureConfig {
            name: Some("test-memory".to_owned()),
            reclaim_stall: Duration::from_nanos(1),
            migration,
            oom_kill: true,
        })],
        admin: None,
        strict_privileges: false,
    }
}

fn events<'a>(spans: &'a [Span], pid: u32, event: &str) -> Vec<&'a Span> {
    let mut events = from_pid(spans, pid);
    events.retain(|span| string(span, "wbpf.memory.event") == event);
    events
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reclaim_stall_over_a_cgroup_limit_triggers_in_the_threads_trace() {
    let (_serial, gateway, mut spans) = common::start().await;
    let probe = common::start_probe(&config(gateway, None)).await;
    let file = format!("/var/tmp/wbpf-reclaim-test-{}", std::process::id());

    // 64 MiB of page cache through a 16 MiB cgroup: the writer reclaims its own pages.
    let small = Cgroup::new("wbpf-reclaim", 16 * MIB);
    let (pid, status) = small
        .run(&["write-file", TRACE_ID, SPAN_ID, &file, "64"])
        .await;
    assert!(status.success(), "writer failed: {status}");
    // The same write with room to spare: no reclaim by this process.
    let roomy = Cgroup::new("wbpf-roomy", 1024 * MIB);
    let (roomy_pid, status) = roomy
        .run(&["write-file", TRACE_ID, SPAN_ID, &file, "64"])
        .await;
    assert!(status.success(), "writer failed: {status}");
    let _ = std::fs::remove_file(&file);

    let all = collect(&mut spans, Duration::from_millis(2000)).await;
    let stalls = events(&all, pid, "reclaim_stall");
    println!(
        "{} reclaim-stall triggers for the constrained writer",
        stalls.len()
    );
    assert!(!stalls.is_empty(), "no reclaim stall reported: {all:?}");
    let span = stalls[0];
    assert_eq!(span.name, "wbpf.trigger memory_pressure");
    assert_eq!(string(span, "wbpf.detector"), "memory_pressure");
    assert_eq!(string(span, "wbpf.detector.name"), "test-memory");
    assert_eq!(string(span, "wbpf.reclaim.scope"), "memcg");
    assert!(int(span, "wbpf.duration_ns") > 0);
    assert_eq!(
        hex(&span.trace_id),
        TRACE_ID,
        "attributed to the writer's trace"
    );
    assert_eq!(hex(&span.parent_span_id), SPAN_ID);
    assert!(
        events(&all, roomy_pid, "reclaim_stall").is_empty(),
        "roomy writer reclaimed"
    );

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oom_kill_in_a_cgroup_triggers_for_the_victim() {
    let (_serial, gateway, mut spans) = common::start().await;
    let probe = common::start_probe(&config(gateway, None)).await;

    // 64 MiB of anonymous memory in a 16 MiB cgroup without swap: killed.
    let small = Cgroup::new("wbpf-oom", 16 * MIB);
    let (victim, status) = small.run(&["touch-memory", TRACE_ID, SPAN_ID, "64"]).await;
    assert!(!status.success(), "the hog survived: {status}");
    // 4 MiB in a 64 MiB cgroup: survives, no OOM.
    let roomy = Cgroup::new("wbpf-no-oom", 64 * MIB);
    let (survivor, status) = roomy.run(&["touch-memory", "none", SPAN_ID, "4"]).await;
    assert!(status.success(), "the small process failed: {status}");

    let all = collect(&mut spans, Duration::from_millis(2000)).await;
    let kills = events(&all, victim, "oom_kill");
    assert_eq!(kills.len(), 1, "one OOM trigger for the victim: {all:?}");
    let span = kills[0];
    println!("OOM trigger: {span:?}");
    assert_eq!(int(span, "thread.id"), i64::from(victim));
    assert_eq!(string(span, "process.command"), "wbpf-probe-targ");
    assert!(int(span, "wbpf.oom.anon_rss_kb") > 0);
    assert_eq!(
        hex(&span.trace_id),
        TRACE_ID,
        "attributed to the victim's trace"
    );
    assert!(events(&all, survivor, "oom_kill").is_empty());

    probe.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forced_compaction_is_reported_as_a_migration_storm() {
    let (_serial, gateway, mut spans) = common::start().await;
    let migration = MigrationConfig {
        window: Duration::from_secs(1),
        max_pages: Some(1),
        max_failures: Some(0),
    };
    let probe = common::start_probe(&config(gateway, Some(migration))).await;

    let run = |script: &'static str| async move {
        let (pid, status) = common::run(Command::new("sh").args(["-c", script])).await;
        assert!(status.success(), "{script}: {status}");
        pid
    };
    let quiet = run("true").await;
    let compactor = run("echo 1 > /proc/sys/vm/compact_memory").await;

    let all = collect(&mut spans, Duration::from_millis(2000)).await;
    let storms = events(&all, compactor, "migration_storm");
    let failures = events(&all, compactor, "migration_failures");
    println!(
        "storms {} failures {} (all spans {})",
        storms.len(),
        failures.len(),
        all.len()
    );
    assert!(!storms.is_empty(), "compaction migrated no page: {all:?}");
    let span = storms[0];
    assert_eq!(string(span, "wbpf.migrate.reason"), "compaction");
    assert!(int(span, "wbpf.migrate.pages") > 1);
    assert_eq!(int(span, "wbpf.migrate.limit"), 1);
    assert_eq!(int(span, "wbpf.migrate.window_ns"), 1_000_000_000);
    assert!(all
        .iter()
        .all(|span| int(span, "process.pid") != i64::from(quiet)));

    probe.shutdown().await.expect("clean shutdown");
}
