//! A tiny workload for the probe's tests: publishes a trace context, then provokes a symptom.
//!
//! - `wbpf-probe-target <trace-id-hex|none> <span-id-hex> <sleep-ms>`: calls `wbpf_test_work`
//!   sleeping that long inside the published context.
//! - `... latency-mix <calls> <seed>`: calls `wbpf_test_work` `calls` times; 2 % of the calls
//!   sleep uniformly between 2 and 10 ms, the rest return at once.
//! - `... syscalls <comm> <slow-ms> [wait]`: renames itself to `comm`, optionally blocks until
//!   a byte arrives on stdin, makes 200 fast syscalls, then one `nanosleep` of `slow-ms` when
//!   it is not zero.
//! - `... traced-syscalls <trace-id-hex|none> <span-id-hex> <slow-ms>`: blocks until a byte
//!   arrives on stdin (so a test can move it into a cgroup first), then makes the same
//!   syscalls inside the published context.
//! - `... write-file <trace-id-hex|none> <span-id-hex> <path> <mib>`: writes `mib` MiB through
//!   the page cache inside the published context.
//! - `... touch-memory <trace-id-hex|none> <span-id-hex> <mib>`: allocates and touches `mib`
//!   MiB of anonymous memory inside the published context.
//! - `... pool-objects <trace-id-hex|none> <span-id-hex> <clean|stale|double|leak>`: one pool
//!   object's life through the pool hooks inside the published context: allocate, access,
//!   release (`clean`); then access it again (`stale`); release it twice without access
//!   (`double`); or allocate it and never touch it again (`leak`). Prints the object id.
//! - `... pool-faults <trace-id-hex|none> <span-id-hex> <path> <pages> <wait-ms>`: creates and
//!   maps a `pages`-page file at `path` (shared), waits `wait-ms` (for the probe to find the
//!   mapping), then writes one byte per page inside the published context, each a page fault.
//!
//! `wbpf_trace_context`, `wbpf_test_work` and the `wbpf_pool_*` hooks are exported, unmangled
//! symbols the probe attaches uprobes to.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

/// The workload convention: trace id as two big-endian halves, span id big-endian.
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_trace_context(trace_id_hi: u64, trace_id_lo: u64, span_id: u64) {
    // Keeps the call (and its arguments) from being optimised away.
    std::hint::black_box((trace_id_hi, trace_id_lo, span_id));
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_test_work(sleep_ns: u64) {
    std::thread::sleep(Duration::from_nanos(std::hint::black_box(sleep_ns)));
}

/// The pool hooks' convention: the object id first. The bodies differ so that no two hooks
/// can be folded into one address.
#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_pool_alloc(object_id: u64) {
    std::hint::black_box((object_id, 1u8));
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_pool_release(object_id: u64) {
    std::hint::black_box((object_id, 2u16));
}

#[no_mangle]
#[inline(never)]
pub extern "C" fn wbpf_pool_access(object_id: u64) {
    std::hint::black_box((object_id, 3u32));
}

type Context = Option<(u64, u64, u64)>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match strs.as_slice() {
        ["latency-mix", calls, seed] => latency_mix(calls, seed),
        ["syscalls", comm, slow_ms, rest @ ..] => syscalls(comm, slow_ms, rest == ["wait"]),
        ["traced-syscalls", trace, span, slow_ms] => {
            wait_for_stdin();
            in_context(trace, span, || fast_then_slow(slow_ms))
        }
        ["write-file", trace, span, path, mib] => in_context(trace, span, || write_file(path, mib)),
        ["touch-memory", trace, span, mib] => in_context(trace, span, || touch_memory(mib)),
        ["pool-objects", trace, span, scenario] => pool_objects(trace, span, scenario),
        ["pool-faults", trace, span, path, pages, wait_ms] => {
            pool_faults(trace, span, path, pages, wait_ms)
        }
        [trace, span, sleep_ms] => in_context(trace, span, || {
            let sleep_ms: u64 = number(sleep_ms)?;
            wbpf_test_work(sleep_ms * 1_000_000);
            Ok(())
        }),
        _ => Err("usage: see the module documentation of wbpf-probe-target".to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

fn number(text: &str) -> Result<u64, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not a whole number"))
}

fn parse_context(trace_id: &str, span_id: &str) -> Result<Context, String> {
    if trace_id == "none" {
        return Ok(None);
    }
    match (
        u128::from_str_radix(trace_id, 16),
        u64::from_str_radix(span_id, 16),
    ) {
        (Ok(trace), Ok(span)) => Ok(Some(((trace >> 64) as u64, trace as u64, span))),
        _ => Err("trace id must be 32 hex digits and span id 16".to_owned()),
    }
}

/// Runs `work` with the context published, then clears it.
fn in_context(
    trace_id: &str,
    span_id: &str,
    work: impl FnOnce() -> Result<(), String>,
) -> Result<(), String> {
    let context = parse_context(trace_id, span_id)?;
    if let Some((hi, lo, span)) = context {
        wbpf_trace_context(hi, lo, span);
    }
    let result = work();
    if context.is_some() {
        wbpf_trace_context(0, 0, 0);
    }
    result
}

fn latency_mix(calls: &str, seed: &str) -> Result<(), String> {
    let calls = number(calls)?;
    let mut state = number(seed)? | 1;
    let mut next = move || {
        // xorshift64: deterministic and good enough for a test distribution.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..calls {
        let sleep_ns = if next() % 100 < 2 {
            2_000_000 + next() % 8_000_000
        } else {
            0
        };
        wbpf_test_work(sleep_ns);
    }
    Ok(())
}

fn syscalls(comm: &str, slow_ms: &str, wait: bool) -> Result<(), String> {
    let name = std::ffi::CString::new(comm).map_err(|_| "comm contains NUL".to_owned())?;
    // SAFETY: PR_SET_NAME reads a NUL-terminated string, valid for the call.
    if unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) } != 0 {
        return Err("prctl(PR_SET_NAME) failed".to_owned());
    }
    if wait {
        wait_for_stdin();
    }
    fast_then_slow(slow_ms)
}

