//! Simulated sellers: each connection takes requests from its source (the pacer's tickets in
//! open loop, a shared counter in closed loop), keeps at most `in_flight` of them outstanding,
//! pings each lead, posts a share of the offered ones, and tallies what came back.
//!
//! One task per connection, no lock on the path: the connection's tally is its own and is
//! merged when the step ends; only the progress counters are shared atomics.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use pingpost::bookgen::{LeadGen, SplitMix64};
use pingpost::client::{Client, ClientError, timeout};
use pingpost::protocol::{PingOutcome, Post, PostOutcome};
use tokio::sync::mpsc;

use crate::cli::Share;
use crate::limits::{BPS_PER_ONE, POST_TIMEOUT_MS, REQUEST_GRACE_MS};
use crate::rate::Ticket;
use crate::report::{Tally, code_label, record_latency};

/// A fixed salt for the post draw, so the choice of posted leads does not correlate with the
/// lead generator's own draws from the same seed.
const POST_DRAW_SALT: u64 = 0x706F_7374;

/// What every seller connection of a step shares.
#[derive(Debug)]
pub struct SellerPlan {
    pub leads: LeadGen,
    /// Lead `lead_offset + i` is the lead of request `i`.
    pub lead_offset: u64,
    pub post_share: Share,
    /// The post draw's seed.
    pub seed: u64,
}

impl SellerPlan {
    /// Whether the offered lead of request `index` goes on to a POST: a pure function of the
    /// seed and the index, so two runs post the same leads.
    pub fn posts(&self, index: u64) -> bool {
        let draw =
            SplitMix64::fork(self.seed ^ POST_DRAW_SALT, index).below(u64::from(BPS_PER_ONE));
        self.post_share.holds_for(draw)
    }
}

/// Counters the progress line reads while the step runs.
#[derive(Debug, Default)]
pub struct Progress {
    pub sent: AtomicU64,
    pub answered: AtomicU64,
    pub errors: AtomicU64,
}

/// Where a connection's requests come from.
#[derive(Debug)]
pub enum Source {
    /// Open loop: tickets from the pacer, each with its intended send time.
    Paced(mpsc::Receiver<Ticket>),
    /// Closed loop: the next index from a counter shared by every connection, until `limit`
    /// requests or `deadline`; the intended time is the moment a slot frees.
    Closed {
        next: Arc<AtomicU64>,
        limit: Option<u64>,
        deadline: Option<Instant>,
    },
}

impl Source {
    async fn next(&mut self) -> Option<Ticket> {
        match self {
            Self::Paced(tickets) => tickets.recv().await,
            Self::Closed {
                next,
                limit,
                deadline,
            } => {
                let now = Instant::now();
                if deadline.is_some_and(|deadline| now >= deadline) {
                    return None;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if limit.is_some_and(|limit| index >= limit) {
                    return None;
                }
                Some(Ticket {
                    index,
                    intended: now,
                })
            }
        }
    }
}

/// What happened to one lead.
#[derive(Debug)]
struct LeadOutcome {
    lateness: Duration,
    ping_latency: Duration,
    ping: Result<PingEnd, String>,
    post: Option<(Duration, Result<PostEnd, String>)>,
}

#[derive(Debug)]
enum PingEnd {
    Offer,
    NoSale(String),
}

#[derive(Debug)]
enum PostEnd {
    Sold { payout_total: u64 },
    Unsold(String),
}

/// The label of a failed call: the protocol code's name when it carries one, else the kind.
fn error_label(error: &ClientError) -> String {
    if let Some(code) = error.code() {
        return code_label(code);
    }
    match error {
        ClientError::Timeout => "TIMEOUT",
        ClientError::Disconnected { .. } => "DISCONNECTED",
        ClientError::Protocol(_) => "PROTOCOL_ERROR",
        ClientError::Encode(_) => "ENCODE_ERROR",
        ClientError::Io(_) | ClientError::Connect { .. } => "IO_ERROR",
        _ => "CLIENT_ERROR",
    }
    .to_owned()
}

/// Microseconds since the Unix epoch, for the consent's timestamp.
fn unix_time_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            u64::try_from(since.as_micros()).unwrap_or(u64::MAX)
        })
}

