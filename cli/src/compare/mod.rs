//! `wbpf compare`: the figures of a running gateway's `sampling.compare`, as a table in the
//! terminal and an SVG chart.

mod chart;
mod table;

pub use chart::write_svg;

use std::path::{Path, PathBuf};

use anyhow::Context;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use wbpf_gateway::CompareSnapshot;

/// Options of `wbpf compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The gateway's admin address (`admin.listen`).
    #[arg(long, default_value = "127.0.0.1:9464")]
    admin: String,
    /// The admin port's bearer token (`admin.auth.bearer_token`), if it asks for one.
    #[arg(long, env = "WBPF_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Where to write the SVG chart.
    #[arg(long, default_value = "wbpf-compare.svg")]
    svg: PathBuf,
    /// Print the figures as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: CompareArgs) -> anyhow::Result<()> {
    let snapshot = fetch(&args.admin, args.token.as_deref()).await?;
    show(&snapshot, &args.svg, args.json)
}

/// Prints the table (or JSON) and writes the chart.
pub fn show(snapshot: &CompareSnapshot, svg: &Path, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(snapshot)?);
    } else {
        print!("{}", table::render(snapshot));
    }
    chart::write_svg(snapshot, svg)?;
    if !json {
        println!("chart written to {}", svg.display());
    }
    Ok(())
}

/// `GET /v1/compare` on the admin port.
async fn fetch(admin: &str, token: Option<&str>) -> anyhow::Result<CompareSnapshot> {
    let stream = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting to the gateway's admin port {admin}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP handshake with the admin port")?;
    tokio::spawn(connection);
    let mut request = hyper::Request::get("/v1/compare").header(hyper::header::HOST, admin);
    if let Some(token) = token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request.body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(
        status.is_success(),
        "{admin}/v1/compare answered {status}: {}",
        String::from_utf8_lossy(&body)
    );
    serde_json::from_slice(&body).context("reading the comparison")
}
