//! The memory-pool faults the frontend can inject into a request, besides the store's
//! far-memory stall: leaked objects, stale references, double releases and page-fault storms.
//!
//! Each kind has its own rate, drawn per request from one generator seeded apart from the
//! request plan's, so turning these faults on leaves the keys and stalls of a seed unchanged.
//! Injections add no span: finding them is the probe's job.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tracing::debug;

use crate::error::DemoError;
use crate::ground_truth::{DOUBLE_RELEASE, FAULT_STORM, LEAK, STALE_ACCESS};
use crate::pool::Pool;

/// Keeps the pool-fault generator's stream apart from the request plan's for the same seed.
const SEED_SALT: u64 = 0x706f_6f6c_6661_756c;

/// Bytes written to an object before it is released and read through its stale id.
const STALE_PAYLOAD: &[u8] = b"released soon";

/// Per-request probability of each pool fault; all zero by default. Also the command-line
/// options that set them, for every command that runs the workload.
#[derive(Debug, Clone, Copy, Default, PartialEq, clap::Args)]
pub struct PoolFaultRates {
    /// Fraction of requests that leak a pool object (allocated, never touched again).
    #[arg(long = "leak-rate", value_name = "LEAK_RATE", default_value_t = 0.0)]
    pub leak: f64,
    /// Fraction of requests that read a pool object after releasing it.
    #[arg(long = "stale-rate", value_name = "STALE_RATE", default_value_t = 0.0)]
    pub stale_access: f64,
    /// Fraction of requests that release a pool object twice.
    #[arg(
        long = "double-release-rate",
        value_name = "DOUBLE_RELEASE_RATE",
        default_value_t = 0.0
    )]
    pub double_release: f64,
    /// Fraction of requests that fault many pool pages back in.
    #[arg(
        long = "fault-storm-rate",
        value_name = "FAULT_STORM_RATE",
        default_value_t = 0.0
    )]
    pub fault_storm: f64,
}

impl PoolFaultRates {
    fn by_kind(&self) -> [(&'static str, f64); 4] {
        [
            (LEAK, self.leak),
            (STALE_ACCESS, self.stale_access),
            (DOUBLE_RELEASE, self.double_release),
            (FAULT_STORM, self.fault_storm),
        ]
    }

    /// Fails naming the first rate outside 0..=1.
    pub fn validate(&self) -> Result<(), DemoError> {
        match self
            .by_kind()
            .into_iter()
            .find(|(_, rate)| !(0.0..=1.0).contains(rate))
        {
            Some((kind, rate)) => Err(DemoError::Options {
                reason: format!("the {kind} rate {rate} must be between 0 and 1"),
            }),
            None => Ok(()),
        }
    }
}

/// The pool faults one request gets; the default is none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct PoolFaults {
    leak: bool,
    stale_access: bool,
    double_release: bool,
    /// The first slot of the storm's pages, when there is a storm.
    fault_storm: Option<u64>,
}

/// Draws each request's pool faults, in request order.
#[derive(Debug)]
pub(crate) struct PoolFaultPlan {
    rates: PoolFaultRates,
    rng: StdRng,
}

impl PoolFaultPlan {
    pub(crate) fn new(rates: PoolFaultRates, seed: u64) -> Self {
        Self {
            rates,
            rng: StdRng::seed_from_u64(seed ^ SEED_SALT),
        }
    }

    pub(crate) fn next(&mut self) -> PoolFaults {
        let mut draw = |rate: f64| rate > 0.0 && self.rng.random_bool(rate);
        let (leak, stale_access, double_release, storm) = (
            draw(self.rates.leak),
            draw(self.rates.stale_access),
            draw(self.rates.double_release),
            draw(self.rates.fault_storm),
        );
        PoolFaults {
            leak,
            stale_access,
            double_release,
            fault_storm: storm.then(|| self.rng.random()),
        }
    }
}