/// Pings the lead of `ticket` and, if it is offered and chosen, posts it.
async fn one_lead(client: Client, plan: Arc<SellerPlan>, ticket: Ticket) -> LeadOutcome {
    let lead_index = plan.lead_offset.wrapping_add(ticket.index);
    let lead = plan.leads.lead(lead_index);
    let ping_timeout = Duration::from_millis(u64::from(lead.ping.timeout_ms) + REQUEST_GRACE_MS);
    let sent = Instant::now();
    let answer = timeout(ping_timeout, client.ping(lead.ping)).await;
    let answered = Instant::now();
    let mut outcome = LeadOutcome {
        lateness: sent.saturating_duration_since(ticket.intended),
        // From the intended time: a request that waited for its turn waited in the exchange's
        // queue as far as the seller is concerned.
        ping_latency: answered.saturating_duration_since(ticket.intended),
        ping: Err(String::new()),
        post: None,
    };
    let result = match answer {
        Ok(result) => result,
        Err(error) => {
            outcome.ping = Err(error_label(&error));
            return outcome;
        }
    };
    match result.outcome {
        PingOutcome::NoSale { reason } => outcome.ping = Ok(PingEnd::NoSale(code_label(reason))),
        PingOutcome::Offer { .. } => {
            outcome.ping = Ok(PingEnd::Offer);
            if plan.posts(ticket.index) {
                let post = Post {
                    ping_id: result.ping_id,
                    contact: plan.leads.contact(lead_index),
                    consent: plan.leads.consent(lead_index, unix_time_us()),
                };
                let post_sent = Instant::now();
                let answer =
                    timeout(Duration::from_millis(POST_TIMEOUT_MS), client.post(post)).await;
                let latency = post_sent.elapsed();
                let end = match answer {
                    Ok(result) => Ok(match result.outcome {
                        PostOutcome::Sold { payout_total, .. } => PostEnd::Sold { payout_total },
                        PostOutcome::Unsold { reason } => PostEnd::Unsold(code_label(reason)),
                    }),
                    Err(error) => Err(error_label(&error)),
                };
                outcome.post = Some((latency, end));
            }
        }
    }
    outcome
}

fn record(tally: &mut Tally, progress: &Progress, outcome: LeadOutcome) {
    record_latency(&mut tally.send_lateness, outcome.lateness);
    match outcome.ping {
        Ok(end) => {
            record_latency(&mut tally.ping_latency, outcome.ping_latency);
            progress.answered.fetch_add(1, Ordering::Relaxed);
            match end {
                PingEnd::Offer => tally.offers += 1,
                PingEnd::NoSale(reason) => tally.no_sales_by_reason.add(&reason, 1),
            }
        }
        Err(label) => {
            progress.errors.fetch_add(1, Ordering::Relaxed);
            tally.ping_errors_by_code.add(&label, 1);
        }
    }
    if let Some((latency, end)) = outcome.post {
        tally.posts_sent += 1;
        match end {
            Ok(end) => {
                record_latency(&mut tally.post_latency, latency);
                match end {
                    PostEnd::Sold { payout_total } => {
                        tally.sold += 1;
                        tally.payout_total = tally.payout_total.saturating_add(payout_total);
                    }
                    PostEnd::Unsold(reason) => tally.unsold_by_reason.add(&reason, 1),
                }
            }
            Err(label) => {
                progress.errors.fetch_add(1, Ordering::Relaxed);
                tally.post_errors_by_code.add(&label, 1);
            }
        }
    }
}

/// Runs one seller connection until its source is exhausted and its requests are answered (or
/// `drain` has passed since the source ended). Stops taking requests when the session ends.
pub async fn run_connection(
    client: Client,
    mut source: Source,
    in_flight: usize,
    plan: Arc<SellerPlan>,
    progress: Arc<Progress>,
    drain: Duration,
) -> Tally {
    assert!(
        in_flight > 0,
        "a connection needs at least one request in flight"
    );
    let mut tally = Tally::default();
    let mut pending = FuturesUnordered::new();
    let mut source_open = true;
    let mut drain_deadline: Option<tokio::time::Instant> = None;
    loop {
        if source_open && client.is_closed() {
            // The session is over: every later request would fail at once. Dropping the
            // source tells the pacer to count this connection's tickets as dropped.
            source_open = false;
            source = Source::Closed {
                next: Arc::new(AtomicU64::new(0)),
                limit: Some(0),
                deadline: None,
            };
        }
        if !source_open && pending.is_empty() {
            break;
        }
        if !source_open && drain_deadline.is_none() {
            drain_deadline = Some(tokio::time::Instant::now() + drain);
        }
        let drain_timer = async {
            match drain_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            Some(outcome) = pending.next(), if !pending.is_empty() => {
                record(&mut tally, &progress, outcome);
            }
            ticket = source.next(), if source_open && pending.len() < in_flight => match ticket {
                Some(ticket) => {
                    tally.pings_sent += 1;
                    progress.sent.fetch_add(1, Ordering::Relaxed);
                    pending.push(one_lead(client.clone(), Arc::clone(&plan), ticket));
                }
                None => source_open = false,
            },
            () = drain_timer => break,
        }
    }
    // What is still pending after the drain counts as sent and unanswered.
    drop(source);
    tally
}

#[cfg(test)]
mod tests {
    use super::*;
    use pingpost::bookgen::{BookSpec, LeadSpec};

    #[test]
    fn the_post_share_is_drawn_per_index() {
        let spec = BookSpec::new(1, 100);
        let plan = SellerPlan {
            leads: LeadGen::new(LeadSpec::for_book(&spec, 1)),
            lead_offset: 0,
            post_share: "30%".parse().unwrap_or_default(),
            seed: 9,
        };
        let posted = (0..100_000).filter(|&i| plan.posts(i)).count();
        // 30 % of 100k draws: the binomial's standard deviation is 145, so 1 % is 7 sigma.
        assert!((29_000..=31_000).contains(&posted), "{posted}");
        assert_eq!(plan.posts(12_345), plan.posts(12_345));
        let none = SellerPlan {
            post_share: Share::default(),
            ..plan
        };
        assert!((0..10_000).all(|i| !none.posts(i)));
    }
}
