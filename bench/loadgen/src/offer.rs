//! Offering load: export requests at a fixed rate, with a bounded number in flight.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::{Mutex, Semaphore};
use tonic::transport::Channel;

use crate::shape::{trace, Shape};

/// Options of `offer`.
#[derive(clap::Args, Debug)]
pub struct OfferArgs {
    /// OTLP/gRPC endpoint.
    #[arg(long, default_value = "http://127.0.0.1:4317")]
    endpoint: String,
    /// Traces offered per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// How long to offer, in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Traces per export request.
    #[arg(long, default_value_t = 10)]
    traces_per_request: u32,
    /// Export calls in flight at most; a request that finds none free is skipped and counted.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    #[arg(long, default_value_t = 20)]
    spans_per_trace: usize,
    /// Bytes of string attributes per span.
    #[arg(long, default_value_t = 200)]
    attribute_bytes: usize,
    #[arg(long, default_value_t = 0.05)]
    error_share: f64,
    #[arg(long, default_value_t = 0.02)]
    slow_share: f64,
    #[arg(long, default_value_t = 0.01)]
    trigger_share: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

/// What `offer` prints.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub rate: u32,
    pub seconds: f64,
    pub requests_sent: u64,
    pub requests_skipped: u64,
    pub traces_accepted: u64,
    pub spans_accepted: u64,
    pub bytes_accepted: u64,
    /// Failed calls by gRPC status code name.
    pub errors: BTreeMap<String, u64>,
    pub spans_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Default)]
struct Tally {
    latencies_us: Vec<u64>,
    traces: u64,
    spans: u64,
    bytes: u64,
    errors: BTreeMap<String, u64>,
}

pub async fn run(args: OfferArgs) -> anyhow::Result<()> {
    let channel = Channel::from_shared(args.endpoint.clone())?
        .connect()
        .await
        .with_context(|| format!("connecting to {}", args.endpoint))?;
    let client = TraceServiceClient::new(channel);
    let shape = Shape {
        spans_per_trace: args.spans_per_trace.max(1),
        attribute_bytes: args.attribute_bytes,
        error_share: args.error_share,
        slow_share: args.slow_share,
        trigger_share: args.trigger_share,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    let period = Duration::from_secs_f64(
        f64::from(args.traces_per_request.max(1)) / f64::from(args.rate.max(1)),
    );
    let slots = Arc::new(Semaphore::new(args.concurrency.max(1)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut report = Report {
        rate: args.rate,
        ..Report::default()
    };

    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.seconds);
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut calls = Vec::new();
    while Instant::now() < deadline {
        ticker.tick().await;
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            report.requests_skipped += 1;
            continue;
        };
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let resource_spans = (0..args.traces_per_request)
            .flat_map(|_| trace(&shape, &mut rng, now_ns))
            .collect();
        let request = ExportTraceServiceRequest { resource_spans };
        let spans = u64::from(args.traces_per_request) * shape.spans_per_trace as u64;
        let bytes = prost::Message::encoded_len(&request) as u64;
        let traces = u64::from(args.traces_per_request);
        let mut client = client.clone();
        let tally = Arc::clone(&tally);
        report.requests_sent += 1;
        calls.push(tokio::spawn(async move {
            let call = Instant::now();
            let result = client.export(request).await;
            let elapsed = u64::try_from(call.elapsed().as_micros()).unwrap_or(u64::MAX);
            drop(permit);
            let mut tally = tally.lock().await;
            tally.latencies_us.push(elapsed);
            match result {
                Ok(_) => {
                    tally.traces += traces;
                    tally.spans += spans;
                    tally.bytes += bytes;
                }
                Err(status) => {
                    *tally
                        .errors
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                }
            }
        }));
    }
    for call in calls {
        call.await?;
    }
    let seconds = started.elapsed().as_secs_f64();

    let mut tally = tally.lock().await;
    tally.latencies_us.sort_unstable();
    let quantile = |q: f64| {
        let n = tally.latencies_us.len();
        if n == 0 {
            return 0.0;
        }
        let index = ((n as f64 * q).ceil() as usize).clamp(1, n) - 1;
        tally.latencies_us[index] as f64 / 1_000.0
    };
    report.seconds = seconds;
    report.p50_ms = quantile(0.50);
    report.p99_ms = quantile(0.99);
    report.max_ms = quantile(1.0);
    report.traces_accepted = tally.traces;
    report.spans_accepted = tally.spans;
    report.bytes_accepted = tally.bytes;
    report.errors = std::mem::take(&mut tally.errors);
    report.spans_per_s = tally.spans as f64 / seconds.max(1e-9);
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
