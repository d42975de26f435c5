//! `status_code`: keeps a trace if any span's status is one of the listed codes.

use opentelemetry_proto::tonic::trace::v1::status::StatusCode as Code;
use wbpf_config::StatusCodeConfig;

use super::attributes::any_span;
use super::{Decision, Policy};
use crate::TraceData;

#[derive(Debug)]
pub struct StatusCode {
    codes: Vec<Code>,
}

impl StatusCode {
    /// Fails with a message on an empty list or a code other than `OK`, `ERROR`, `UNSET`.
    pub fn new(config: &StatusCodeConfig) -> Result<Self, String> {
        if config.status_codes.is_empty() {
            return Err("expected at least one status code".to_owned());
        }
        let codes = config
            .status_codes
            .iter()
            .map(|code| match code.as_str() {
                "OK" => Ok(Code::Ok),
                "ERROR" => Ok(Code::Error),
                "UNSET" => Ok(Code::Unset),
                other => Err(format!("unknown status code {other:?}")),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { codes })
    }
}

impl Policy for StatusCode {
    fn evaluate(&self, trace: &TraceData, _now_ms: u64) -> Decision {
        any_span(trace, |span| {
            // A span without a status, or with an unknown code, reads as UNSET as in pdata.
            let code = span.status_code;
            let code = Code::try_from(code).unwrap_or(Code::Unset);
            self.codes.contains(&code)
        })
    }
}
