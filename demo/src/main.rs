//! `wbpf-workload`: runs one service of the demo workload.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use wbpf_demo::service::{self, PoolFaultRates, Role, ServiceConfig};
use wbpf_demo::telemetry;

/// One service (frontend, index or store) of the wBPF memory-pool demo workload.
#[derive(Debug, Parser)]
#[command(name = "wbpf-workload", version)]
struct Cli {
    /// Which service to run.
    #[arg(long, value_enum)]
    role: Role,
    /// Address to accept requests on (required for index and store).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Address of the next service (required for frontend and index).
    #[arg(long)]
    next: Option<SocketAddr>,
    /// The shared pool file, created (64 MiB) if missing.
    #[arg(long)]
    pool: PathBuf,
    /// OTLP/HTTP endpoint of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    otlp_endpoint: String,
    /// Frontend: requests per second.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Frontend: how long to generate load.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    duration: Duration,
    /// Frontend: probability that a request gets a far-memory stall.
    #[arg(long, default_value_t = 0.01)]
    fault_rate: f64,
    /// Store: length of an injected stall.
    #[arg(long, default_value = "30ms", value_parser = parse_duration)]
    stall: Duration,
    // Frontend: the pool faults to inject into requests.
    #[command(flatten)]
    pool_faults: PoolFaultRates,
    /// Frontend: pool pages one fault storm touches.
    #[arg(long, default_value_t = 256)]
    storm_pages: u64,
    /// Frontend: file to record injected trace ids in (JSON lines).
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// Frontend: file to write the run summary to (JSON).
    #[arg(long)]
    stats: Option<PathBuf>,
    /// Frontend: seed of the request plan.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Frontend: load-generator threads.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Never call `wbpf_trace_context`: the probe then cannot tell which request a thread
    /// serves, and its triggers are matched to traces by process, thread and time.
    #[arg(long)]
    no_context: bool,
    /// Tracing off: the service code is unchanged, but spans are dropped as they start
    /// (OpenTelemetry's AlwaysOff sampler) and nothing is exported; the baseline for the cost
    /// of tracing. Trace ids are still made, propagated and announced.
    #[arg(long)]
    no_tracing: bool,
}

impl Cli {
    fn into_config(self) -> ServiceConfig {
        ServiceConfig {
            listen: self.listen,
            next: self.next,
            otlp_endpoint: self.otlp_endpoint,
            rate: self.rate,
            duration: self.duration,
            fault_rate: self.fault_rate,
            stall: self.stall,
            pool_faults: self.pool_faults,
            storm_pages: self.storm_pages,
            ground_truth: self.ground_truth,
            stats: self.stats,
            seed: self.seed,
            workers: self.workers,
            publish_context: !self.no_context,
            tracing: !self.no_tracing,
            ..ServiceConfig::new(self.role, self.pool)
        }
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|error| format!("{error} (write it like 30ms or 20s)"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_logging();
    let role = cli.role.service_name();
    match service::run(&cli.into_config()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(role, %error, "service failed");
            ExitCode::FAILURE
        }
    }
}
