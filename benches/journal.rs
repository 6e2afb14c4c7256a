//! Journal benchmark: append throughput, commit latency and the producer's cost per sync policy,
//! with the engine's own events (a generated 1k-campaign book, 30 % live buyers, posts,
//! deliveries, answers and expiries), on the disk and on tmpfs.
//!
//! # What is measured
//!
//! - **Throughput**: the producer appends `RECORDS` events as fast as it can (each moved in, as
//!   the engine thread moves what it polls); the clock runs from the first append until
//!   `wait_durable` of the last returns.
//! - **Commit latency**: the producer appends at a paced `RATE` records a second (in bursts of
//!   one millisecond's records, sleeping between them); the
//!   `on_durable` callback stamps each record's time from its `append` to the moment the
//!   watermark covers it (for `always`: its batch's `fdatasync` has returned). HDR percentiles.
//! - **Producer cost**: the time of each `append` call in the paced run: what the engine
//!   thread pays per event.
//!
//! The disk run uses a directory under the target directory (the machine's real disk); the
//! tmpfs run (`/dev/shm`) takes the device out, leaving the journal's own cost (serialization,
//! CRC32C, SHA-256, the channel and the thread handoff).
//!
//! Run: `cargo bench --bench journal`. `PINGPOST_BENCH_QUICK=1` runs a tenth of the records.

// A bench: a failed setup should stop it loudly, and its small casts are of known ranges.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hdrhistogram::Histogram;
use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, SplitMix64, generate};
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::journal::{Journal, JournalConfig, SyncPolicy};
use pingpost::protocol::{DeliveryOutcome, ErrorCode, PingOutcome};

/// The daemon's allocator, so that allocation costs are the ones production pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tuesday 2026-11-24 18:00 UTC: business hours across the US.
const T0: u64 = 1_795_543_200_000_000;
/// Offered load of the latency run: records a second (an exchange at about 20,000 pings a
/// second writes about this many events).
const RATE: u64 = 100_000;

/// The engine's events for `pings` pings, the book's own `book_changed` left out: what the
/// journal writes in steady state.
fn workload(pings: u64) -> Vec<Event> {
    let mut spec = BookSpec::new(0xB00C, 1_000);
    spec.live_share_pct = 30;
    let mut engine = Engine::new(EngineConfig::default());
    engine.handle_admin_batch(T0, generate(&spec)).unwrap();
    while engine.poll_event().is_some() {}
    let leads = LeadGen::new(LeadSpec::for_book(&spec, 0x1EAD));
    let mut rng = SplitMix64::new(7);
    let mut events = Vec::new();
    let mut posts: VecDeque<(u64, u64, u64, u64)> = VecDeque::new();
    let mut acks: VecDeque<(u64, u64, u64)> = VecDeque::new();
    let mut bids: VecDeque<(u64, u64, u64, u64, u64)> = VecDeque::new();
    let mut tag = 0;
    for i in 0..pings {
        let now = T0 + i * 10_000;
        let mut outputs = Vec::new();
        if engine.poll_timeout().is_some_and(|at| at <= now) {
            engine.handle_timeout(now);
        }
        while bids.front().is_some_and(|b| b.0 <= now) {
            let (_, buyer, ping, campaign, floor) = bids.pop_front().unwrap();
            let price = rng.percent(80).then(|| floor + rng.below(2_000));
            engine.handle_bid(now, buyer, ping, campaign, price, ErrorCode::NONE);
        }
        while posts.front().is_some_and(|p| p.0 <= now) {
            let (_, ping, lead, seller) = posts.pop_front().unwrap();
            tag += 1;
            let (contact, consent) = (leads.contact(lead), leads.consent(lead, now));
            engine.handle_post(now, tag, seller, ping, &contact, &consent);
        }
        while acks.front().is_some_and(|a| a.0 <= now) {
            let (_, buyer, seq) = acks.pop_front().unwrap();
            engine.handle_delivery_ack(now, buyer, seq, DeliveryOutcome::Accept, ErrorCode::NONE);
        }
        let lead = leads.lead(i);
        tag += 1;
        engine.handle_ping(now, tag, lead.seller, &lead.ping);
        outputs.extend(std::iter::from_fn(|| engine.poll_output()));
        events.extend(std::iter::from_fn(|| engine.poll_event()));
        for output in outputs {
            match output {
                Output::PingAnswer { result, seller, .. }
                    if matches!(result.outcome, PingOutcome::Offer { .. }) && rng.percent(40) =>
                {
                    posts.push_back((now + 1_000_000, result.ping_id, i, seller));
                }
                Output::Offer { buyer, offer } => bids.push_back((
                    now + 5_000,
                    buyer,
                    offer.auction_id,
                    offer.campaign_id,
                    offer.price_floor,
                )),
                Output::Deliver { buyer, delivery } => {
                    acks.push_back((now + 200_000, buyer, delivery.delivery_seq));
                }
                _ => {}
            }
        }
        events.extend(std::iter::from_fn(|| engine.poll_event()));
    }
    events
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
}

