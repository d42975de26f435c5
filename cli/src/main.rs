//! `wbpf`: the gateway, the node probe, the demo and config validation in one binary.

mod compare;
mod demo;
mod doctor;
mod gateway;
mod probe;
mod signals;
mod validate;
mod workload;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The gateway allocates and frees a buffer per span group, request and export; glibc's
/// allocator took a quarter of its CPU under load, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "wbpf",
    version,
    about = "Tail-sampling gateway fed by eBPF edge triggers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Receive OTLP, buffer every span per trace, release triggered traces.
    Gateway {
        /// YAML config (receivers, storage, sampling, admin, exporters); defaults without it.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the eBPF detectors and send trigger spans to the gateway (needs root).
    Probe {
        /// YAML config with a `probe:` section (gateway endpoint, context, detectors).
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Check, per detector, whether it can run on this machine and why not (root gives the
    /// full answer: the kernel checks load small programs).
    Doctor {
        /// A config with a `probe:` section; without it every detector type is checked.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run gateway, probe and the memory-pool workload together and score the result.
    Demo(demo::DemoArgs),
    /// Show what each mode of a running gateway's `sampling.compare` keeps: table and SVG.
    Compare(compare::CompareArgs),
    /// Run the demo's three workload services until stopped.
    Workload(workload::WorkloadArgs),
    /// Check a config file; prints every problem with file, line and key.
    Validate {
        /// A wBPF config, a `tail_sampling:` block, or a whole OpenTelemetry Collector config.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(cli.command, Command::Demo(_)));

    let result = match cli.command {
        Command::Gateway { config } => runtime().and_then(|rt| rt.block_on(gateway::run(config))),
        Command::Probe { config } => runtime().and_then(|rt| rt.block_on(probe::run(config))),
        Command::Doctor { config } => doctor::run(config.as_deref()),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(demo::run(args))),
        Command::Compare(args) => runtime().and_then(|rt| rt.block_on(compare::run(args))),
        Command::Workload(args) => runtime().and_then(|rt| rt.block_on(workload::run(args))),
        Command::Validate { file } => validate::run(&file),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("wbpf: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// Logs go to stderr; `RUST_LOG` overrides the default level (warn for the demo, info else).
fn init_tracing(quiet: bool) {
    let default = if quiet { "warn" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a terminal shows them, not in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
