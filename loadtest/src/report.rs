//! What a run measured: per-connection tallies merged at the end, the report with every field
//! (`--json`), and its human table.
//!
//! Latencies are kept in HDR histograms in microseconds, so every percentile up to p99.99 and
//! the maximum are exact to 0.1 %, whatever the spread. Reasons and errors are counted by
//! protocol code, named as `protocol-spec/codes.md` names them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use pingpost::protocol::ErrorCode;
use serde::Serialize;

use crate::limits::{LATENCY_SIGNIFICANT_DIGITS, LATENCY_US_MAX, REASON_CODES_MAX};

/// The label a report gives a protocol code: its name in `codes.md`, or `CODE_<n>` for a code
/// this build does not know (codes are an open set).
pub fn code_label(code: ErrorCode) -> String {
    match code.name() {
        Some(name) => name.to_owned(),
        None => format!("CODE_{}", code.0),
    }
}

/// Counts by label, bounded to `REASON_CODES_MAX` labels (the rest count under `OTHER`), so a
/// peer sending random codes cannot grow the report without bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    pub fn add(&mut self, label: &str, n: u64) {
        if let Some(count) = self.0.get_mut(label) {
            *count += n;
        } else if self.0.len() < REASON_CODES_MAX {
            self.0.insert(label.to_owned(), n);
        } else {
            *self.0.entry("OTHER".to_owned()).or_default() += n;
        }
    }

    pub fn merge(&mut self, other: &Counts) {
        for (label, &n) in &other.0 {
            self.add(label, n);
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    pub fn get(&self, label: &str) -> u64 {
        self.0.get(label).copied().unwrap_or(0)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter().map(|(label, &n)| (label.as_str(), n))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A latency histogram in microseconds, from 1 µs to `LATENCY_US_MAX`.
pub fn latency_histogram() -> Histogram<u64> {
    // The bounds are constants that HdrHistogram accepts (low 1, high > 2, digits <= 5).
    Histogram::new_with_bounds(1, LATENCY_US_MAX, LATENCY_SIGNIFICANT_DIGITS)
        .unwrap_or_else(|error| panic!("the latency histogram's bounds are invalid: {error}"))
}

/// Records `latency` in microseconds, clamped into the histogram's range (a sub-microsecond
/// answer counts as 1 µs, anything beyond an hour as an hour).
pub fn record_latency(histogram: &mut Histogram<u64>, latency: Duration) {
    let us = u64::try_from(latency.as_micros())
        .unwrap_or(u64::MAX)
        .clamp(1, LATENCY_US_MAX);
    histogram.saturating_record(us);
}

/// What one connection (or, merged, a whole step) measured.
#[derive(Debug, Clone)]
pub struct Tally {
    /// PING sent → PING_RESULT received, from the request's intended send time.
    pub ping_latency: Histogram<u64>,
    /// POST sent → POST_RESULT received.
    pub post_latency: Histogram<u64>,
    /// How late each PING left against its intended time (open loop): the generator's own
    /// pacing error plus any queueing behind a full pipe.
    pub send_lateness: Histogram<u64>,
    pub pings_sent: u64,
    pub offers: u64,
    pub no_sales_by_reason: Counts,
    pub ping_errors_by_code: Counts,
    pub posts_sent: u64,
    pub sold: u64,
    pub payout_total: u64,
    pub unsold_by_reason: Counts,
    pub post_errors_by_code: Counts,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            ping_latency: latency_histogram(),
            post_latency: latency_histogram(),
            send_lateness: latency_histogram(),
            pings_sent: 0,
            offers: 0,
            no_sales_by_reason: Counts::default(),
            ping_errors_by_code: Counts::default(),
            posts_sent: 0,
            sold: 0,
            payout_total: 0,
            unsold_by_reason: Counts::default(),
            post_errors_by_code: Counts::default(),
        }
    }
}

impl Tally {
    pub fn merge(&mut self, other: &Tally) {
        // Same bounds on both sides, so adding cannot fail.
        let _ = self.ping_latency.add(&other.ping_latency);
        let _ = self.post_latency.add(&other.post_latency);
        let _ = self.send_lateness.add(&other.send_lateness);
        self.pings_sent += other.pings_sent;
        self.offers += other.offers;
        self.no_sales_by_reason.merge(&other.no_sales_by_reason);
        self.ping_errors_by_code.merge(&other.ping_errors_by_code);
        self.posts_sent += other.posts_sent;
        self.sold += other.sold;
        self.payout_total = self.payout_total.saturating_add(other.payout_total);
        self.unsold_by_reason.merge(&other.unsold_by_reason);
        self.post_errors_by_code.merge(&other.post_errors_by_code);
    }

    /// Pings that got a PING_RESULT (an offer or a no-sale).
    pub fn pings_answered(&self) -> u64 {
        self.offers + self.no_sales_by_reason.total()
    }
}

/// Percentiles of one latency histogram, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self {
                count: 0,
                p50_us: 0,
                p90_us: 0,
                p99_us: 0,
                p999_us: 0,
                p9999_us: 0,
                max_us: 0,
                mean_us: 0.0,
            };
        }
        Self {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.5),
            p90_us: histogram.value_at_quantile(0.9),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            p9999_us: histogram.value_at_quantile(0.9999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// One measured step: a whole run, or one rate of a sweep.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepReport {
    /// Open loop: the rate asked for; `null` in closed loop.
    pub requested_rate_per_s: Option<u64>,
    /// From the first intended send to the last answer.
    pub elapsed_s: f64,
    /// Pings the schedule held (open loop) or the count asked for; `null` when the run was
    /// bounded by duration in closed loop.
    pub pings_scheduled: Option<u64>,
    pub pings_sent: u64,
    pub pings_answered: u64,
    /// Sent and not answered: errors (including timeouts) and those still in flight at the end.
    pub pings_unanswered: u64,
    /// Answered pings per second of `elapsed_s`.
    pub throughput_per_s: f64,
    /// Open loop: throughput as a percent of the requested rate.
    pub achieved_pct: Option<f64>,
    pub offers: u64,
    pub no_sales: u64,
    pub no_sales_by_reason: Counts,
    pub ping_errors: u64,
    pub ping_errors_by_code: Counts,
    pub posts_sent: u64,
    pub sold: u64,
    pub unsold: u64,
    pub unsold_by_reason: Counts,
    pub post_errors: u64,
    pub post_errors_by_code: Counts,
    /// What the sellers were paid in all, minor units.
    pub payout_total: u64,
    pub ping_latency_us: Percentiles,
    pub post_latency_us: Percentiles,
    pub send_lateness_us: Percentiles,
}

