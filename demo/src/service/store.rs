//! The store: reads a record from the pool (where the far-memory stall is injected), updates
//! it and writes it back.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::trace::SdkTracer;

use super::server::{self, Handler};
use super::spans::{self, PoolOp};
use super::working_set::WorkingSet;
use super::ServiceConfig;
use crate::error::DemoError;
use crate::pool::Pool;
use crate::protocol::{Request, Response};
use crate::shutdown::Shutdown;

/// Records the store keeps in the pool.
const RECORDS: usize = 256;
/// Bytes per record.
const RECORD_BYTES: usize = 512;

/// Serves fetches until shutdown is requested.
pub(crate) fn run(
    config: &ServiceConfig,
    tracer: SdkTracer,
    pool: Arc<Pool>,
    shutdown: &Shutdown,
) -> Result<(), DemoError> {
    let listen = config.require_listen()?;
    let records = WorkingSet::populate(pool.clone(), "record", RECORDS, RECORD_BYTES)?;
    let listener = server::bind(listen)?;
    let store = Store {
        tracer,
        pool,
        records,
        listen,
        stall: config.stall,
    };
    server::serve(listener, Arc::new(store), shutdown);
    Ok(())
}

struct Store {
    tracer: SdkTracer,
    pool: Arc<Pool>,
    records: WorkingSet,
    listen: SocketAddr,
    stall: Duration,
}

impl Store {
    fn fetch(&self, cx: &Context, request: &Request) -> Result<u64, DemoError> {
        let id = self.records.pick(request.key);
        let stall = if request.fault {
            self.stall
        } else {
            Duration::ZERO
        };
        let mut record =
            spans::pool_access(&self.tracer, cx, &self.pool, PoolOp::Read, id, |pool| {
                pool.read(id, stall)
            })?;

        bump_hit_counter(&mut record);
        let written =
            spans::pool_access(&self.tracer, cx, &self.pool, PoolOp::Write, id, |pool| {
                let access = pool.write(id, &record, Duration::ZERO)?;
                Ok((access.len, access))
            })?;
        Ok(record.len() as u64 + written)
    }
}

/// Counts fetches in the record's first eight bytes (a read-modify-write, as a cache would).
fn bump_hit_counter(record: &mut [u8]) {
    if let Some(counter) = record.first_chunk_mut::<8>() {
        *counter = u64::from_le_bytes(*counter).wrapping_add(1).to_le_bytes();
    }
}

impl Handler for Store {
    type Session = ();

    fn session(&self) {}

    fn handle(&self, _: &mut (), request: Request) -> Response {
        spans::serve_rpc(
            &self.tracer,
            spans::STORE_FETCH,
            self.listen,
            &request,
            |cx| self.fetch(cx, &request),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_counter_wraps_and_ignores_short_records() {
        let mut record = [0xff; 10];
        bump_hit_counter(&mut record);
        assert_eq!(record, [0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]);
        let mut short = [1u8; 3];
        bump_hit_counter(&mut short);
        assert_eq!(short, [1, 1, 1]);
    }
}
