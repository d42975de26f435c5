//! The demo's inter-service protocol: one request line, one response line, over TCP.
//!
//! ```text
//! REQ <key> <fault 0|1> <traceparent or ->\n
//! OK <bytes>\n    or    ERR <message>\n
//! ```
//!
//! `key` selects the objects a request touches, `fault` tells downstream services to inject the
//! far-memory stall, and `traceparent` is the W3C trace context of the calling span.
//! Connections are kept open and carry one request at a time.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::error::DemoError;

/// A line longer than this is refused (a request line is well under 100 bytes).
const MAX_LINE: usize = 1024;
/// How long a caller waits for a downstream answer; covers injected stalls with room to spare.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub key: u32,
    pub fault: bool,
    pub traceparent: Option<String>,
}

impl Request {
    pub fn to_line(&self) -> String {
        let fault = u8::from(self.fault);
        let parent = self.traceparent.as_deref().unwrap_or("-");
        format!("REQ {} {fault} {parent}\n", self.key)
    }

    pub fn parse(line: &str) -> Result<Self, String> {
        let mut fields = line.split_ascii_whitespace();
        if fields.next() != Some("REQ") {
            return Err(format!("not a request line: {line:?}"));
        }
        let key = fields
            .next()
            .and_then(|key| key.parse().ok())
            .ok_or_else(|| format!("missing or bad key in {line:?}"))?;
        let fault = match fields.next() {
            Some("0") => false,
            Some("1") => true,
            _ => return Err(format!("missing or bad fault flag in {line:?}")),
        };
        let traceparent = match fields.next() {
            Some("-") => None,
            Some(value) => Some(value.to_owned()),
            None => return Err(format!("missing traceparent in {line:?}")),
        };
        Ok(Self {
            key,
            fault,
            traceparent,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Served; `bytes` is how many pool bytes the callee and its own callees touched.
    Ok { bytes: u64 },
    /// Failed; the message is for logs.
    Err { message: String },
}

impl Response {
    pub fn to_line(&self) -> String {
        match self {
            Self::Ok { bytes } => format!("OK {bytes}\n"),
            Self::Err { message } => format!("ERR {}\n", message.replace('\n', " ")),
        }
    }

    pub fn parse(line: &str) -> Result<Self, String> {
        let line = line.trim_end();
        if let Some(bytes) = line.strip_prefix("OK ") {
            let bytes = bytes
                .parse()
                .map_err(|_| format!("bad byte count in {line:?}"))?;
            return Ok(Self::Ok { bytes });
        }
        if let Some(message) = line.strip_prefix("ERR ") {
            return Ok(Self::Err {
                message: message.to_owned(),
            });
        }
        Err(format!("not a response line: {line:?}"))
    }
}

/// Reads newline-terminated lines from a stream whose reads may time out, without losing a
/// partly received line when they do.
#[derive(Debug)]
pub struct LineReader {
    reader: BufReader<TcpStream>,
    pending: Vec<u8>,
}

impl LineReader {
    pub fn new(stream: TcpStream) -> Self {
        Self {
            reader: BufReader::new(stream),
            pending: Vec::new(),
        }
    }

    /// The next full line; `Ok(None)` at end of stream. A read timeout surfaces as an error of
    /// kind `WouldBlock` or `TimedOut`, and the partial line is kept for the next call.
    pub fn read_line(&mut self) -> io::Result<Option<String>> {
        loop {
            let budget = (MAX_LINE + 1).saturating_sub(self.pending.len()) as u64;
            let read = (&mut self.reader)
                .take(budget)
                .read_until(b'\n', &mut self.pending)?;
            if self.pending.ends_with(b"\n") {
                let line = String::from_utf8_lossy(&self.pending).trim_end().to_owned();
                self.pending.clear();
                return Ok(Some(line));
            }
            if self.pending.len() > MAX_LINE {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
            }
            if read == 0 {
                return Ok(None);
            }
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }
}

/// A kept-open connection to the next service, reopened when it breaks.
#[derive(Debug)]
pub struct Downstream {
    addr: SocketAddr,
    connection: Option<LineReader>,
}

impl Downstream {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            connection: None,
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `request` and waits for the answer. A kept-open connection that turns out to be
    /// broken is replaced once.
    pub fn call(&mut self, request: &Request) -> Result<Response, DemoError> {
        let line = request.to_line();
        let reused = self.connection.is_some();
        match self.exchange(&line) {
            Err(DemoError::Net { .. }) if reused => {
                self.connection = None;
                self.exchange(&line)
            }
            result => result,
        }
    }

    fn exchange(&mut self, line: &str) -> Result<Response, DemoError> {
        let result = self.try_exchange(line);
        if result.is_err() {
            self.connection = None;
        }
        result
    }

    fn try_exchange(&mut self, line: &str) -> Result<Response, DemoError> {
        let addr = self.addr;
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(connect(addr)?),
        };
        connection
            .stream()
            .write_all(line.as_bytes())
            .map_err(DemoError::net("send to", addr))?;
        let answer = connection
            .read_line()
            .map_err(DemoError::net("read from", addr))?
            .ok_or_else(|| DemoError::Net {
                operation: "read from",
                addr,
                source: io::ErrorKind::UnexpectedEof.into(),
            })?;
        Response::parse(&answer).map_err(|reason| DemoError::Protocol {
            peer: addr.to_string(),
            reason,
        })
    }
}

fn connect(addr: SocketAddr) -> Result<LineReader, DemoError> {
    let stream = TcpStream::connect_timeout(&addr, CALL_TIMEOUT)
        .map_err(DemoError::net("connect to", addr))?;
    stream
        .set_nodelay(true)
        .map_err(DemoError::net("configure", addr))?;
    stream
        .set_read_timeout(Some(CALL_TIMEOUT))
        .map_err(DemoError::net("configure", addr))?;
    Ok(LineReader::new(stream))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_round_trip() {
        let with_parent = Request {
            key: 42,
            fault: true,
            traceparent: Some("00-0102030405060708090a0b0c0d0e0f10-a1a2a3a4a5a6a7a8-01".into()),
        };
        let without = Request {
            key: 0,
            fault: false,
            traceparent: None,
        };
        for request in [with_parent, without] {
            let line = request.to_line();
            assert!(line.ends_with('\n'));
            assert_eq!(Request::parse(line.trim_end()), Ok(request));
        }
        assert!(Request::parse("REQ x 0 -").is_err());
        assert!(Request::parse("REQ 1 2 -").is_err());
        assert!(Request::parse("GET / HTTP/1.1").is_err());
    }

    #[test]
    fn response_lines_round_trip() {
        for response in [
            Response::Ok { bytes: 4096 },
            Response::Err {
                message: "pool is full".into(),
            },
        ] {
            assert_eq!(Response::parse(&response.to_line()), Ok(response));
        }
        assert!(Response::parse("OK lots").is_err());
    }
}