impl StepReport {
    pub fn new(
        tally: &Tally,
        requested_rate_per_s: Option<u64>,
        pings_scheduled: Option<u64>,
        elapsed: Duration,
    ) -> Self {
        let elapsed_s = elapsed.as_secs_f64();
        let answered = tally.pings_answered();
        let throughput_per_s = if elapsed_s > 0.0 {
            answered as f64 / elapsed_s
        } else {
            0.0
        };
        Self {
            requested_rate_per_s,
            elapsed_s,
            pings_scheduled,
            pings_sent: tally.pings_sent,
            pings_answered: answered,
            pings_unanswered: tally.pings_sent.saturating_sub(answered),
            throughput_per_s,
            achieved_pct: requested_rate_per_s.map(|rate| throughput_per_s * 100.0 / rate as f64),
            offers: tally.offers,
            no_sales: tally.no_sales_by_reason.total(),
            no_sales_by_reason: tally.no_sales_by_reason.clone(),
            ping_errors: tally.ping_errors_by_code.total(),
            ping_errors_by_code: tally.ping_errors_by_code.clone(),
            posts_sent: tally.posts_sent,
            sold: tally.sold,
            unsold: tally.unsold_by_reason.total(),
            unsold_by_reason: tally.unsold_by_reason.clone(),
            post_errors: tally.post_errors_by_code.total(),
            post_errors_by_code: tally.post_errors_by_code.clone(),
            payout_total: tally.payout_total,
            ping_latency_us: Percentiles::of(&tally.ping_latency),
            post_latency_us: Percentiles::of(&tally.post_latency),
            send_lateness_us: Percentiles::of(&tally.send_lateness),
        }
    }
}

