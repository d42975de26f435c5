//! The three demo services, frontend -> index -> store, each run as its own process.

mod faults;
mod frontend;
mod index;
mod server;
mod spans;
mod store;
mod working_set;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tracing::{error, info};

use crate::error::DemoError;
use crate::pool::Pool;
use crate::shutdown::Shutdown;
use crate::telemetry::Telemetry;

pub use faults::PoolFaultRates;

/// Spans one successful request produces across the three services (see `spans` for the
/// shape): three in each.
pub const SPANS_PER_REQUEST: u32 = 9;

/// Which service a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    Frontend,
    Index,
    Store,
}

impl Role {
    /// The OpenTelemetry `service.name`.
    pub fn service_name(self) -> &'static str {
        match self {
            Self::Frontend => "frontend",
            Self::Index => "index",
            Self::Store => "store",
        }
    }
}

/// Everything one service process needs; the binary fills it from its command line.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub role: Role,
    /// Where to accept requests; required for index and store, optional for the frontend.
    pub listen: Option<SocketAddr>,
    /// The next service; required for frontend and index.
    pub next: Option<SocketAddr>,
    pub pool: PathBuf,
    /// OTLP/HTTP base endpoint, e.g. `http://127.0.0.1:4318`.
    pub otlp_endpoint: String,
    /// Frontend: requests per second.
    pub rate: u32,
    /// Frontend: length of the load run.
    pub duration: Duration,
    /// Frontend: probability that a request gets a far-memory stall.
    pub fault_rate: f64,
    /// Store: length of an injected stall.
    pub stall: Duration,
    /// Frontend: probability of each injected pool fault (leak, stale access, ...).
    pub pool_faults: PoolFaultRates,
    /// Frontend: pool pages one injected fault storm touches.
    pub storm_pages: u64,
    /// Frontend: where to record injected traces.
    pub ground_truth: Option<PathBuf>,
    /// Frontend: where to write the run summary.
    pub stats: Option<PathBuf>,
    /// Frontend: seed of the request plan (keys and fault decisions).
    pub seed: u64,
    /// Frontend: load-generator threads.
    pub workers: usize,
    /// Announce each request's span through `wbpf_trace_context` (see `context`).
    pub publish_context: bool,
    /// Record and export spans; when false, spans are dropped as they start
    /// ([`Telemetry::disabled`]) and `otlp_endpoint` is not used.
    pub tracing: bool,
}

impl ServiceConfig {
    /// A config with the command line's defaults.
    pub fn new(role: Role, pool: PathBuf) -> Self {
        Self {
            role,
            listen: None,
            next: None,
            pool,
            otlp_endpoint: "http://127.0.0.1:4318".to_owned(),
            rate: 200,
            duration: Duration::from_secs(20),
            fault_rate: 0.01,
            stall: Duration::from_millis(30),
            pool_faults: PoolFaultRates::default(),
            storm_pages: 256,
            ground_truth: None,
            stats: None,
            seed: 1,
            workers: 4,
            publish_context: true,
            tracing: true,
        }
    }

    pub fn validate(&self) -> Result<(), DemoError> {
        let invalid = |reason: &str| {
            Err(DemoError::Options {
                reason: reason.to_owned(),
            })
        };
        match self.role {
            Role::Frontend => {
                self.require_next()?;
                if self.rate == 0 {
                    return invalid("--rate must be at least 1");
                }
                if !(0.0..=1.0).contains(&self.fault_rate) {
                    return invalid("--fault-rate must be between 0 and 1");
                }
                self.pool_faults.validate()?;
                if self.workers == 0 {
                    return invalid("--workers must be at least 1");
                }
            }
            Role::Index => {
                self.require_listen()?;
                self.require_next()?;
            }
            Role::Store => {
                self.require_listen()?;
            }
        }
        Ok(())
    }

    fn require_listen(&self) -> Result<SocketAddr, DemoError> {
        self.listen.ok_or_else(|| DemoError::Options {
            reason: format!("--listen is required for {}", self.role.service_name()),
        })
    }

    fn require_next(&self) -> Result<SocketAddr, DemoError> {
        self.next.ok_or_else(|| DemoError::Options {
            reason: format!("--next is required for {}", self.role.service_name()),
        })
    }
}

/// Runs one service until it is done (frontend) or signalled (SIGTERM/SIGINT), then flushes
/// its spans; the frontend then writes its stats file.
pub fn run(config: &ServiceConfig) -> Result<(), DemoError> {
    config.validate()?;
    let shutdown = Shutdown::on_signals()?;
    crate::context::set_publishing(config.publish_context);
    let pool = Arc::new(Pool::open(&config.pool)?);
    let telemetry = if config.tracing {
        Telemetry::init(config.role.service_name(), &config.otlp_endpoint)?
    } else {
        Telemetry::disabled(config.role.service_name())
    };
    let tracer = telemetry.tracer();
    info!(
        role = config.role.service_name(),
        pid = std::process::id(),
        publish_context = config.publish_context,
        tracing = config.tracing,
        "service starting"
    );

    let outcome = match config.role {
        Role::Frontend => frontend::run(config, tracer, pool, &shutdown).map(Some),
        Role::Index => index::run(config, tracer, pool, &shutdown).map(|()| None),
        Role::Store => store::run(config, tracer, pool, &shutdown).map(|()| None),
    };

    // Flush whatever was produced, even if the service failed.
    let flushed = telemetry.shutdown();
    match &flushed {
        Ok(()) => info!("tracer provider shut down"),
        Err(error) => error!(%error, "spans may be lost"),
    }

    if let (Some(stats), Some(path)) = (outcome?, &config.stats) {
        stats.write(path)?;
    }
    flushed
}