fn wait_for_stdin() {
    let mut byte = 0u8;
    // SAFETY: reads at most one byte into a live local.
    unsafe { libc::read(0, (&mut byte as *mut u8).cast(), 1) };
}

/// 200 fast syscalls, then one `nanosleep` of `slow_ms` when it is not zero.
fn fast_then_slow(slow_ms: &str) -> Result<(), String> {
    let slow_ms = number(slow_ms)?;
    for _ in 0..200 {
        // SAFETY: getppid has no arguments and cannot fail.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
    if slow_ms > 0 {
        let duration = libc::timespec {
            tv_sec: (slow_ms / 1000) as libc::time_t,
            tv_nsec: ((slow_ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: a valid timespec for the request and no remainder pointer.
        unsafe {
            libc::syscall(
                libc::SYS_nanosleep,
                &duration as *const libc::timespec,
                std::ptr::null_mut::<libc::timespec>(),
            )
        };
    }
    Ok(())
}

fn write_file(path: &str, mib: &str) -> Result<(), String> {
    let mib = number(mib)?;
    let mut file = std::fs::File::create(path).map_err(|error| format!("{path}: {error}"))?;
    let block = vec![0x5au8; 1 << 20];
    for _ in 0..mib {
        file.write_all(&block)
            .map_err(|error| format!("{path}: {error}"))?;
    }
    Ok(())
}

fn touch_memory(mib: &str) -> Result<(), String> {
    let bytes = usize::try_from(number(mib)? << 20).map_err(|_| "too large".to_owned())?;
    let mut memory = vec![0u8; bytes];
    // One write per page makes every page resident.
    for offset in (0..bytes).step_by(4096) {
        memory[offset] = 1;
    }
    std::hint::black_box(&memory);
    Ok(())
}

fn pool_objects(trace_id: &str, span_id: &str, scenario: &str) -> Result<(), String> {
    // Unique per process, so runs of the target never share an id.
    let id = (u64::from(std::process::id()) << 20) | 1;
    in_context(trace_id, span_id, || {
        wbpf_pool_alloc(id);
        match scenario {
            "clean" => {
                wbpf_pool_access(id);
                wbpf_pool_release(id);
            }
            "stale" => {
                wbpf_pool_access(id);
                wbpf_pool_release(id);
                wbpf_pool_access(id);
            }
            "double" => {
                wbpf_pool_release(id);
                wbpf_pool_release(id);
            }
            "leak" => {}
            other => return Err(format!("unknown pool-objects scenario {other:?}")),
        }
        Ok(())
    })?;
    println!("{id}");
    Ok(())
}

fn pool_faults(
    trace_id: &str,
    span_id: &str,
    path: &str,
    pages: &str,
    wait_ms: &str,
) -> Result<(), String> {
    const PAGE: usize = 4096;
    let pages = usize::try_from(number(pages)?).map_err(|_| "too many pages".to_owned())?;
    let wait = Duration::from_millis(number(wait_ms)?);
    let io = |error: std::io::Error| format!("{path}: {error}");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .map_err(io)?;
    file.set_len((pages * PAGE) as u64).map_err(io)?;

    // SAFETY: a fresh shared mapping of the whole file; no other reference to it exists.
    let base = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            pages * PAGE,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            std::os::fd::AsRawFd::as_raw_fd(&file),
            0,
        )
    };
    if base == libc::MAP_FAILED {
        return Err(io(std::io::Error::last_os_error()));
    }
    std::thread::sleep(wait);
    let result = in_context(trace_id, span_id, || {
        for page in 0..pages {
            // SAFETY: inside the mapping, which only this thread touches.
            unsafe { base.cast::<u8>().add(page * PAGE).write_volatile(1) };
        }
        Ok(())
    });
    // SAFETY: unmaps exactly the mapping made above, which nothing references any more.
    unsafe { libc::munmap(base, pages * PAGE) };
    let _ = std::fs::remove_file(path);
    result
}