struct Row {
    place: &'static str,
    policy: &'static str,
    records_per_s: f64,
    mb_per_s: f64,
    commit_us: Histogram<u64>,
    append_ns: Histogram<u64>,
    batches: u64,
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(
    place: &'static str,
    base: &Path,
    policy_name: &'static str,
    policy: SyncPolicy,
    events: &[Event],
    records: usize,
    payload_bytes: u64,
) -> Row {
    // Throughput: as fast as the producer can append.
    let dir = fresh_dir(base, &format!("throughput-{policy_name}"));
    let (mut writer, _) = Journal::open::<Event>(&dir, JournalConfig::new(policy, 1)).unwrap();
    let input: Vec<Event> = events.iter().cycle().take(records).cloned().collect();
    let started = Instant::now();
    let mut last = 0;
    for event in input {
        last = writer.append(event).unwrap();
    }
    writer.wait_durable(last).unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    writer.flush_and_close().unwrap();
    let records_per_s = records as f64 / elapsed;
    let mb_per_s = records_per_s * payload_bytes as f64 / 1e6;
    let _ = std::fs::remove_dir_all(&dir);

    // Latency: paced appends, each record's append time kept by LSN; the callback records the
    // time until the watermark covers it.
    let dir = fresh_dir(base, &format!("latency-{policy_name}"));
    let appended_ns: Arc<Vec<AtomicU64>> =
        Arc::new((0..=records).map(|_| AtomicU64::new(0)).collect());
    let commit_us = Arc::new(Mutex::new(histogram()));
    let batches = Arc::new(AtomicU64::new(0));
    let clock = Instant::now();
    let mut config = JournalConfig::new(policy, 2);
    {
        let appended_ns = Arc::clone(&appended_ns);
        let commit_us = Arc::clone(&commit_us);
        let batches = Arc::clone(&batches);
        let seen = AtomicU64::new(0);
        config.on_durable = Some(Arc::new(move |durable| {
            let now = clock.elapsed().as_nanos() as u64;
            let from = seen.swap(durable, Ordering::AcqRel) + 1;
            batches.fetch_add(1, Ordering::Relaxed);
            let mut histogram = commit_us.lock().unwrap();
            for lsn in from..=durable {
                let at = appended_ns[lsn as usize].load(Ordering::Acquire);
                histogram.saturating_record(now.saturating_sub(at) / 1_000);
            }
        }));
    }
    let (mut writer, _) = Journal::open::<Event>(&dir, config).unwrap();
    let input: Vec<Event> = events.iter().cycle().take(records).cloned().collect();
    let mut append_ns = histogram();
    // Paced in bursts of one millisecond's records, sleeping between them as an engine thread
    // waiting for input does, so the producer does not take a core from the writer.
    let per_ms = (RATE / 1_000) as usize;
    let started = Instant::now();
    let mut last = 0;
    for (i, event) in input.into_iter().enumerate() {
        if i % per_ms == 0 {
            let due = started + std::time::Duration::from_millis((i / per_ms) as u64);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let before = clock.elapsed().as_nanos() as u64;
        appended_ns[i + 1].store(before, Ordering::Release);
        last = writer.append(event).unwrap();
        append_ns.saturating_record(clock.elapsed().as_nanos() as u64 - before);
    }
    writer.wait_durable(last).unwrap();
    writer.flush_and_close().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let commit_us = commit_us.lock().unwrap().clone();
    Row {
        place,
        policy: policy_name,
        records_per_s,
        mb_per_s,
        commit_us,
        append_ns,
        batches: batches.load(Ordering::Relaxed),
    }
}

fn main() {
    let quick = std::env::var_os("PINGPOST_BENCH_QUICK").is_some();
    let records = if quick { 30_000 } else { 300_000 };
    let started = Instant::now();
    let events = workload(if quick { 5_000 } else { 20_000 });
    let sizes: Vec<u64> = events
        .iter()
        .map(|e| serde_json::to_vec(e).unwrap().len() as u64)
        .collect();
    let payload_bytes = sizes.iter().sum::<u64>() / sizes.len() as u64;
    let mut kinds = std::collections::BTreeMap::new();
    for event in &events {
        let name = serde_json::to_value(event).unwrap()["event"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        *kinds.entry(name).or_insert(0u64) += 1;
    }
    println!(
        "workload: {} events in {:.1} s, mean payload {payload_bytes} bytes (+28 header), \
         largest {} bytes; {kinds:?}",
        events.len(),
        started.elapsed().as_secs_f64(),
        sizes.iter().max().unwrap()
    );

    let disk = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("journal-bench");
    let shm = PathBuf::from("/dev/shm/pingpost-journal-bench");
    let policies = [
        ("always", SyncPolicy::Always),
        ("interval=10", SyncPolicy::Interval { ms: 10 }),
        ("never", SyncPolicy::Never),
    ];
    let mut rows = Vec::new();
    for (place, base) in [("disk", &disk), ("tmpfs", &shm)] {
        if std::fs::create_dir_all(base).is_err() {
            println!("{place}: {} is not writable, skipped", base.display());
            continue;
        }
        for (name, policy) in policies {
            rows.push(run(
                place,
                base,
                name,
                policy,
                &events,
                records,
                payload_bytes,
            ));
        }
        let _ = std::fs::remove_dir_all(base);
    }

    println!();
    println!(
        "Throughput ({records} records as fast as they come) and, at {RATE} records/s, commit \
         latency (append to durable) and the producer's append cost"
    );
    println!(
        "{:<6} {:<12} {:>10} {:>7} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8}",
        "where",
        "policy",
        "records/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "p99.9 us",
        "max us",
        "commits",
        "ap p50",
        "ap p99",
        "ap p99.9",
        "ap max ns"
    );
    for row in &rows {
        let c = &row.commit_us;
        let a = &row.append_ns;
        println!(
            "{:<6} {:<12} {:>10.0} {:>7.0} | {:>8} {:>8} {:>8} {:>8} {:>8} | {:>7} {:>7} {:>7} {:>8}",
            row.place,
            row.policy,
            row.records_per_s,
            row.mb_per_s,
            c.value_at_quantile(0.5),
            c.value_at_quantile(0.99),
            c.value_at_quantile(0.999),
            c.max(),
            row.batches,
            a.value_at_quantile(0.5),
            a.value_at_quantile(0.99),
            a.value_at_quantile(0.999),
            a.max(),
        );
    }
}
