//! Events as the kernel writes them to the ring buffers, decoded without `unsafe`.
//!
//! The layout mirrors `struct wbpf_event` in `bpf/wbpf.h` (112 bytes, native endian, naturally
//! aligned, no implicit padding); the offsets below are that header's comments.

/// The trace a thread was serving when an event fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
}

impl TraceContext {
    /// From the kernel's `struct wbpf_trace_ctx` words (big-endian halves of the ids).
    pub fn from_words(trace_id_hi: u64, trace_id_lo: u64, span_id: u64) -> TraceContext {
        let mut trace_id = [0; 16];
        trace_id[..8].copy_from_slice(&trace_id_hi.to_be_bytes());
        trace_id[8..].copy_from_slice(&trace_id_lo.to_be_bytes());
        TraceContext {
            trace_id,
            span_id: span_id.to_be_bytes(),
        }
    }
}

/// What the kernel saw; says what `Event::evidence` holds (`WBPF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    FunctionLatency,
    /// Evidence: syscall number, return value.
    SyscallLatency,
    /// Evidence: pages reclaimed, allocation order, 1 when a cgroup's limit caused it.
    ReclaimStall,
    /// Evidence: migration reason, pages in the window, failed pages in the window.
    MigrationStorm,
    /// Evidence: as for `MigrationStorm`.
    MigrationFailures,
    /// Evidence: total_vm, anon_rss and file_rss in kB, oom_score_adj.
    OomKill,
    /// Evidence: object id, ns since its allocation, ns since its release, releasing pid.
    PoolStaleAccess,
    /// Evidence: as for `PoolStaleAccess`.
    PoolDoubleRelease,
    /// Found by userspace. Evidence: object id, ns since allocation, ns idle, accesses.
    PoolLeak,
    /// Evidence: pool faults in the request, last fault address, its pool offset, 0.
    PoolFaultStorm,
    /// Evidence: pool faults in the process's window, last address, its pool offset, 1.
    PoolFaultBurst,
}

impl Kind {
    fn from_code(code: u16) -> Option<Kind> {
        Some(match code {
            1 => Kind::FunctionLatency,
            2 => Kind::SyscallLatency,
            3 => Kind::ReclaimStall,
            4 => Kind::MigrationStorm,
            5 => Kind::MigrationFailures,
            6 => Kind::OomKill,
            7 => Kind::PoolStaleAccess,
            8 => Kind::PoolDoubleRelease,
            9 => Kind::PoolLeak,
            10 => Kind::PoolFaultStorm,
            11 => Kind::PoolFaultBurst,
            _ => return None,
        })
    }

    /// Whether `duration_ns` is how long the symptom lasted (else it is a counting window).
    pub fn has_duration(self) -> bool {
        matches!(
            self,
            Kind::FunctionLatency | Kind::SyscallLatency | Kind::ReclaimStall
        )
    }
}

/// One symptom a detector reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub kind: Kind,
    /// CLOCK_MONOTONIC nanoseconds when the symptom ended or was seen.
    pub ktime_ns: u64,
    pub duration_ns: u64,
    pub threshold_ns: u64,
    /// `None` when the thread had published no (or a cleared) trace context.
    pub trace: Option<TraceContext>,
    pub pid: u32,
    pub tid: u32,
    /// Index into the probe's detector table.
    pub detector: u32,
    /// The task's command name, lossily decoded.
    pub comm: String,
    pub evidence: [i64; 4],
}

/// Why a ring-buffer record could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Truncated { len: usize },
    UnknownKind { kind: u16 },
}

pub const EVENT_SIZE: usize = 112;
/// `WBPF_FLAG_HAS_CONTEXT`.
pub const FLAG_HAS_CONTEXT: u16 = 1;
pub const COMM_LEN: usize = 16;

impl Event {
    /// Decodes one record; longer records are accepted so the kernel side may grow.
    pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        let bytes: &[u8; EVENT_SIZE] = bytes
            .get(..EVENT_SIZE)
            .and_then(|prefix| prefix.try_into().ok())
            .ok_or(DecodeError::Truncated { len: bytes.len() })?;

        let code = u16_at(bytes, 60);
        let kind = Kind::from_code(code).ok_or(DecodeError::UnknownKind { kind: code })?;