/// Injects `faults` into the pool from the calling thread (which serves the request); returns
/// the kinds that were injected. A storm touches `storm_pages` pages.
pub(crate) fn inject(pool: &Pool, faults: PoolFaults, storm_pages: u64) -> Vec<&'static str> {
    let mut injected = Vec::new();
    let mut attempt = |kind: &'static str, result: Result<(), DemoError>| match result {
        Ok(()) => injected.push(kind),
        Err(error) => debug!(kind, %error, "pool fault not injected"),
    };
    if faults.leak {
        attempt(LEAK, pool.allocate().map(drop));
    }
    if faults.stale_access {
        attempt(STALE_ACCESS, stale_access(pool));
    }
    if faults.double_release {
        attempt(DOUBLE_RELEASE, double_release(pool));
    }
    if let Some(first_slot) = faults.fault_storm {
        attempt(FAULT_STORM, pool.refault(first_slot, storm_pages).map(drop));
    }
    injected
}

/// Writes an object, releases it, then reads it through the id that is now stale.
fn stale_access(pool: &Pool) -> Result<(), DemoError> {
    let id = pool.allocate()?;
    pool.write(id, STALE_PAYLOAD, std::time::Duration::ZERO)?;
    pool.release(id)?;
    match pool.read(id, std::time::Duration::ZERO) {
        Err(DemoError::StaleObject { .. }) => Ok(()),
        Err(error) => Err(error),
        // Cannot happen (generations only grow); the access was made all the same.
        Ok(_) => Ok(()),
    }
}

/// Releases an object twice; the second release is refused by the pool.
fn double_release(pool: &Pool) -> Result<(), DemoError> {
    let id = pool.allocate()?;
    pool.release(id)?;
    match pool.release(id) {
        Err(DemoError::StaleObject { .. }) | Ok(()) => Ok(()),
        Err(error) => Err(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(rates: PoolFaultRates) -> Vec<PoolFaults> {
        let mut plan = PoolFaultPlan::new(rates, 7);
        (0..20_000).map(|_| plan.next()).collect()
    }

    #[test]
    fn zero_rates_inject_nothing_and_each_rate_is_honoured() {
        assert!(plan(PoolFaultRates::default())
            .iter()
            .all(|faults| *faults == PoolFaults::default()));

        let rates = PoolFaultRates {
            leak: 0.01,
            stale_access: 0.02,
            double_release: 0.0,
            fault_storm: 0.05,
        };
        let planned = plan(rates);
        let leaks = planned.iter().filter(|f| f.leak).count();
        let stale = planned.iter().filter(|f| f.stale_access).count();
        let storms = planned.iter().filter(|f| f.fault_storm.is_some()).count();
        assert!((150..=250).contains(&leaks), "{leaks}");
        assert!((320..=480).contains(&stale), "{stale}");
        assert!((850..=1150).contains(&storms), "{storms}");
        assert!(planned.iter().all(|f| !f.double_release));
        assert_eq!(planned, plan(rates), "a seed fixes the plan");
    }

    #[test]
    fn rates_outside_zero_to_one_are_refused() {
        let bad = PoolFaultRates {
            stale_access: 1.5,
            ..PoolFaultRates::default()
        };
        let message = bad.validate().expect_err("out of range").to_string();
        assert!(message.contains("stale_access"), "{message}");
        assert!(PoolFaultRates::default().validate().is_ok());
    }

    #[test]
    fn each_fault_is_injected_into_a_real_pool() {
        let dir = tempfile::tempdir().expect("temp dir");
        let pool = Pool::open_with_size(&dir.path().join("pool"), 1 << 20).expect("open");
        let all = PoolFaults {
            leak: true,
            stale_access: true,
            double_release: true,
            fault_storm: Some(3),
        };

        let injected = inject(&pool, all, 32);
        assert_eq!(injected, [LEAK, STALE_ACCESS, DOUBLE_RELEASE, FAULT_STORM]);
        assert_eq!(
            pool.allocated(),
            1,
            "only the leaked object stays allocated"
        );
        assert!(inject(&pool, PoolFaults::default(), 32).is_empty());
    }
}