/// What the simulated live buyers saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BuyerReport {
    pub sessions: u64,
    pub offers: u64,
    pub bids: u64,
    pub no_bids: u64,
    pub won: u64,
    pub lost: u64,
    pub lost_by_reason: Counts,
    pub deliveries: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Answers that could not be sent (the session had ended) and `ERROR`s the exchange sent
    /// about the buyers' answers, by code.
    pub errors_by_code: Counts,
}

/// The book the run used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct BookReport {
    /// Whether this run loaded it (else `--no-book`: the exchange already held it).
    pub loaded: bool,
    pub seed: u64,
    pub campaigns: u64,
    pub buyers: u64,
    pub sellers: u64,
    pub live_buyers: u64,
    /// Admin changes sent, and how long loading took.
    pub admin_changes: u64,
    pub load_s: f64,
}

/// The whole report: every field is always present in the JSON (`null` where it does not
/// apply), so tools can read it without guessing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub generator_version: &'static str,
    /// The exchange's address.
    pub target: String,
    /// Whether the generator started the daemon itself.
    pub spawned_daemon: bool,
    /// `open` or `closed`.
    pub mode: &'static str,
    pub connections: u32,
    pub in_flight: u32,
    pub post_share_pct: f64,
    pub duplicate_pct: u8,
    pub book: BookReport,
    /// The run (for a sweep: its last step).
    pub result: StepReport,
    pub buyers: BuyerReport,
    /// A sweep's steps in order; empty without `--sweep`.
    pub sweep: Vec<StepReport>,
    /// A sweep: the first rate that saturated the exchange, `null` if none did.
    pub saturated_at_rate_per_s: Option<u64>,
    /// A sweep: why that step counts as saturated.
    pub saturation_reason: Option<String>,
}

impl Report {
    /// The human table printed on stdout.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let result = &self.result;
        let pace = match result.requested_rate_per_s {
            Some(rate) => format!("open loop at {rate} pings/s"),
            None => "closed loop".to_owned(),
        };
        let _ = writeln!(
            out,
            "pingpost-loadtest {}: {pace}, {} connections x {} in flight, against {}{}",
            self.generator_version,
            self.connections,
            self.in_flight,
            self.target,
            if self.spawned_daemon {
                " (spawned)"
            } else {
                ""
            },
        );
        let _ = writeln!(
            out,
            "book: {} campaigns, {} buyers ({} live), {} sellers, seed {}{}",
            self.book.campaigns,
            self.book.buyers,
            self.book.live_buyers,
            self.book.sellers,
            self.book.seed,
            if self.book.loaded {
                format!(
                    "; {} admin changes loaded in {:.1} s",
                    self.book.admin_changes, self.book.load_s
                )
            } else {
                "; already held by the exchange".to_owned()
            }
        );
        out.push('\n');
        render_step(&mut out, result);
        if !self.sweep.is_empty() {
            out.push('\n');
            out.push_str(&render_sweep(&self.sweep));
            match (&self.saturated_at_rate_per_s, &self.saturation_reason) {
                (Some(rate), Some(reason)) => {
                    let _ = writeln!(out, "saturated at {rate} pings/s: {reason}");
                }
                _ => {
                    let _ = writeln!(out, "not saturated within the sweep's steps");
                }
            }
        }
        if self.buyers.sessions > 0 {
            let b = &self.buyers;
            let _ = writeln!(
                out,
                "\nlive buyers: {} sessions, {} offers, {} bids, {} no-bids, {} won, {} lost, \
                 {} deliveries ({} accepted, {} rejected)",
                b.sessions,
                b.offers,
                b.bids,
                b.no_bids,
                b.won,
                b.lost,
                b.deliveries,
                b.accepted,
                b.rejected
            );
            render_counts(&mut out, "lost by reason", &b.lost_by_reason);
            render_counts(&mut out, "buyer errors by code", &b.errors_by_code);
        }
        out
    }
}

