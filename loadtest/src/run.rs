//! One whole run: find or start the exchange, load the book, connect the live buyers and the
//! sellers, drive one step (or a sweep of steps), and assemble the report.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;
use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec};
use pingpost::client::{Client, LoginParams};
use pingpost::protocol::Role;
use tokio::net::lookup_host;
use tokio::sync::mpsc;

use crate::book::{BookPlan, Credential, load};
use crate::buyer::{BuyerBehavior, BuyerCounters, run_buyer};
use crate::cli::{Config, Mode, Stop, Sweep, Target, check_loopback};
use crate::daemon::Daemon;
use crate::limits::{DRAIN_TIMEOUT_MS, SWEEP_ACHIEVED_PCT_MIN, TICKET_BACKLOG_MAX};
use crate::rate::{Pacer, Schedule};
use crate::report::{BookReport, Report, StepReport, Tally, render_sweep};
use crate::seller::{Progress, SellerPlan, Source, run_connection};

/// Sessions opened at once while connecting sellers and buyers: enough to hide the round
/// trips, few enough not to look like a connection flood to the exchange's accept queue.
const CONNECT_CONCURRENCY: usize = 64;

/// How often the progress line is printed.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// Why a run could not be carried out: one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// What one step asks of the seller connections.
#[derive(Debug, Clone, Copy)]
pub struct StepSpec {
    pub mode: Mode,
    pub stop: Stop,
    pub in_flight: u32,
    /// Print a progress line on stderr every second.
    pub progress: bool,
}

/// What a step measured, before it becomes a report.
#[derive(Debug)]
pub struct StepOutcome {
    pub tally: Tally,
    /// When the step began: the intended time of open-loop request 0.
    pub start: Instant,
    pub elapsed: Duration,
    pub scheduled: Option<u64>,
    /// Open loop: tickets the pacer could not hand over because their connection had ended.
    pub dropped: u64,
}

impl StepOutcome {
    pub fn report(&self, requested_rate_per_s: Option<u64>) -> StepReport {
        StepReport::new(
            &self.tally,
            requested_rate_per_s,
            self.scheduled,
            self.elapsed,
        )
    }
}

/// Drives one step over `sellers` (logged-in seller sessions) and returns what they measured.
pub async fn run_step(
    sellers: &[Client],
    plan: Arc<SellerPlan>,
    spec: StepSpec,
) -> Result<StepOutcome, RunError> {
    assert!(!sellers.is_empty(), "a step needs a seller connection");
    let progress = Arc::new(Progress::default());
    let in_flight = spec.in_flight as usize;
    let drain = Duration::from_millis(DRAIN_TIMEOUT_MS);
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(sellers.len());
    let (pacer, scheduled) = match spec.mode {
        Mode::Open { rate_per_s } => {
            let schedule = Schedule::new(rate_per_s);
            let count = match spec.stop {
                Stop::After(duration) => schedule.count_within(duration),
                Stop::Count(count) => count,
            };
            let mut queues = Vec::with_capacity(sellers.len());
            for client in sellers {
                let (tx, rx) = mpsc::channel(TICKET_BACKLOG_MAX);
                queues.push(tx);
                tasks.push(tokio::spawn(run_connection(
                    client.clone(),
                    Source::Paced(rx),
                    in_flight,
                    Arc::clone(&plan),
                    Arc::clone(&progress),
                    drain,
                )));
            }
            let pacer = Pacer::spawn(schedule, start, count, queues)
                .map_err(|error| RunError(format!("could not start the pacer thread: {error}")))?;
            (Some(pacer), Some(count))
        }
        Mode::Closed => {
            let next = Arc::new(AtomicU64::new(0));
            let (limit, deadline) = match spec.stop {
                Stop::After(duration) => (None, Some(start + duration)),
                Stop::Count(count) => (Some(count), None),
            };
            for client in sellers {
                tasks.push(tokio::spawn(run_connection(
                    client.clone(),
                    Source::Closed {
                        next: Arc::clone(&next),
                        limit,
                        deadline,
                    },
                    in_flight,
                    Arc::clone(&plan),
                    Arc::clone(&progress),
                    drain,
                )));
            }
            (None, limit)
        }
    };
    let printer = spec
        .progress
        .then(|| tokio::spawn(print_progress(Arc::clone(&progress), start)));

    let mut tally = Tally::default();
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(connection) => tally.merge(&connection),
            Err(error) => failure = Some(format!("a seller connection's task failed: {error}")),
        }
    }
    let elapsed = start.elapsed();
    if let Some(printer) = printer {
        printer.abort();
    }
    let mut dropped = 0;
    if let Some(pacer) = pacer {
        pacer.stop();
        dropped = pacer.counters.dropped.load(Ordering::Relaxed);
        // The pacer's queues are all closed by now, so it ends at once; join off the runtime.
        let _ = tokio::task::spawn_blocking(move || pacer.join()).await;
    }
    if let Some(failure) = failure {
        return Err(RunError(failure));
    }
    Ok(StepOutcome {
        tally,
        start,
        elapsed,
        scheduled,
        dropped,
    })
}

