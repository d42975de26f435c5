//! The JSON-lines file exporter: one OTLP/JSON `ExportTraceServiceRequest` per line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use wbpf_config::FileExporterConfig;

use super::Failure;
use crate::GatewayError;

pub struct FileExporter {
    path: String,
    writer: Arc<Mutex<BufWriter<File>>>,
}

impl FileExporter {
    /// Opens (appending to) the configured file.
    pub fn open(config: &FileExporterConfig) -> Result<Self, GatewayError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&config.path)
            .map_err(|source| GatewayError::ExportFile {
                path: config.path.clone(),
                source,
            })?;
        Ok(Self {
            path: config.path.display().to_string(),
            writer: Arc::new(Mutex::new(BufWriter::new(file))),
        })
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// Appends one line.
    pub async fn export(&mut self, request: &ExportTraceServiceRequest) -> Result<(), Failure> {
        let mut line = serde_json::to_vec(request).map_err(|err| Failure {
            retryable: false,
            reason: format!("encoding spans as OTLP/JSON failed: {err}"),
        })?;
        line.push(b'\n');
        let writer = Arc::clone(&self.writer);
        let result = tokio::task::spawn_blocking(move || {
            let mut writer = writer
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?;
            // One write per line, so a reader never sees a line without its end.
            writer.write_all(&line)?;
            writer.flush()
        })
        .await;
        // A full disk or a failed write may pass; the spans stay queued until it does.
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(Failure {
                retryable: true,
                reason: format!("writing the export file failed: {err}"),
            }),
            Err(err) => Err(Failure {
                retryable: true,
                reason: format!("export file writer task failed: {err}"),
            }),
        }
    }
}
