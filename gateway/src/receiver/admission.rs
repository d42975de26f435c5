//! Admission of requests by the bytes they hold while waiting to be committed.
//!
//! Every accepted request holds its size, in KiB, from a shared budget until its spans are
//! committed. When the budget is spent, new requests are refused at once as overload (HTTP 503
//! with `Retry-After`, gRPC `UNAVAILABLE` with `RetryInfo`), which OTLP exporters retry with
//! backoff: a gateway that cannot keep up pushes back instead of queueing without bound.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

use crate::GatewayError;

const UNIT: usize = 1024;

/// The shared budget of in-flight request bytes.
#[derive(Clone)]
pub struct Admission {
    permits: Arc<Semaphore>,
    units: u32,
    limit_bytes: usize,
}

/// A request's share of the budget, given back when dropped.
pub struct InFlight {
    _permit: OwnedSemaphorePermit,
}

impl Admission {
    pub fn new(limit_bytes: usize) -> Self {
        let units = u32::try_from(limit_bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        Self {
            permits: Arc::new(Semaphore::new(units as usize)),
            units,
            limit_bytes,
        }
    }

    /// Takes `bytes` from the budget (a request larger than the whole budget takes all of it),
    /// or refuses the request as overload.
    pub fn admit(&self, bytes: usize) -> Result<InFlight, GatewayError> {
        let wanted = u32::try_from(bytes.div_ceil(UNIT).max(1)).unwrap_or(u32::MAX);
        match Arc::clone(&self.permits).try_acquire_many_owned(wanted.min(self.units)) {
            Ok(permit) => Ok(InFlight { _permit: permit }),
            Err(TryAcquireError::NoPermits) => Err(GatewayError::Overloaded {
                in_flight_limit: self.limit_bytes,
            }),
            Err(TryAcquireError::Closed) => Err(GatewayError::ShuttingDown),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_refused_while_the_budget_is_spent_and_admitted_once_it_is_back() {
        let admission = Admission::new(10 * 1024);
        let first = admission.admit(6 * 1024).expect("fits");
        assert!(matches!(
            admission.admit(6 * 1024),
            Err(GatewayError::Overloaded { .. })
        ));
        drop(first);
        assert!(admission.admit(6 * 1024).is_ok());
    }

    #[test]
    fn a_request_larger_than_the_budget_takes_all_of_it() {
        let admission = Admission::new(4 * 1024);
        let whole = admission.admit(1024 * 1024).expect("admitted alone");
        assert!(admission.admit(1).is_err());
        drop(whole);
        assert!(admission.admit(1).is_ok());
    }
}
