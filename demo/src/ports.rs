//! Loopback ports for the workload's three services.

use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicU16, Ordering};

use crate::DemoError;

/// The lowest port searched.
const LOW: u16 = 10_000;

/// A port `p` such that `p`, `p + 1` and `p + 2` are free on 127.0.0.1 right now.
///
/// The services bind them a moment later, so the search stays below the kernel's ephemeral
/// range, whose ports any outgoing connection may take in between. It starts from a point
/// that depends on the process, and moves on with each call, so that concurrent demos and
/// tests rarely race for the same ports.
pub fn free_triple() -> Result<u16, DemoError> {
    static CALLS: AtomicU16 = AtomicU16::new(0);
    let high = ephemeral_start()
        .filter(|&start| start > LOW + 300)
        .unwrap_or(60_000);
    let triples = u32::from((high - LOW) / 3);
    let offset = std::process::id() + 7 * u32::from(CALLS.fetch_add(1, Ordering::Relaxed));
    let first = LOW + 3 * (offset % triples) as u16;
    let bases = (first..high - 2).chain(LOW..first).step_by(3);
    for base in bases {
        let free = (0..3).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok());
        if free {
            return Ok(base);
        }
    }
    Err(DemoError::NoFreePorts { low: LOW, high })
}

/// The first port of `net.ipv4.ip_local_port_range`, if this is Linux.
fn ephemeral_start() -> Option<u16> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    range.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn successive_calls_give_free_triples_below_the_ephemeral_range() {
        let first = free_triple().expect("a free triple");
        let second = free_triple().expect("another free triple");
        assert_ne!(first, second, "two calls in one process got the same ports");
        if let Some(start) = ephemeral_start() {
            assert!(
                first + 2 < start && second + 2 < start,
                "{first} {second} {start}"
            );
        }
    }
}
