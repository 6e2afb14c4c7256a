//! The open-loop rate controller: an exact schedule of intended send times, and the pacer
//! thread that releases each request at its time.
//!
//! # Why intended times
//!
//! A generator that waits for an answer before it sends the next request slows down exactly
//! when the server stalls, so the requests that would have queued behind the stall are never
//! sent and never measured ("coordinated omission"). Here every request `i` has an intended
//! send time fixed before the run starts, `start + i / rate`, and its latency is measured from
//! that time, whatever delayed the actual send (a full pipe, a slow server, the generator
//! itself). The gap between intended and actual send is reported too, as the pacer's own error.
//!
//! # Why a thread
//!
//! tokio's timer has a resolution of one millisecond: at 50k pings/s fifty requests would leave
//! in one burst and each would carry up to a millisecond of the timer's error into its latency.
//! A dedicated OS thread sleeps with the kernel's finer timer (tens of microseconds) and hands
//! each request, with its intended time, to its connection's task.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

/// Nanoseconds in a second.
const NS_PER_S: u128 = 1_000_000_000;

/// The constant-rate schedule: request `i` is intended `i / rate` after the start, computed in
/// integer nanoseconds from `i` itself, so the error never accumulates over a long run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    rate_per_s: u64,
}

impl Schedule {
    /// A schedule of `rate_per_s` requests per second; the rate must be positive.
    pub fn new(rate_per_s: u64) -> Self {
        assert!(rate_per_s > 0, "a schedule needs a positive rate");
        Self { rate_per_s }
    }

    pub fn rate_per_s(self) -> u64 {
        self.rate_per_s
    }

    /// When request `index` is intended, after the start.
    pub fn offset(self, index: u64) -> Duration {
        let ns = u128::from(index) * NS_PER_S / u128::from(self.rate_per_s);
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// How many requests the schedule holds within `duration` of the start: those intended
    /// strictly before its end, which is `rate × duration` rounded up.
    pub fn count_within(self, duration: Duration) -> u64 {
        let ns = duration.as_nanos();
        let count = (ns * u128::from(self.rate_per_s)).div_ceil(NS_PER_S);
        u64::try_from(count).unwrap_or(u64::MAX)
    }
}

/// One request to send: its number in the run and when it should have left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ticket {
    pub index: u64,
    pub intended: Instant,
}

/// What the pacer did, for the report.
#[derive(Debug, Default)]
pub struct PacerCounters {
    /// Tickets handed to a connection.
    pub released: AtomicU64,
    /// Tickets whose connection had stopped (its session ended): never sent.
    pub dropped: AtomicU64,
}

/// The pacer thread: releases tickets `0..count` at their intended times, ticket `i` to
/// connection `i % connections`, and stops early when `stop` is set.
#[derive(Debug)]
pub struct Pacer {
    handle: Option<thread::JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub counters: Arc<PacerCounters>,
}

impl Pacer {
    /// Starts pacing now-ish: `start` is the intended time of ticket 0. Each connection's
    /// queue should be bounded (`TICKET_BACKLOG_MAX`): a full one makes the pacer wait, which
    /// shows as lateness, never as a lost measurement.
    pub fn spawn(
        schedule: Schedule,
        start: Instant,
        count: u64,
        queues: Vec<mpsc::Sender<Ticket>>,
    ) -> std::io::Result<Self> {
        assert!(!queues.is_empty(), "the pacer needs a connection");
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(PacerCounters::default());
        let handle = thread::Builder::new().name("pacer".to_owned()).spawn({
            let stop = Arc::clone(&stop);
            let counters = Arc::clone(&counters);
            move || pace(schedule, start, count, &queues, &stop, &counters)
        })?;
        Ok(Self {
            handle: Some(handle),
            stop,
            counters,
        })
    }

