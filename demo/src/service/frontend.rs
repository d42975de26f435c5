//! The frontend: generates the load itself and serves each request as a root `GET /search`
//! span that writes a session object to the pool and calls the index. It also injects the
//! planned pool faults (`faults`) into the requests that draw them.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::SdkTracer;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::{debug, info, warn};

use super::faults::{self, PoolFaultPlan, PoolFaults};
use super::server::{self, Handler};
use super::spans::{self, PoolOp};
use super::working_set::payload;
use super::{ServiceConfig, SPANS_PER_REQUEST};
use crate::context::{extract, SpanAnnouncement};
use crate::error::DemoError;
use crate::ground_truth::{GroundTruthEntry, GroundTruthWriter, FAR_MEMORY_STALL};
use crate::pool::Pool;
use crate::protocol::{Downstream, Request, Response};
use crate::shutdown::Shutdown;
use crate::stats::WorkloadStats;

/// Request keys are drawn from this range; each service maps them onto its own objects.
const KEY_SPACE: u32 = 1 << 16;
/// Bytes of a session object.
const SESSION_BYTES: usize = 256;
/// Failures logged at WARN before the rest go to DEBUG (all are counted in the stats).
const LOGGED_FAILURES: u64 = 5;

/// Runs the load for the configured duration (or until a signal) and returns its summary.
pub(crate) fn run(
    config: &ServiceConfig,
    tracer: SdkTracer,
    pool: Arc<Pool>,
    shutdown: &Shutdown,
) -> Result<WorkloadStats, DemoError> {
    let next = config.require_next()?;
    let truth = config
        .ground_truth
        .as_deref()
        .map(GroundTruthWriter::create)
        .transpose()?;
    let listener = config.listen.map(server::bind).transpose()?;
    let frontend = Arc::new(Frontend {
        tracer,
        pool,
        listen: config.listen,
        next,
        truth,
        counters: Counters::default(),
        storm_pages: config.storm_pages,
    });
    let plan = Mutex::new(Plan::new(config));
    info!(rate = config.rate, duration = ?config.duration, fault_rate = config.fault_rate,
        workers = config.workers, "load run starting");

    let started = Instant::now();
    let spawned = std::thread::scope(|scope| {
        let mut threads = Vec::new();
        if let Some(listener) = listener {
            let handler = Arc::clone(&frontend);
            let listening = std::thread::Builder::new()
                .name("frontend-listener".to_owned())
                .spawn_scoped(scope, move || server::serve(listener, handler, shutdown));
            threads.push(listening.map(drop));
        }
        let mut workers = Vec::new();
        for worker in 0..config.workers {
            let spawned = std::thread::Builder::new()
                .name(format!("loadgen-{worker}"))
                .spawn_scoped(scope, || generate(&frontend, &plan, started, shutdown));
            match spawned {
                Ok(thread) => workers.push(thread),
                Err(error) => {
                    threads.push(Err(error));
                    shutdown.request();
                    break;
                }
            }
        }
        for worker in workers {
            if worker.join().is_err() {
                warn!("a load-generator thread panicked");
            }
        }
        // The plan is done (or a signal came): stop the listener too, so the scope can end.
        shutdown.request();
        threads.into_iter().collect::<Result<(), _>>()
    });
    let elapsed = started.elapsed();
    spawned.map_err(|source| DemoError::Child {
        role: "frontend",
        operation: "start a thread",
        source,
    })?;

    let counters = &frontend.counters;
    let stats = WorkloadStats {
        requests: counters.requests.load(Ordering::Relaxed),
        errors: counters.errors.load(Ordering::Relaxed),
        injected: counters.injected.load(Ordering::Relaxed),
        spans_per_request: SPANS_PER_REQUEST,
        duration_s: elapsed.as_secs_f64(),
    };
    info!(
        requests = stats.requests,
        errors = stats.errors,
        injected = stats.injected,
        duration_s = stats.duration_s,
        "load run finished"
    );
    Ok(stats)
}

/// One load-generator thread: takes the next planned request, waits for its time, serves it.
fn generate(frontend: &Frontend, plan: &Mutex<Plan>, started: Instant, shutdown: &Shutdown) {
    let mut downstream = Downstream::new(frontend.next);
    loop {
        let planned = plan.lock().unwrap_or_else(PoisonError::into_inner).next();
        let Some(planned) = planned else { return };
        if !shutdown.sleep_until(started + planned.due) {
            return;
        }
        // Failures are counted and logged inside.
        let _ = frontend.search(
            &mut downstream,
            &Context::new(),
            planned.key,
            planned.fault,
            planned.pool,
        );
    }
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    errors: AtomicU64,
    injected: AtomicU64,
}

struct Frontend {
    tracer: SdkTracer,
    pool: Arc<Pool>,
    listen: Option<SocketAddr>,
    next: SocketAddr,
    truth: Option<GroundTruthWriter>,
    counters: Counters,
    /// Pages one injected fault storm touches.
    storm_pages: u64,
}

