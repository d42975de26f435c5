//! Finding loopback ports for the workload's three services.

use std::net::{Ipv4Addr, TcpListener};

/// A port `p` such that `p`, `p + 1` and `p + 2` are free on 127.0.0.1 right now.
///
/// Starts from a process-dependent point in the dynamic range so that concurrent demos rarely
/// race for the same ports.
pub fn free_triple() -> anyhow::Result<u16> {
    let start = 20_000 + (std::process::id() % 20_000) as u16;
    for base in (start..60_000).chain(20_000..start).step_by(3) {
        let free = (0..3).all(|i| TcpListener::bind((Ipv4Addr::LOCALHOST, base + i)).is_ok());
        if free {
            return Ok(base);
        }
    }
    anyhow::bail!("no three consecutive free ports on 127.0.0.1")
}
