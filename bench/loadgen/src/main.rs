//! `wbpf-loadgen`: the benchmark's load generator and downstream sink.
//!
//! `offer` sends OTLP/gRPC export requests of realistic traces at a fixed rate and reports
//! what was accepted and how long each export call took; `sink` is an OTLP/gRPC receiver that
//! counts the spans and bytes it is sent, standing in for Jaeger downstream.

mod offer;
mod shape;
mod sink;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wbpf-loadgen", about = "OTLP load generator and counting sink")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Offer traces at a fixed rate; print a JSON report.
    Offer(offer::OfferArgs),
    /// Receive OTLP/gRPC and count; print a JSON report on SIGTERM or Ctrl-C.
    Sink(sink::SinkArgs),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Offer(args) => offer::run(args).await,
        Command::Sink(args) => sink::run(args).await,
    }
}