impl Frontend {
    /// Serves one search as a root span (or a child of `parent` if it holds a remote span).
    fn search(
        &self,
        downstream: &mut Downstream,
        parent: &Context,
        key: u32,
        fault: bool,
        pool_faults: PoolFaults,
    ) -> Result<u64, DemoError> {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let attributes = spans::http_server_attributes(self.listen, key);
        let cx = spans::start_server(&self.tracer, spans::SEARCH, parent, attributes);
        let _announced = SpanAnnouncement::enter(cx.span().span_context());
        if fault {
            self.counters.injected.fetch_add(1, Ordering::Relaxed);
            self.record_fault(&cx, FAR_MEMORY_STALL, "store");
        }
        // Injected while the request's span is announced, so the probe can attribute them.
        for kind in faults::inject(&self.pool, pool_faults, self.storm_pages) {
            self.counters.injected.fetch_add(1, Ordering::Relaxed);
            self.record_fault(&cx, kind, "frontend");
        }

        let result = self.serve_search(&cx, downstream, key, fault);
        let status = if result.is_ok() { 200 } else { 500 };
        cx.span()
            .set_attribute(KeyValue::new("http.response.status_code", status));
        spans::end(&cx, &result);

        if let Err(error) = &result {
            let failures = self.counters.errors.fetch_add(1, Ordering::Relaxed) + 1;
            if failures <= LOGGED_FAILURES {
                warn!(%error, failures, "request failed");
            } else {
                debug!(%error, failures, "request failed");
            }
        }
        result
    }

    fn serve_search(
        &self,
        cx: &Context,
        downstream: &mut Downstream,
        key: u32,
        fault: bool,
    ) -> Result<u64, DemoError> {
        let session = self.pool.allocate()?;
        let body = payload("session", key as usize, SESSION_BYTES);
        let result = spans::pool_access(
            &self.tracer,
            cx,
            &self.pool,
            PoolOp::Write,
            session,
            |pool| {
                let access = pool.write(session, &body, Duration::ZERO)?;
                Ok((access.len, access))
            },
        )
        .and_then(|written| {
            let fetched = spans::call(
                &self.tracer,
                cx,
                spans::INDEX_LOOKUP,
                downstream,
                key,
                fault,
            )?;
            Ok(written + fetched)
        });
        if let Err(error) = self.pool.release(session) {
            warn!(id = %session, %error, "cannot release session object");
        }
        result
    }

    fn record_fault(&self, cx: &Context, fault: &str, service: &str) {
        let Some(truth) = &self.truth else { return };
        let entry = GroundTruthEntry {
            trace_id: cx.span().span_context().trace_id().to_string(),
            fault: fault.to_owned(),
            service: service.to_owned(),
            spans: SPANS_PER_REQUEST,
        };
        if let Err(error) = truth.append(&entry) {
            warn!(%error, trace_id = %entry.trace_id, "cannot record injected fault");
        }
    }
}

/// Requests arriving on the frontend's own listener (e.g. from a test) are served like
/// generated ones, with the fault flag the caller chose and no pool faults.
impl Handler for Frontend {
    type Session = Downstream;

    fn session(&self) -> Downstream {
        Downstream::new(self.next)
    }

    fn handle(&self, downstream: &mut Downstream, request: Request) -> Response {
        let parent = extract(request.traceparent.as_deref());
        spans::respond(self.search(
            downstream,
            &parent,
            request.key,
            request.fault,
            PoolFaults::default(),
        ))
    }
}

/// The request schedule: the i-th request is due at i / rate seconds. Keys and fault decisions
/// come from one seeded generator in request order, so a seed fixes which requests are faulty
/// however the worker threads interleave.
#[derive(Debug)]
struct Plan {
    issued: u64,
    total: u64,
    rate: f64,
    fault_rate: f64,
    rng: StdRng,
    pool_faults: PoolFaultPlan,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Planned {
    due: Duration,
    key: u32,
    fault: bool,
    pool: PoolFaults,
}

impl Plan {
    fn new(config: &ServiceConfig) -> Self {
        let rate = f64::from(config.rate);
        Self {
            issued: 0,
            total: (config.duration.as_secs_f64() * rate).round() as u64,
            rate,
            fault_rate: config.fault_rate,
            rng: StdRng::seed_from_u64(config.seed),
            pool_faults: PoolFaultPlan::new(config.pool_faults, config.seed),
        }
    }

    fn next(&mut self) -> Option<Planned> {
        if self.issued >= self.total {
            return None;
        }
        let due = Duration::from_secs_f64(self.issued as f64 / self.rate);
        self.issued += 1;
        Some(Planned {
            due,
            key: self.rng.random_range(0..KEY_SPACE),
            fault: self.rng.random_bool(self.fault_rate),
            pool: self.pool_faults.next(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::Role;

    fn config(rate: u32, duration: Duration, fault_rate: f64, seed: u64) -> ServiceConfig {
        ServiceConfig {
            rate,
            duration,
            fault_rate,
            seed,
            ..ServiceConfig::new(Role::Frontend, "/dev/shm/unused".into())
        }
    }

    fn drain(mut plan: Plan) -> Vec<Planned> {
        std::iter::from_fn(|| plan.next()).collect()
    }

    #[test]
    fn plan_spaces_requests_evenly_over_the_duration() {
        let planned = drain(Plan::new(&config(200, Duration::from_secs(2), 0.0, 1)));
        assert_eq!(planned.len(), 400);
        assert_eq!(planned[1].due, Duration::from_millis(5));
        assert_eq!(planned[399].due, Duration::from_millis(1995));
        assert!(planned.iter().all(|p| !p.fault));
    }

    #[test]
    fn plan_injects_the_requested_share_deterministically() {
        let make = |seed| {
            drain(Plan::new(&config(
                1000,
                Duration::from_secs(20),
                0.01,
                seed,
            )))
        };
        let faults = make(7).iter().filter(|p| p.fault).count();
        assert!(
            (150..=250).contains(&faults),
            "{faults} faults in 20000 requests"
        );
        assert_eq!(make(7), make(7));
        assert_ne!(make(7), make(8));
    }
}
