//! The JSON-lines file exporter: one OTLP/JSON `ExportTraceServiceRequest` per line.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tracing::error;
use wbpf_config::FileExporterConfig;

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

    /// Appends one line; returns whether it was written.
    pub async fn export(&mut self, request: &ExportTraceServiceRequest) -> bool {
        let line = match serde_json::to_vec(request) {
            Ok(mut line) => {
                line.push(b'\n');
                line
            }
            Err(err) => {
                error!(error = %err, "encoding spans as OTLP/JSON failed; batch dropped");
                return false;
            }
        };
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
        match result {
            Ok(Ok(())) => true,
            Ok(Err(err)) => {
                error!(path = %self.path, error = %err, "writing the export file failed");
                false
            }
            Err(err) => {
                error!(path = %self.path, error = %err, "export file writer task failed");
                false
            }
        }
    }

    pub async fn flush(&mut self) {
        let writer = Arc::clone(&self.writer);
        let _ = tokio::task::spawn_blocking(move || {
            if let Ok(mut writer) = writer.lock() {
                let _ = writer.flush();
            }
        })
        .await;
    }
}
