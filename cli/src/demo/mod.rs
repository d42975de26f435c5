//! `wbpf demo`: gateway, probe and the memory-pool workload together, scored against the
//! workload's ground truth.
//!
//! Everything runs for real on this machine: the gateway in this process on ephemeral
//! loopback ports with RocksDB in a temporary directory, the probe's eBPF programs in the
//! kernel, and the three workload services as child processes sharing a pool under /dev/shm.
//! The probe runs three detectors: `function_latency` on the pool access function (the
//! far-memory stalls), `pool_objects` (leaks, stale references, double releases) and
//! `pool_faults` (page-fault storms on the pool); the pool faults are injected only when their
//! rates are set.

mod by_fault;
mod private_binary;
mod report;
mod score;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use tracing::info;
use wbpf_config::{
    ContextConfig, DetectorConfig, FileExporterConfig, FunctionLatencyConfig, GatewayConfig,
    HeadSamplingConfig, LatencyThreshold, OtlpExporterConfig, PoolFaultsConfig, PoolObjectsConfig,
    ProbeConfig, SamplingMode,
};
use wbpf_demo::{PoolFaultRates, WorkloadOptions};
use wbpf_gateway::Gateway;
use wbpf_probe::Probe;

/// Options of `wbpf demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long the workload sends requests.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Requests per second offered by the frontend.
    #[arg(long, default_value_t = 200)]
    rate: u32,
    /// Fraction of requests that hit an injected far-memory stall.
    #[arg(long, default_value_t = 0.01)]
    fault_rate: f64,
    /// Length of an injected stall.
    #[arg(long, default_value = "30ms", value_parser = humantime::parse_duration)]
    stall: Duration,
    /// The probe's threshold on the pool access function.
    #[arg(long, default_value = "10ms", value_parser = humantime::parse_duration)]
    threshold: Duration,
    #[command(flatten)]
    pool_faults: PoolFaultRates,
    /// How long an untouched pool object lives before the probe reports it as leaked; keep it
    /// well below --retention so the leaking trace is still buffered.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    leak_age: Duration,
    /// Pool page faults within one request above which the probe reports a fault storm.
    #[arg(long, default_value_t = 32)]
    max_pool_faults: u64,
    /// How long untriggered traces stay buffered.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    retention: Duration,
    /// Seed of the workload's fault injection.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
    /// Run the workload without publishing trace context (and the probe without reading it):
    /// triggers then carry only process, thread and time, and the gateway matches them to
    /// traces (`sampling.correlation`).
    #[arg(long)]
    no_context: bool,
    /// How far outside a span's time range a trigger without context may fall and still
    /// match it (`sampling.correlation.slack`).
    #[arg(long, default_value = "1ms", value_parser = humantime::parse_duration)]
    correlation_slack: Duration,
    /// Keep the RocksDB directory, export file and ground truth here instead of a temp dir.
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Also run head and tail sampling in shadow on the same stream; print a comparison table
    /// and write an SVG chart.
    #[arg(long)]
    compare: bool,
    /// Share of traces head sampling keeps in the comparison, in percent.
    #[arg(long, default_value_t = 1.0)]
    head_percentage: f64,
    /// Threshold of the comparison's tail `latency` policy (a trace's end-to-end duration).
    #[arg(long, default_value = "25ms", value_parser = humantime::parse_duration)]
    tail_latency: Duration,
    /// Where the comparison chart goes; `compare.svg` in the output directory by default, else
    /// `wbpf-compare.svg` here.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// The workload binary; by default `wbpf-workload` next to this executable.
    #[arg(long)]
    workload_bin: Option<PathBuf>,
    /// Also export released traces over OTLP/gRPC to this endpoint (Jaeger, a Collector), for
    /// example `http://127.0.0.1:4317`; the demo ends once they are delivered.
    #[arg(long, value_name = "URL")]
    otlp_export: Option<String>,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let temp = tempfile::Builder::new().prefix("wbpf-demo-").tempdir()?;
    let dir = match &args.output_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            dir.clone()
        }
        None => temp.path().to_owned(),
    };
    let workload_bin = match &args.workload_bin {
        Some(bin) => bin.clone(),
        None => std::env::current_exe()?.with_file_name("wbpf-workload"),
    };
    anyhow::ensure!(
        workload_bin.exists(),
        "workload binary {} not found; build it with `cargo build --release -p wbpf-demo`",
        workload_bin.display()
    );
    let workload_copy = private_binary::PrivateBinary::new(&workload_bin, &dir)?;
    let workload_bin = workload_copy.path().to_owned();
    let export_path = dir.join("exported.jsonl");
    let _ = std::fs::remove_file(&export_path);

    let gateway = Gateway::start(&gateway_config(&args, &dir, &export_path)?)
        .await
        .context("starting the gateway")?;
    let comparison = gateway.compare_reader();
    let pool_path = PathBuf::from(format!("/dev/shm/wbpf-pool-{}", std::process::id()));
    let probe = Probe::start(&probe_config(&args, &workload_bin, &pool_path, &gateway))
        .await
        .context("starting the probe (the demo needs root and eBPF)")?;

    let options = WorkloadOptions {
        workload_bin,
        pool_path,
        otlp_http_endpoint: format!("http://{}", gateway.http_addr()),
        rate: args.rate,
        duration: args.duration,
        fault_rate: args.fault_rate,
        stall: args.stall,
        pool_faults: args.pool_faults,
        ground_truth: dir.join("ground-truth.jsonl"),
        stats: dir.join("workload-stats.json"),
        base_port: wbpf_demo::free_triple()?,
        log_filter: std::env::var("RUST_LOG").ok().or(Some("warn".to_owned())),
        seed: args.seed,
        publish_context: !args.no_context,
        tracing: true,
    };
    let started = Instant::now();
    let (workload_stats, truth) = tokio::task::spawn_blocking(move || {
        let mut workload = wbpf_demo::spawn(&options)?;
        let stats = workload.wait_frontend()?;
        workload.stop()?;
        let _ = std::fs::remove_file(&options.pool_path);
        let truth = wbpf_demo::read_ground_truth(&options.ground_truth)?;
        Ok::<_, anyhow::Error>((stats, truth))
    })
    .await??;
    let elapsed = started.elapsed();

    // Triggers of the last requests are still in the probe's ring buffer or export batch; a
    // leak is only reported once it is old enough and the next leak scan has seen it.
    let mut settle = Duration::from_millis(500);
    if args.pool_faults.leak > 0.0 {
        settle += args.leak_age + leak_scan_interval(args.leak_age);
    }
    tokio::time::sleep(settle).await;
    let probe_stats = probe.shutdown().await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let gateway_stats = gateway.shutdown().await?;
    info!(?probe_stats, "probe stopped");

    let exported = score::read_export(&export_path)?;
    let mut summary = report::Summary::new(
        &workload_stats,
        &truth,
        &exported,
        &gateway_stats,
        &probe_stats,
        elapsed,
    );
    summary.compare = comparison.map(|reader| reader.snapshot());
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        summary.print();
    }
    if let Some(snapshot) = &summary.compare {
        let svg = match (&args.svg, &args.output_dir) {
            (Some(svg), _) => svg.clone(),
            (None, Some(dir)) => dir.join("compare.svg"),
            (None, None) => PathBuf::from("wbpf-compare.svg"),
        };
        if args.json {
            crate::compare::write_svg(snapshot, &svg)?;
        } else {
            println!();
            crate::compare::show(snapshot, &svg, false)?;
        }
    }
    if args.output_dir.is_some() && !args.json {
        println!("\nfiles kept in {}", dir.display());
    }
    Ok(())
}

