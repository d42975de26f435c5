//! `wbpf workload`: the demo's three services, running until stopped (for docker compose).

use std::path::PathBuf;
use std::time::Duration;

use wbpf_demo::{PoolFaultRates, WorkloadOptions};

#[derive(clap::Args, Debug)]
pub struct WorkloadArgs {
    /// OTLP/HTTP endpoint of the gateway.
    #[arg(long, default_value = "http://127.0.0.1:4318")]
    otlp_endpoint: String,
    /// The workload binary; by default `wbpf-workload` next to this executable.
    #[arg(long)]
    workload_bin: Option<PathBuf>,
    #[arg(long, default_value_t = 50)]
    rate: u32,
    #[arg(long, default_value_t = 0.01)]
    fault_rate: f64,
    #[arg(long, default_value = "30ms", value_parser = humantime::parse_duration)]
    stall: Duration,
    #[command(flatten)]
    pool_faults: PoolFaultRates,
    /// The frontend's port (it also accepts `REQ` lines there); index and store take the next
    /// two. By default three free ports are picked.
    #[arg(long)]
    base_port: Option<u16>,
    /// Where injected trace ids are recorded.
    #[arg(long, default_value = "/tmp/wbpf-ground-truth.jsonl")]
    ground_truth: PathBuf,
    /// Tracing off: the services run unchanged but record and export no spans (the baseline
    /// for measuring what tracing costs).
    #[arg(long)]
    no_tracing: bool,
}

pub async fn run(args: WorkloadArgs) -> anyhow::Result<()> {
    let workload_bin = match args.workload_bin {
        Some(bin) => bin,
        None => std::env::current_exe()?.with_file_name("wbpf-workload"),
    };
    let options = WorkloadOptions {
        workload_bin,
        pool_path: PathBuf::from("/dev/shm/wbpf-pool"),
        otlp_http_endpoint: args.otlp_endpoint,
        rate: args.rate,
        // Effectively forever: the services stop on SIGTERM.
        duration: Duration::from_secs(365 * 24 * 3600),
        fault_rate: args.fault_rate,
        stall: args.stall,
        pool_faults: args.pool_faults,
        ground_truth: args.ground_truth,
        stats: std::env::temp_dir().join("wbpf-workload-stats.json"),
        base_port: match args.base_port {
            Some(port) => port,
            None => wbpf_demo::free_triple()?,
        },
        log_filter: None,
        seed: 1,
        publish_context: true,
        tracing: !args.no_tracing,
    };
    // The pool and the frontend's figures belong to this run: they go when it ends.
    let run_files = [options.pool_path.clone(), options.stats.clone()];
    let workload = tokio::task::spawn_blocking(move || wbpf_demo::spawn(&options)).await??;
    crate::signals::terminated().await?;
    tokio::task::spawn_blocking(move || workload.stop()).await??;
    for file in run_files {
        let _ = std::fs::remove_file(file);
    }
    Ok(())
}