async fn print_progress(progress: Arc<Progress>, start: Instant) {
    let mut ticker = tokio::time::interval(PROGRESS_INTERVAL);
    ticker.tick().await;
    let mut last_answered = 0;
    loop {
        ticker.tick().await;
        let answered = progress.answered.load(Ordering::Relaxed);
        eprintln!(
            "{:>6.1} s  sent {:>10}  answered {:>10}  {:>9}/s  errors {}",
            start.elapsed().as_secs_f64(),
            progress.sent.load(Ordering::Relaxed),
            answered,
            answered - last_answered,
            progress.errors.load(Ordering::Relaxed),
        );
        last_answered = answered;
    }
}

/// Connects `credentials` as sessions of `role`, at most `CONNECT_CONCURRENCY` at once.
pub async fn connect_all(
    addr: SocketAddr,
    role: Role,
    credentials: &[Credential],
) -> Result<Vec<Client>, RunError> {
    let mut clients = Vec::with_capacity(credentials.len());
    let mut connecting = stream::iter(credentials.iter().enumerate())
        .map(|(ix, credential)| async move {
            let mut login = LoginParams::new(role, credential.id, credential.secret.clone());
            login.client_name = concat!("pingpost-loadtest/", env!("CARGO_PKG_VERSION")).to_owned();
            Client::connect(addr, login)
                .await
                .map(|client| (ix, client))
                .map_err(|error| {
                    RunError(format!(
                        "could not log in as {role:?} {} at {addr}: {error}",
                        credential.id
                    ))
                })
        })
        .buffer_unordered(CONNECT_CONCURRENCY);
    while let Some(connected) = connecting.next().await {
        clients.push(connected?);
    }
    clients.sort_by_key(|(ix, _)| *ix);
    Ok(clients.into_iter().map(|(_, client)| client).collect())
}

/// The next rate of a sweep: `step_pct` percent higher, and at least one more.
pub fn next_sweep_rate(rate_per_s: u64, step_pct: u32) -> u64 {
    let raised = rate_per_s.saturating_add(rate_per_s.saturating_mul(u64::from(step_pct)) / 100);
    raised.max(rate_per_s.saturating_add(1))
}

/// Why a sweep step counts as saturated, if it does.
pub fn saturation(step: &StepReport, sweep: &Sweep) -> Option<String> {
    let requested = step.requested_rate_per_s?;
    let achieved_pct = step.achieved_pct.unwrap_or(0.0);
    if achieved_pct < SWEEP_ACHIEVED_PCT_MIN as f64 {
        return Some(format!(
            "achieved {:.0}/s, {achieved_pct:.1}% of the requested {requested}/s \
             (below {SWEEP_ACHIEVED_PCT_MIN}%)",
            step.throughput_per_s
        ));
    }
    if step.ping_latency_us.p99_us > sweep.p99_us_max {
        return Some(format!(
            "p99 ping latency {} us is above the bound {} us",
            step.ping_latency_us.p99_us, sweep.p99_us_max
        ));
    }
    None
}