    /// Asks the pacer to release no more tickets.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the thread to end (it ends after the last ticket, or soon after `stop`).
    pub fn join(mut self) {
        if let Some(handle) = self.handle.take() {
            // The pacer's body cannot panic short of a bug; the report then shows fewer sends.
            let _ = handle.join();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn pace(
    schedule: Schedule,
    start: Instant,
    count: u64,
    queues: &[mpsc::Sender<Ticket>],
    stop: &AtomicBool,
    counters: &PacerCounters,
) {
    let connections = queues.len() as u64;
    for index in 0..count {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let intended = start + schedule.offset(index);
        let now = Instant::now();
        if intended > now {
            thread::sleep(intended - now);
        }
        let queue = &queues[usize::try_from(index % connections).unwrap_or(0)];
        // A full queue blocks here: the run is saturated and the pacer falls behind, which the
        // tickets' intended times keep visible in every later latency.
        if queue.blocking_send(Ticket { index, intended }).is_ok() {
            counters.released.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intended_times_are_exactly_one_over_the_rate_apart() {
        for rate in [1, 3, 7, 1_000, 50_000, 333_333] {
            let schedule = Schedule::new(rate);
            let step_ns = 1_000_000_000 / u128::from(rate);
            let mut previous = schedule.offset(0);
            assert_eq!(previous, Duration::ZERO);
            for index in 1..=rate.min(100_000) {
                let at = schedule.offset(index);
                let gap = (at - previous).as_nanos();
                // Integer nanoseconds: each gap is the exact 1/rate rounded down or up.
                assert!(
                    gap == step_ns || gap == step_ns + 1,
                    "rate {rate}: gap {gap} ns at {index}"
                );
                previous = at;
            }
            // No drift: request `rate` is intended exactly one second in.
            assert_eq!(schedule.offset(rate), Duration::from_secs(1));
            assert_eq!(schedule.offset(10 * rate), Duration::from_secs(10));
        }
    }

    #[test]
    fn the_count_within_a_duration_is_rate_times_duration() {
        let schedule = Schedule::new(50_000);
        assert_eq!(schedule.count_within(Duration::from_secs(10)), 500_000);
        assert_eq!(schedule.count_within(Duration::from_millis(1)), 50);
        assert_eq!(Schedule::new(3).count_within(Duration::from_secs(1)), 3);
        // A part of a period still holds the request intended at its start.
        assert_eq!(Schedule::new(3).count_within(Duration::from_millis(400)), 2);
        assert_eq!(Schedule::new(1).count_within(Duration::ZERO), 0);
        // Every counted request is intended before the end, and the next one is not.
        let duration = Duration::from_millis(1_234);
        let count = Schedule::new(777).count_within(duration);
        assert!(Schedule::new(777).offset(count - 1) < duration);
        assert!(Schedule::new(777).offset(count) >= duration);
    }

    #[test]
    fn the_pacer_releases_every_ticket_in_order_and_never_early() {
        let (tx_a, mut rx_a) = mpsc::channel(1_000);
        let (tx_b, mut rx_b) = mpsc::channel(1_000);
        let schedule = Schedule::new(20_000);
        let start = Instant::now();
        let pacer = Pacer::spawn(schedule, start, 1_000, vec![tx_a, tx_b]).expect("spawn");
        pacer.join();
        let mut seen = Vec::new();
        while let Ok(ticket) = rx_a.try_recv() {
            assert_eq!(ticket.index % 2, 0);
            seen.push(ticket);
        }
        while let Ok(ticket) = rx_b.try_recv() {
            assert_eq!(ticket.index % 2, 1);
            seen.push(ticket);
        }
        assert_eq!(seen.len(), 1_000);
        seen.sort_by_key(|ticket| ticket.index);
        for (index, ticket) in seen.iter().enumerate() {
            assert_eq!(ticket.index, index as u64);
            assert_eq!(ticket.intended, start + schedule.offset(index as u64));
        }
        // The last ticket cannot have been released before its time.
        assert!(start.elapsed() >= schedule.offset(999));
    }
}