        let flags = u16_at(bytes, 62);
        let trace = (flags & FLAG_HAS_CONTEXT != 0).then(|| {
            TraceContext::from_words(u64_at(bytes, 24), u64_at(bytes, 32), u64_at(bytes, 40))
        });

        let evidence = [80, 88, 96, 104].map(|offset| u64_at(bytes, offset) as i64);

        Ok(Event {
            kind,
            ktime_ns: u64_at(bytes, 0),
            duration_ns: u64_at(bytes, 8),
            threshold_ns: u64_at(bytes, 16),
            trace,
            pid: u32_at(bytes, 48),
            tid: u32_at(bytes, 52),
            detector: u32_at(bytes, 56),
            comm: comm_string(&bytes[64..64 + COMM_LEN]),
            evidence,
        })
    }
}

/// A NUL-padded kernel command name as text.
pub fn comm_string(comm: &[u8]) -> String {
    let len = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
    String::from_utf8_lossy(&comm[..len]).into_owned()
}

fn u64_at(bytes: &[u8; EVENT_SIZE], offset: usize) -> u64 {
    let field = bytes[offset..offset + 8]
        .try_into()
        .expect("8-byte slice of a fixed array");
    u64::from_ne_bytes(field)
}

fn u32_at(bytes: &[u8; EVENT_SIZE], offset: usize) -> u32 {
    let field = bytes[offset..offset + 4]
        .try_into()
        .expect("4-byte slice of a fixed array");
    u32::from_ne_bytes(field)
}

fn u16_at(bytes: &[u8; EVENT_SIZE], offset: usize) -> u16 {
    let field = bytes[offset..offset + 2]
        .try_into()
        .expect("2-byte slice of a fixed array");
    u16::from_ne_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a record the way the kernel programs lay it out.
    fn record(kind: u16, flags: u16, comm: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(EVENT_SIZE);
        for value in [5_000u64, 60_000_000, 20_000_000] {
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        for value in [
            0x0102_0304_0506_0708u64,
            0x090a_0b0c_0d0e_0f10,
            0x1112_1314_1516_1718,
        ] {
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        for value in [42u32, 43, 7] {
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        let mut comm_field = [0u8; COMM_LEN];
        comm_field[..comm.len()].copy_from_slice(comm);
        bytes.extend_from_slice(&comm_field);
        for value in [35i64, -4, 0, i64::MIN] {
            bytes.extend_from_slice(&value.to_ne_bytes());
        }
        bytes
    }

    #[test]
    fn decodes_every_field_at_the_c_offsets() {
        let event = Event::decode(&record(2, FLAG_HAS_CONTEXT, b"worker")).expect("valid");

        assert_eq!(event.kind, Kind::SyscallLatency);
        assert_eq!(event.ktime_ns, 5_000);
        assert_eq!(event.duration_ns, 60_000_000);
        assert_eq!(event.threshold_ns, 20_000_000);
        assert_eq!((event.pid, event.tid, event.detector), (42, 43, 7));
        assert_eq!(event.comm, "worker");
        assert_eq!(event.evidence, [35, -4, 0, i64::MIN]);
        let trace = event.trace.expect("context flag set");
        let expected: Vec<u8> = (1..=16).collect();
        assert_eq!(trace.trace_id.as_slice(), expected.as_slice());
        assert_eq!(
            trace.span_id,
            [0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]
        );
    }

    #[test]
    fn no_context_flag_means_no_trace_and_a_full_comm_needs_no_nul() {
        let event = Event::decode(&record(1, 0, b"sixteen-chars-xx")).expect("valid");
        assert_eq!(event.kind, Kind::FunctionLatency);
        assert_eq!(event.trace, None);
        assert_eq!(event.comm, "sixteen-chars-xx");
    }

    #[test]
    fn short_or_foreign_records_are_rejected() {
        assert_eq!(
            Event::decode(&[0; 111]),
            Err(DecodeError::Truncated { len: 111 })
        );
        let foreign = record(99, 0, b"x");
        assert_eq!(
            Event::decode(&foreign),
            Err(DecodeError::UnknownKind { kind: 99 })
        );
    }
}