/// Resolves the target and, for a spawned daemon, starts it.
async fn find_exchange(config: &Config) -> Result<(SocketAddr, Option<Daemon>), RunError> {
    match &config.target {
        Target::Addr(text) => {
            let resolved: Vec<SocketAddr> = lookup_host(text.as_str())
                .await
                .map_err(|error| RunError(format!("--addr {text} does not resolve: {error}")))?
                .collect();
            check_loopback(text, &resolved, config.allow_remote)
                .map_err(|error| RunError(error.0))?;
            Ok((resolved[0], None))
        }
        Target::Spawn(spec) => {
            let daemon = Daemon::spawn(spec)
                .await
                .map_err(|error| RunError(error.0))?;
            let addr = daemon.addr;
            if !addr.ip().is_loopback() && !config.allow_remote {
                let _ = daemon.stop().await;
                return Err(RunError(format!(
                    "the spawned daemon listens on {addr}, which is not a loopback address"
                )));
            }
            Ok((addr, Some(daemon)))
        }
    }
}

/// The book `config` describes.
pub fn book_spec(config: &Config) -> BookSpec {
    let mut spec = BookSpec::new(config.seed, config.campaigns);
    spec.buyers = config.buyers;
    spec.sellers = config.sellers;
    spec.live_share_pct = u8::try_from(config.live_share.bps() / 100).unwrap_or(100);
    spec
}

/// Carries out the whole run `config` describes.
pub async fn run(config: &Config) -> Result<Report, RunError> {
    let (addr, daemon) = find_exchange(config).await?;
    let spawned = daemon.is_some();
    let result = run_against(config, addr).await;
    if let Some(daemon) = daemon {
        if let Some(problem) = daemon.stop().await {
            eprintln!("pingpost-loadtest: {problem}");
        }
    }
    result.map(|mut report| {
        report.spawned_daemon = spawned;
        report
    })
}

