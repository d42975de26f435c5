//! The index: reads a postings object from the pool and fetches the record from the store.

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
use crate::protocol::{Downstream, Request, Response};
use crate::shutdown::Shutdown;

/// Postings objects the index keeps in the pool.
const POSTINGS: usize = 64;
/// Bytes per postings object.
const POSTINGS_BYTES: usize = 2048;

/// Serves lookups until shutdown is requested.
pub(crate) fn run(
    config: &ServiceConfig,
    tracer: SdkTracer,
    pool: Arc<Pool>,
    shutdown: &Shutdown,
) -> Result<(), DemoError> {
    let listen = config.require_listen()?;
    let next = config.require_next()?;
    let postings = WorkingSet::populate(pool.clone(), "postings", POSTINGS, POSTINGS_BYTES)?;
    let listener = server::bind(listen)?;
    let index = Index {
        tracer,
        pool,
        postings,
        listen,
        next,
    };
    server::serve(listener, Arc::new(index), shutdown);
    Ok(())
}

struct Index {
    tracer: SdkTracer,
    pool: Arc<Pool>,
    postings: WorkingSet,
    listen: SocketAddr,
    next: SocketAddr,
}

impl Index {
    fn lookup(
        &self,
        cx: &Context,
        downstream: &mut Downstream,
        request: &Request,
    ) -> Result<u64, DemoError> {
        let id = self.postings.pick(request.key);
        let read = spans::pool_access(&self.tracer, cx, &self.pool, PoolOp::Read, id, |pool| {
            let (data, access) = pool.read(id, Duration::ZERO)?;
            Ok((data.len() as u64, access))
        })?;
        let fetched = spans::call(
            &self.tracer,
            cx,
            spans::STORE_FETCH,
            downstream,
            request.key,
            request.fault,
        )?;
        Ok(read + fetched)
    }
}

impl Handler for Index {
    type Session = Downstream;

    fn session(&self) -> Downstream {
        Downstream::new(self.next)
    }

    fn handle(&self, downstream: &mut Downstream, request: Request) -> Response {
        spans::serve_rpc(
            &self.tracer,
            spans::INDEX_LOOKUP,
            self.listen,
            &request,
            |cx| self.lookup(cx, downstream, &request),
        )
    }
}
