//! Encoding counters and gauges read at scrape time, for the gateway's and the probe's
//! Prometheus collectors.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// A metric's name, help text and current value.
pub type Reading<'a> = (&'a str, &'a str, u64);

/// Encodes each reading as a counter.
pub fn encode_counters(
    encoder: &mut DescriptorEncoder,
    readings: &[Reading],
) -> Result<(), std::fmt::Error> {
    for &(name, help, value) in readings {
        let counter = ConstCounter::new(value);
        let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
        counter.encode(metric)?;
    }
    Ok(())
}

/// Encodes each reading as a gauge (values past `i64::MAX` read as `i64::MAX`).
pub fn encode_gauges(
    encoder: &mut DescriptorEncoder,
    readings: &[Reading],
) -> Result<(), std::fmt::Error> {
    for &(name, help, value) in readings {
        let gauge = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
        gauge.encode(metric)?;
    }
    Ok(())
}