async fn run_against(config: &Config, addr: SocketAddr) -> Result<Report, RunError> {
    let plan = BookPlan::generate(book_spec(config));
    let mut book = BookReport {
        loaded: config.load_book,
        seed: config.seed,
        campaigns: config.campaigns as u64,
        buyers: plan.buyer_count() as u64,
        sellers: plan.sellers.len() as u64,
        live_buyers: plan.live_buyers.len() as u64,
        admin_changes: 0,
        load_s: 0.0,
    };
    if config.load_book {
        let secret = config.admin_secret.clone().unwrap_or_default();
        let admin = Client::connect(addr, LoginParams::new(Role::Admin, config.admin_id, secret))
            .await
            .map_err(|error| {
                RunError(format!(
                    "could not log in as admin {} at {addr}: {error}",
                    config.admin_id
                ))
            })?;
        if config.progress {
            eprintln!(
                "loading the book: {} admin changes ({} campaigns)",
                plan.changes.len(),
                config.campaigns
            );
        }
        let took = load(&admin, &plan.changes)
            .await
            .map_err(|error| RunError(error.to_string()))?;
        let _ = admin.close().await;
        book.admin_changes = plan.changes.len() as u64;
        book.load_s = took.as_secs_f64();
    }

    // Live buyers first, so that the first pings already find them.
    let live_wanted = config
        .live_buyers
        .map_or(plan.live_buyers.len(), |n| n as usize);
    if live_wanted > plan.live_buyers.len() {
        return Err(RunError(format!(
            "--live-buyers {live_wanted} asks for more live buyers than the book has ({}): \
             raise --live-share or --campaigns, or ask for fewer",
            plan.live_buyers.len()
        )));
    }
    let buyer_clients = connect_all(addr, Role::Buyer, &plan.live_buyers[..live_wanted]).await?;
    let behavior = Arc::new(BuyerBehavior {
        latency_ms: config.buyer_latency_ms,
        no_bid_share: config.no_bid_share,
        reject_share: config.reject_share,
        seed: config.seed,
        bid_max: Arc::new(plan.bid_max.clone()),
    });
    let buyer_counters = Arc::new(BuyerCounters::default());
    let buyer_tasks: Vec<_> = buyer_clients
        .iter()
        .zip(&plan.live_buyers)
        .map(|(client, credential)| {
            tokio::spawn(run_buyer(
                client.clone(),
                credential.id,
                Arc::clone(&behavior),
                Arc::clone(&buyer_counters),
            ))
        })
        .collect();

    let seller_credentials: Vec<Credential> = (0..config.connections as usize)
        .map(|ix| plan.sellers[ix % plan.sellers.len()].clone())
        .collect();
    let sellers = connect_all(addr, Role::Seller, &seller_credentials).await?;

    let mut lead_spec = LeadSpec::for_book(&plan.spec, config.seed);
    lead_spec.duplicate_pct = config.duplicate_pct;
    lead_spec.timeout_ms = config.ping_timeout_ms;
    let leads = LeadGen::new(lead_spec);
    let step = StepSpec {
        mode: config.mode,
        stop: config.stop,
        in_flight: config.in_flight,
        progress: config.progress,
    };

    let mut sweep_steps = Vec::new();
    let mut saturated_at = None;
    let mut saturation_reason = None;
    let outcome = match (config.sweep, config.mode) {
        (Some(sweep), Mode::Open { rate_per_s }) => {
            let mut rate = rate_per_s;
            let mut lead_offset = config.lead_offset;
            let mut last = None;
            for _ in 0..sweep.steps_max {
                let plan = Arc::new(SellerPlan {
                    leads: leads.clone(),
                    lead_offset,
                    post_share: config.post_share,
                    seed: config.seed,
                });
                let spec = StepSpec {
                    mode: Mode::Open { rate_per_s: rate },
                    ..step
                };
                if config.progress {
                    eprintln!("sweep: {rate} pings/s");
                }
                let outcome = run_step(&sellers, plan, spec).await?;
                lead_offset = lead_offset.saturating_add(outcome.tally.pings_sent);
                let report = outcome.report(Some(rate));
                if config.progress {
                    eprint!("{}", render_sweep(std::slice::from_ref(&report)));
                }
                let verdict = saturation(&report, &sweep);
                sweep_steps.push(report);
                last = Some(outcome);
                if let Some(reason) = verdict {
                    saturated_at = Some(rate);
                    saturation_reason = Some(reason);
                    break;
                }
                rate = next_sweep_rate(rate, sweep.step_pct);
            }
            last.ok_or_else(|| RunError("the sweep ran no step".to_owned()))?
        }
        _ => {
            let plan = Arc::new(SellerPlan {
                leads,
                lead_offset: config.lead_offset,
                post_share: config.post_share,
                seed: config.seed,
            });
            run_step(&sellers, plan, step).await?
        }
    };

    for seller in &sellers {
        let _ = seller.close().await;
    }
    for buyer in &buyer_clients {
        let _ = buyer.close().await;
    }
    for task in buyer_tasks {
        let _ = task.await;
    }

    let requested = match config.mode {
        Mode::Open { rate_per_s } => Some(
            sweep_steps
                .last()
                .and_then(|step| step.requested_rate_per_s)
                .unwrap_or(rate_per_s),
        ),
        Mode::Closed => None,
    };
    if outcome.dropped > 0 {
        eprintln!(
            "pingpost-loadtest: {} scheduled pings were not sent because their session ended",
            outcome.dropped
        );
    }
    Ok(Report {
        generator_version: env!("CARGO_PKG_VERSION"),
        target: addr.to_string(),
        spawned_daemon: false,
        mode: match config.mode {
            Mode::Open { .. } => "open",
            Mode::Closed => "closed",
        },
        connections: config.connections,
        in_flight: config.in_flight,
        post_share_pct: f64::from(config.post_share.bps()) / 100.0,
        duplicate_pct: config.duplicate_pct,
        book,
        result: outcome.report(requested),
        buyers: buyer_counters.report(buyer_clients.len() as u64),
        sweep: sweep_steps,
        saturated_at_rate_per_s: saturated_at,
        saturation_reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_rates_grow_by_the_step() {
        assert_eq!(next_sweep_rate(1_000, 25), 1_250);
        assert_eq!(next_sweep_rate(1, 25), 2);
        assert_eq!(next_sweep_rate(u64::MAX, 25), u64::MAX);
    }
}
