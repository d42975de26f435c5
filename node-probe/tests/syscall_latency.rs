//! End to end on the running kernel: the syscall-latency detector's raw tracepoints, real
//! child processes, a real OTLP/gRPC sink. Needs root; a failure to load eBPF fails the test
//! with the reason.

mod common;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{collect, from_pid, hex, int, next_span, string, target};
use wbpf_config::{ContextConfig, DetectorConfig, ProbeConfig, SyscallHook, SyscallLatencyConfig};

const THRESHOLD: Duration = Duration::from_millis(20);
/// `nanosleep` on x86-64 and on the generic table (arm64, riscv).
#[cfg(target_arch = "x86_64")]
const SYS_NANOSLEEP: i64 = 35;
#[cfg(not(target_arch = "x86_64"))]
const SYS_NANOSLEEP: i64 = 101;

fn config(gateway: String, pids: Vec<u32>, comms: &[&str]) -> ProbeConfig {
    config_with_hook(gateway, pids, comms, SyscallHook::Auto)
}

fn config_with_hook(
    gateway: String,
    pids: Vec<u32>,
    comms: &[&str],
    hook: SyscallHook,
) -> ProbeConfig {
    ProbeConfig {
        gateway: gateway.into(),
        context: None,
        detectors: vec![DetectorConfig::SyscallLatency(SyscallLatencyConfig {
            name: Some("test-syscalls".to_owned()),
            threshold: THRESHOLD,
            pids,
            comms: comms.iter().map(|comm| comm.to_string()).collect(),
            cgroups: Vec::new(),
            hook,
        })],
        admin: None,
        strict_privileges: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_syscall_of_a_watched_command_triggers_and_fast_ones_do_not() {
    let (_serial, gateway, mut spans) = common::start().await;
    let comm = "wbpf-sc-test";
    let probe = common::start_probe(&config(gateway, vec![], &[comm])).await;

    // 200 fast syscalls and one 60 ms nanosleep: exactly one trigger, naming nanosleep.
    let pid = common::run_target(&["syscalls", comm, "60"]).await;
    let span = next_span(&mut spans).await;
    println!("trigger span: {span:?}");
    assert_eq!(span.name, "wbpf.trigger syscall_latency");
    assert_eq!(string(&span, "wbpf.detector"), "syscall_latency");
    assert_eq!(string(&span, "wbpf.detector.name"), "test-syscalls");
    assert_eq!(int(&span, "process.pid"), i64::from(pid));
    assert_eq!(int(&span, "thread.id"), i64::from(pid));
    assert_eq!(string(&span, "process.command"), comm);
    assert_eq!(int(&span, "wbpf.syscall.nr"), SYS_NANOSLEEP);
    assert_eq!(int(&span, "wbpf.syscall.ret"), 0);
    assert!(int(&span, "wbpf.duration_ns") >= 60_000_000);
    assert_eq!(int(&span, "wbpf.threshold_ns"), THRESHOLD.as_nanos() as i64);
    assert_eq!(string(&span, "wbpf.context"), "none");
    assert!(int(&span, "wbpf.event_time_unix_nano") >= span.start_time_unix_nano as i64);

    // The same command without the slow call, and another command with it: nothing.
    common::run_target(&["syscalls", comm, "0"]).await;
    common::run_target(&["syscalls", "wbpf-sc-other", "60"]).await;
    let quiet = collect(&mut spans, Duration::from_millis(1500)).await;
    assert!(quiet.is_empty(), "no slow syscall, no trigger: {quiet:?}");

    let stats = probe.shutdown().await.expect("clean shutdown");
    println!("final stats: {stats:?}");
    assert_eq!(stats.events_seen, 1);
    assert_eq!(stats.events_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watched_pid_triggers_only_for_syscalls_entered_after_attaching() {
    let (_serial, gateway, mut spans) = common::start().await;

    // The child blocks in read(2) before the probe attaches; that read must not count.
    let child = waiting_target(&["syscalls", "wbpf-sc-pid", "60", "wait"]);
    let pid = child.id();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let probe = common::start_probe(&config(gateway, vec![pid], &[])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    wake_and_wait(child).await;

    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    let mine = from_pid(&all, pid);
    assert_eq!(mine.len(), 1, "only the nanosleep: {all:?}");
    assert_eq!(int(mine[0], "wbpf.syscall.nr"), SYS_NANOSLEEP);
    probe.shutdown().await.expect("clean shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tracepoint_hook_catches_the_same_slow_syscall() {
    let (_serial, gateway, mut spans) = common::start().await;
    let comm = "wbpf-sc-tp";
    let config = config_with_hook(gateway, vec![], &[comm], SyscallHook::Tracepoint);
    let probe = common::start_probe(&config).await;

    let pid = common::run_target(&["syscalls", comm, "60"]).await;
    common::run_target(&["syscalls", comm, "0"]).await;
    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    assert_eq!(all.len(), 1, "one slow syscall, one trigger: {all:?}");
    assert_eq!(int(&all[0], "process.pid"), i64::from(pid));
    assert_eq!(int(&all[0], "wbpf.syscall.nr"), SYS_NANOSLEEP);
    assert!(int(&all[0], "wbpf.duration_ns") >= 60_000_000);
    probe.shutdown().await.expect("clean shutdown");
}

/// A cgroup v2 of its own under the machine's cgroup2 mount, removed when dropped (once the
/// processes moved into it have exited).
struct TestCgroup {
    path: PathBuf,
}

impl TestCgroup {
    fn create(name: &str) -> TestCgroup {
        let mounts = std::fs::read_to_string("/proc/self/mounts").expect("read mounts");
        let mount = mounts
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .find(|fields| fields.get(2) == Some(&"cgroup2"))
            .map(|fields| PathBuf::from(fields[1]))
            .expect("a cgroup2 mount (cgroup v2 or hybrid hierarchy)");
        let path = mount.join(format!("{name}-{}", std::process::id()));
        std::fs::create_dir(&path).expect("create a cgroup (needs root)");
        TestCgroup { path }
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.path.join("cgroup.procs"), pid.to_string()).expect("move into it");
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.path);
    }
}

/// Starts the target with `args`, which make it wait for a byte on stdin before its slow call.
fn waiting_target(args: &[&str]) -> Child {
    Command::new(target())
        .args(args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("spawn the target")
}

/// Wakes a [`waiting_target`] and asserts that it succeeded.
async fn wake_and_wait(mut child: Child) {
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(b"x")
        .expect("wake the child");
    let status = common::wait(child).await;
    assert!(status.success(), "target failed: {status}");
}

fn cgroup_config(gateway: String, cgroup: &Path) -> ProbeConfig {
    ProbeConfig {
        context: Some(ContextConfig {
            binary: target(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![DetectorConfig::SyscallLatency(SyscallLatencyConfig {
            name: Some("test-cgroup".to_owned()),
            threshold: THRESHOLD,
            pids: Vec::new(),
            comms: Vec::new(),
            cgroups: vec![cgroup.to_owned()],
            hook: SyscallHook::Auto,
        })],
        ..config(gateway, Vec::new(), &[])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_syscall_in_a_watched_cgroup_triggers_in_the_published_trace() {
    let (_serial, gateway, mut spans) = common::start().await;
    let cgroup = TestCgroup::create("wbpf-sc-cgroup");
    let probe = common::start_probe(&cgroup_config(gateway, &cgroup.path)).await;

    // Both publish a trace and make the same slow call; only the one in the cgroup is watched.
    const INSIDE: (&str, &str) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    const OUTSIDE: (&str, &str) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let inside = waiting_target(&["traced-syscalls", INSIDE.0, INSIDE.1, "60"]);
    let outside = waiting_target(&["traced-syscalls", OUTSIDE.0, OUTSIDE.1, "60"]);
    let pid = inside.id();
    cgroup.add(pid);
    wake_and_wait(inside).await;
    wake_and_wait(outside).await;

    let all = collect(&mut spans, Duration::from_millis(1500)).await;
    assert_eq!(all.len(), 1, "only the watched cgroup's nanosleep: {all:?}");
    let span = &all[0];
    assert_eq!(hex(&span.trace_id), INSIDE.0);
    assert_eq!(hex(&span.parent_span_id), INSIDE.1);
    assert_eq!(string(span, "wbpf.detector.name"), "test-cgroup");
    assert_eq!(int(span, "process.pid"), i64::from(pid));
    assert_eq!(int(span, "wbpf.syscall.nr"), SYS_NANOSLEEP);
    assert!(int(span, "wbpf.duration_ns") >= 60_000_000);
    assert!(common::attribute(span, "wbpf.context").is_none());

    let stats = probe.shutdown().await.expect("clean shutdown");
    assert_eq!(stats.triggers_without_context, 0);
}
