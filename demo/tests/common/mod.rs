//! A minimal OTLP/HTTP traces sink for tests: answers 200 to every `POST /v1/traces` and keeps
//! a summary of each span it decodes from the protobuf body.

pub mod protobuf;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SpanSummary {
    pub service: String,
    pub trace_id: String,
    pub name: String,
    pub duration: Duration,
}

#[derive(Debug, Default)]
struct Received {
    posts: u64,
    spans: Vec<SpanSummary>,
}

pub struct OtlpSink {
    addr: SocketAddr,
    received: Arc<Mutex<Received>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl OtlpSink {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind sink");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("sink address");
        let received = Arc::new(Mutex::new(Received::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || accept(listener, received, stop))
        };
        Self {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn posts(&self) -> u64 {
        self.received.lock().expect("sink lock").posts
    }

    pub fn spans(&self) -> Vec<SpanSummary> {
        self.received.lock().expect("sink lock").spans.clone()
    }

    /// Spans grouped by trace id.
    pub fn traces(&self) -> HashMap<String, Vec<SpanSummary>> {
        let mut traces: HashMap<String, Vec<SpanSummary>> = HashMap::new();
        for span in self.spans() {
            traces.entry(span.trace_id.clone()).or_default().push(span);
        }
        traces
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn accept(listener: TcpListener, received: Arc<Mutex<Received>>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let received = Arc::clone(&received);
                std::thread::spawn(move || serve(stream, &received));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

/// Serves HTTP/1.1 requests on one kept-alive connection.
fn serve(stream: TcpStream, received: &Mutex<Received>) {
    stream.set_nonblocking(false).expect("blocking");
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().expect("content length");
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }

        let status = if request_line.starts_with("POST /v1/traces ") {
            let spans = protobuf::spans_of_export_request(&body);
            let mut received = received.lock().expect("sink lock");
            received.posts += 1;
            received.spans.extend(spans);
            "200 OK"
        } else {
            "404 Not Found"
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
