//! Reads the kernel's ring buffer asynchronously.
//!
//! aya 0.14 has no async ring buffer, so the map's file descriptor is registered with tokio's
//! reactor: epoll reports it readable when records are pending, the task drains every pending
//! record, and clears readiness. tokio only clears readiness if no new notification arrived
//! while draining, so a record submitted mid-drain is not missed.

use aya::maps::{MapData, RingBuf};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::error;

use crate::ProbeError;

/// Records handled per wake-up before the task lets others run.
const RECORDS_PER_WAKE: usize = 1024;

/// Spawns the reader task. It hands every record to `handle` until `stop` changes or its
/// sender is dropped, then drains what is still pending and returns.
pub fn spawn<F>(
    ring: RingBuf<MapData>,
    stop: watch::Receiver<bool>,
    handle: F,
) -> Result<JoinHandle<()>, ProbeError>
where
    F: FnMut(&[u8]) + Send + 'static,
{
    // SAFETY: the ring buffer owns its map's file descriptor, which stays open and is the one
    // `as_raw_fd` returns for as long as the `RingBuf` lives, i.e. as long as the `AsyncFd`.
    let ring =
        unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }.map_err(|error| {
            ProbeError::RingBuf {
                source: error.into(),
            }
        })?;
    Ok(tokio::spawn(read(ring, stop, handle)))
}

async fn read<F: FnMut(&[u8])>(
    mut ring: AsyncFd<RingBuf<MapData>>,
    mut stop: watch::Receiver<bool>,
    mut handle: F,
) {
    loop {
        tokio::select! {
            // A value or a dropped sender both mean stop.
            _ = stop.changed() => break,
            ready = ring.readable_mut() => match ready {
                Ok(mut guard) => {
                    // Readiness stays set after a full batch, so the loop comes straight back
                    // (through tokio's cooperative budget, letting other tasks run).
                    if drain(guard.get_inner_mut(), &mut handle, RECORDS_PER_WAKE)
                        < RECORDS_PER_WAKE
                    {
                        guard.clear_ready();
                    }
                }
                Err(err) => {
                    error!(error = %err, "ring buffer cannot be polled; no more triggers");
                    break;
                }
            },
        }
    }
    // The programs are detached by now, so this ends once the buffer is empty.
    drain(ring.get_mut(), &mut handle, usize::MAX);
}

/// Hands up to `limit` pending records to `handle`; returns how many there were.
fn drain<F: FnMut(&[u8])>(ring: &mut RingBuf<MapData>, handle: &mut F, limit: usize) -> usize {
    let mut records = 0;
    while records < limit {
        let Some(record) = ring.next() else { break };
        handle(&record);
        records += 1;
    }
    records
}