fn gateway_config(
    args: &DemoArgs,
    dir: &std::path::Path,
    export: &std::path::Path,
) -> anyhow::Result<GatewayConfig> {
    let mut config = GatewayConfig::default();
    config.receivers.grpc = "127.0.0.1:0".parse().expect("a literal socket address");
    config.receivers.http = "127.0.0.1:0".parse().expect("a literal socket address");
    config.storage.path = dir.join("rocksdb");
    config.storage.retention = args.retention;
    config.sampling.correlation.slack = args.correlation_slack;
    config.exporters.file = Some(FileExporterConfig {
        path: export.to_owned(),
    });
    config.exporters.otlp = args
        .otlp_export
        .as_ref()
        .map(|endpoint| OtlpExporterConfig {
            endpoint: endpoint.clone(),
            timeout: Duration::from_secs(10),
        });
    if args.compare {
        let sampling = &mut config.sampling;
        sampling.compare = vec![
            SamplingMode::Head,
            SamplingMode::Tail,
            SamplingMode::Triggered,
        ];
        sampling.head = Some(HeadSamplingConfig {
            percentage: args.head_percentage,
        });
        let tail = format!(
            "tail_sampling:\n  decision_wait: 2s\n  policies:\n    - name: slow\n      \
             type: latency\n      latency:\n        threshold_ms: {}\n",
            args.tail_latency.as_millis()
        );
        let tail = wbpf_config::parse_tail_sampling_block(&tail, "demo tail policy")
            .context("building the comparison's tail policy")?;
        sampling.tail_sampling = Some(tail);
        sampling.edge_cases.ground_truth = Some(dir.join("ground-truth.jsonl"));
    }
    Ok(config)
}

fn probe_config(
    args: &DemoArgs,
    workload_bin: &std::path::Path,
    pool_path: &std::path::Path,
    gateway: &Gateway,
) -> ProbeConfig {
    ProbeConfig {
        gateway: format!("http://{}", gateway.grpc_addr()).into(),
        context: (!args.no_context).then(|| ContextConfig {
            binary: workload_bin.to_owned(),
            symbol: "wbpf_trace_context".to_owned(),
        }),
        detectors: vec![
            DetectorConfig::FunctionLatency(FunctionLatencyConfig {
                name: Some("pool_access".to_owned()),
                binary: workload_bin.to_owned(),
                symbol: "wbpf_pool_access".to_owned(),
                threshold: LatencyThreshold::Fixed(args.threshold),
                pid: None,
            }),
            DetectorConfig::PoolObjects(PoolObjectsConfig {
                name: None,
                binary: workload_bin.to_owned(),
                alloc_symbol: "wbpf_pool_alloc".to_owned(),
                release_symbol: "wbpf_pool_release".to_owned(),
                access_symbol: "wbpf_pool_access".to_owned(),
                leak_age: Some(args.leak_age),
                leak_idle: false,
            }),
            DetectorConfig::PoolFaults(PoolFaultsConfig {
                name: None,
                paths: vec![pool_path.display().to_string()],
                max_faults: Some(args.max_pool_faults),
                burst: None,
                // The frontend starts its load as soon as it maps the pool: find it quickly.
                rescan: Duration::from_millis(100),
            }),
        ],
        admin: None,
        strict_privileges: false,
    }
}

/// How often the probe scans for leaks of age `leak_age` (a quarter of it, 100 ms to 5 s).
fn leak_scan_interval(leak_age: Duration) -> Duration {
    (leak_age / 4).clamp(Duration::from_millis(100), Duration::from_secs(5))
}