fn render_step(out: &mut String, step: &StepReport) {
    let _ = writeln!(
        out,
        "pings     sent {:>10}  answered {:>10}  unanswered {:>8}  {:>12.0}/s{}",
        step.pings_sent,
        step.pings_answered,
        step.pings_unanswered,
        step.throughput_per_s,
        step.achieved_pct
            .map(|pct| format!("  ({pct:.1}% of requested)"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "outcomes  offers {:>8}  no sale {:>9}  errors {:>12}",
        step.offers, step.no_sales, step.ping_errors
    );
    let _ = writeln!(
        out,
        "posts     sent {:>10}  sold {:>14}  unsold {:>12}  errors {:>8}  payouts ${}.{:02}",
        step.posts_sent,
        step.sold,
        step.unsold,
        step.post_errors,
        step.payout_total / 100,
        step.payout_total % 100
    );
    out.push('\n');
    let _ = writeln!(
        out,
        "{:<16}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
        "latency (us)", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max"
    );
    for (name, p) in [
        ("ping -> result", &step.ping_latency_us),
        ("post -> result", &step.post_latency_us),
        ("send lateness", &step.send_lateness_us),
    ] {
        let _ = writeln!(
            out,
            "{name:<16}{:>10}{:>9}{:>9}{:>9}{:>9}{:>9}{:>9}",
            p.count, p.p50_us, p.p90_us, p.p99_us, p.p999_us, p.p9999_us, p.max_us
        );
    }
    render_counts(out, "no sale by reason", &step.no_sales_by_reason);
    render_counts(out, "ping errors by code", &step.ping_errors_by_code);
    render_counts(out, "unsold by reason", &step.unsold_by_reason);
    render_counts(out, "post errors by code", &step.post_errors_by_code);
}

fn render_counts(out: &mut String, title: &str, counts: &Counts) {
    if counts.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}:");
    for (label, n) in counts.iter() {
        let _ = writeln!(out, "  {label:<32}{n:>12}");
    }
}

/// The sweep's curve: one line per step.
pub fn render_sweep(steps: &[StepReport]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12}{:>12}{:>9}{:>9}{:>9}{:>9}{:>10}{:>9}",
        "rate/s", "achieved/s", "%", "p50 us", "p99 us", "p99.9", "max us", "errors"
    );
    for step in steps {
        let _ = writeln!(
            out,
            "{:>12}{:>12.0}{:>9.1}{:>9}{:>9}{:>9}{:>10}{:>9}",
            step.requested_rate_per_s.unwrap_or(0),
            step.throughput_per_s,
            step.achieved_pct.unwrap_or(0.0),
            step.ping_latency_us.p50_us,
            step.ping_latency_us.p99_us,
            step.ping_latency_us.p999_us,
            step.ping_latency_us.max_us,
            step.ping_errors + step.post_errors
        );
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_bounded() {
        let mut counts = Counts::default();
        for code in 0..(REASON_CODES_MAX + 50) {
            let code = u16::try_from(code).unwrap();
            counts.add(&code_label(ErrorCode(1_000 + code)), 1);
        }
        assert_eq!(counts.iter().count(), REASON_CODES_MAX + 1);
        assert_eq!(counts.get("OTHER"), 50);
        assert_eq!(counts.total(), REASON_CODES_MAX as u64 + 50);
    }

    #[test]
    fn codes_are_labelled_by_their_spec_names() {
        assert_eq!(
            code_label(ErrorCode::NO_MATCHING_CAMPAIGN),
            "NO_MATCHING_CAMPAIGN"
        );
        assert_eq!(code_label(ErrorCode(4_321)), "CODE_4321");
    }

    #[test]
    fn percentiles_come_from_the_histogram() {
        let mut tally = Tally::default();
        for us in 1..=10_000u64 {
            record_latency(&mut tally.ping_latency, Duration::from_micros(us));
        }
        let p = Percentiles::of(&tally.ping_latency);
        assert_eq!(p.count, 10_000);
        // Within HDR's 0.1 % precision.
        assert!((4_995..=5_005).contains(&p.p50_us), "{p:?}");
        assert!((9_890..=9_910).contains(&p.p99_us), "{p:?}");
        assert!((9_990..=10_010).contains(&p.max_us), "{p:?}");
        // Empty histograms report zeros, not a panic.
        assert_eq!(Percentiles::of(&latency_histogram()).count, 0);
    }
}
