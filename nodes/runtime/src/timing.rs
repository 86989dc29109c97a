//! Latency bookkeeping: HDR histograms in nanoseconds, allocated once per input, so recording
//! on the hot path is a few array increments.

use hdrhistogram::Histogram;

/// Values from 100 ns to 60 s at 3 significant digits; larger values saturate, negative ones
/// (clocks of two hosts disagreeing) count as 0.
#[derive(Clone)]
pub struct LatencyHistogram {
    histogram: Histogram<u64>,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.summary())
    }
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self { histogram: Histogram::new_with_bounds(100, 60_000_000_000, 3).expect("valid histogram bounds") }
    }

    pub fn record_ns(&mut self, value_ns: i64) {
        self.histogram.saturating_record(value_ns.max(0) as u64);
    }

    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The value at `quantile` (0..=1) in nanoseconds; 0 when empty.
    pub fn quantile_ns(&self, quantile: f64) -> u64 {
        self.histogram.value_at_quantile(quantile)
    }

    pub fn max_ns(&self) -> u64 {
        self.histogram.max()
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.histogram.add(&other.histogram);
    }

    pub fn reset(&mut self) {
        self.histogram.reset();
    }

    /// `n=… p50=…µs p99=…µs p99.9=…µs max=…µs`
    pub fn summary(&self) -> String {
        let us = |ns: u64| ns as f64 / 1e3;
        format!(
            "n={} p50={:.1}µs p99={:.1}µs p99.9={:.1}µs max={:.1}µs",
            self.count(),
            us(self.quantile_ns(0.5)),
            us(self.quantile_ns(0.99)),
            us(self.quantile_ns(0.999)),
            us(self.max_ns())
        )
    }
}

/// What one input has seen.
#[derive(Debug, Clone, Default)]
pub struct InputStats {
    pub received: u64,
    pub decode_errors: u64,
    /// Dropped by the queue's overflow policy.
    pub dropped: u64,
    /// Missing sequence numbers from a publisher, counted on arrival: lost before reaching
    /// this node (e.g. dropped by a congested sender).
    pub lost_in_transport: u64,
    pub through_shared_memory: u64,
    /// Now minus `header.stamp`: age since capture.
    pub age: LatencyHistogram,
    /// Arrival minus the publisher's send time: the transport hop.
    pub transit: LatencyHistogram,
    /// Processing-thread pick-up minus arrival: time spent queued.
    pub queue_wait: LatencyHistogram,
}

impl InputStats {
    pub(crate) fn record(
        &mut self,
        age_ns: Option<i64>,
        transit_ns: Option<i64>,
        queue_wait_ns: i64,
        shared_memory: bool,
    ) {
        self.received += 1;
        self.through_shared_memory += u64::from(shared_memory);
        if let Some(age) = age_ns {
            self.age.record_ns(age);
        }
        if let Some(transit) = transit_ns {
            self.transit.record_ns(transit);
        }
        self.queue_wait.record_ns(queue_wait_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_and_clamping() {
        let mut histogram = LatencyHistogram::new();
        for value in 1..=1000 {
            histogram.record_ns(value * 1000);
        }
        histogram.record_ns(-5);
        assert_eq!(histogram.count(), 1001);
        let p50 = histogram.quantile_ns(0.5);
        assert!((499_000..=501_000).contains(&p50), "{p50}");
        assert!(histogram.summary().starts_with("n=1001 p50=500"));
    }
}
