//! The daemon's counters and latency histograms, answered to `STATS_REQUEST`.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::protocol::{Counter, Latency};

/// Highest latency the histograms record, in microseconds: one minute, the post window.
/// Anything slower is recorded as this value.
const LATENCY_US_MAX: u64 = 60_000_000;
/// Significant decimal digits the histograms keep: 3 gives 0.1 % resolution.
const LATENCY_DIGITS: u8 = 3;

/// Counters that session tasks bump (atomics: no lock between connections).
#[derive(Debug, Default)]
pub struct SessionCounters {
    pub connections_accepted: AtomicU64,
    pub connections_refused: AtomicU64,
    pub logins_rejected: AtomicU64,
    pub protocol_errors: AtomicU64,
    pub slow_consumers_closed: AtomicU64,
    pub dead_peers_closed: AtomicU64,
    pub overloaded_answers: AtomicU64,
    pub sessions_open: AtomicU64,
}

impl SessionCounters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn values(&self) -> [(&'static str, u64); 8] {
        let read = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("connections_accepted", read(&self.connections_accepted)),
            ("connections_refused", read(&self.connections_refused)),
            ("logins_rejected", read(&self.logins_rejected)),
            ("protocol_errors", read(&self.protocol_errors)),
            ("slow_consumers_closed", read(&self.slow_consumers_closed)),
            ("dead_peers_closed", read(&self.dead_peers_closed)),
            ("overloaded_answers", read(&self.overloaded_answers)),
            ("sessions_open", read(&self.sessions_open)),
        ]
    }
}

/// One named latency histogram.
#[derive(Debug)]
pub struct LatencyHistogram {
    name: &'static str,
    histogram: Histogram<u64>,
}

impl LatencyHistogram {
    pub fn new(name: &'static str) -> Self {
        let histogram = Histogram::new_with_max(LATENCY_US_MAX, LATENCY_DIGITS)
            .unwrap_or_else(|error| unreachable!("constant histogram bounds are valid: {error}"));
        Self { name, histogram }
    }

    pub fn record(&mut self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, LATENCY_US_MAX);
        self.histogram.saturating_record(us);
    }

    pub fn wire(&self) -> Latency<'static> {
        let h = &self.histogram;
        Latency {
            name: Cow::Borrowed(self.name),
            count: h.len(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// What the exchange thread counts.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExchangeCounters {
    pub pings: u64,
    pub pings_offered: u64,
    pub pings_no_sale: u64,
    pub posts: u64,
    pub leads_sold: u64,
    pub leads_unsold: u64,
    pub offers_sent: u64,
    pub offers_skipped_not_connected: u64,
    pub offers_skipped_too_slow: u64,
    pub bids: u64,
    pub deliveries: u64,
    pub deliveries_resent: u64,
    pub admin_changes: u64,
    pub admin_refused: u64,
    pub journal_records: u64,
    /// Snapshots of the daemon's state handed to the journal.
    pub snapshots: u64,
    /// The auctions in memory the last snapshot copied.
    pub snapshot_auctions: u64,
    /// How long the last snapshot held the exchange thread (copying the state).
    pub snapshot_last_us: u64,
}

impl ExchangeCounters {
    fn values(&self) -> [(&'static str, u64); 18] {
        [
            ("pings", self.pings),
            ("pings_offered", self.pings_offered),
            ("pings_no_sale", self.pings_no_sale),
            ("posts", self.posts),
            ("leads_sold", self.leads_sold),
            ("leads_unsold", self.leads_unsold),
            ("offers_sent", self.offers_sent),
            (
                "offers_skipped_not_connected",
                self.offers_skipped_not_connected,
            ),
            ("offers_skipped_too_slow", self.offers_skipped_too_slow),
            ("bids", self.bids),
            ("deliveries", self.deliveries),
            ("deliveries_resent", self.deliveries_resent),
            ("admin_changes", self.admin_changes),
            ("admin_refused", self.admin_refused),
            ("journal_records", self.journal_records),
            ("snapshots", self.snapshots),
            ("snapshot_auctions", self.snapshot_auctions),
            ("snapshot_last_us", self.snapshot_last_us),
        ]
    }
}

/// Every counter as the wire's list, exchange first, then sessions, then `extra`.
pub fn counters(
    exchange: &ExchangeCounters,
    sessions: &SessionCounters,
    extra: &[(&'static str, u64)],
) -> Vec<Counter<'static>> {
    exchange
        .values()
        .iter()
        .chain(sessions.values().iter())
        .chain(extra)
        .map(|&(name, value)| Counter {
            name: Cow::Borrowed(name),
            value,
        })
        .collect()
}
