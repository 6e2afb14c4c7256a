//! Auction benchmark: per-auction latency of the engine over generated books of 1k, 10k and
//! 100k campaigns on the real ZIP table, with the index's build time and memory.
//!
//! The book and leads come from `pingpost::bookgen` (ZIP lists, ZIP3s, states and radii around
//! real metros, filters, schedules, caps, tiers, fixed prices and regional fallbacks). Every
//! buyer takes fixed prices (`live_share_pct` 0), so each auction resolves inside its
//! `handle_ping` call and one call is one whole auction.
//!
//! # What is measured
//!
//! Each auction is timed with `Instant` around `handle_ping` and moving its outputs and events
//! out of the engine (what the daemon's engine thread does per ping; encoding, journaling and
//! dropping them happen elsewhere), recorded in nanoseconds in an HDR histogram. The engine's
//! state is kept as in production: virtual time advances 10 ms per ping (100 pings a second;
//! `PINGPOST_BENCH_PINGS_PER_SECOND` sets another rate), 30 % of offers are posted 2 s after
//! their answer (their reservations commit, so caps and budgets fill), the rest expire after
//! the post window through `handle_timeout`. Posts and timeouts are timed into their own
//! histograms. The first 130 s of virtual time (13,000 pings at 100 a second: the post window,
//! the retention of ended auctions and 10 s) bring the engine's state and memory to their
//! steady size and are not recorded, except for their worst auction ("warm-up max"). The
//! allocator is the daemon's (mimalloc), and as in the daemon transparent huge pages are turned
//! off once the book is loaded (`PINGPOST_BENCH_TRANSPARENT_HUGE_PAGES=1` keeps them).
//!
//! Build numbers: `generate` is bookgen's time; `compile` a one-off `Book::compile` of the
//! whole book (the territory index included); `load` putting the book into a fresh engine with
//! one `handle_admin_batch` (which compiles once); `admin` one `handle_admin` on the loaded
//! engine (a campaign's daily cap raised), which rebuilds the book; `index` the territory
//! index's own memory estimate; RSS the process's resident memory after loading and after the
//! auctions.
//!
//! Where an auction's time goes: each measured auction's latency is fitted (least squares,
//! the slowest 1 % left out) on what its opening event says it met: territory vetoes, the
//! book's own exclusions (listed from the masks), campaigns evaluated and left out, and
//! candidates. The fit gives an auction's fixed cost and the cost of one more of each, which
//! says whether a change should cut the per-auction work or the per-campaign work.
//!
//! Snapshot numbers: after the auctions, the engine in its steady state is copied with
//! `Engine::snapshot_image` (what the daemon's exchange thread stalls for), encoded (on the
//! journal's snapshot thread in the daemon) and loaded back with `Engine::from_snapshot` (what
//! a restart costs before replaying), with the auctions in memory and the bytes.
//!
//! Run: `cargo bench --bench auction`. `PINGPOST_BENCH_QUICK=1` runs 10,000 auctions per size
//! instead of 100,000; `PINGPOST_BENCH_AUCTIONS=n` sets the count; `PINGPOST_BENCH_SIZES=1k,10k`
//! picks sizes (a number is a campaign count); `PINGPOST_BENCH_EVALUATE_EVERY=1` evaluates every
//! matched campaign instead of walking the ping tree (`EngineConfig::evaluate_every_campaign`);
//! `PINGPOST_BENCH_HOT_LEADS=n` draws every ping's highlights from the first `n` leads (fresh
//! tokens and consumers), which keeps the book's data in cache (see [`hot_leads`]).

// A bench: a failed setup should stop it loudly, and its small casts are of known ranges.
#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, SplitMix64, generate};
use pingpost::engine::book::{AdminChange, Book, BookDefs};
use pingpost::engine::events::{Event, ExclusionCode, Resolution};
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::engine::types::{Exclusion, TimeUs};
use pingpost::limits::{AUCTION_RETENTION_MS, POST_WINDOW_MS};
use pingpost::protocol::{CampaignPut, PingOutcome, PutMode};
use pingpost::server::memory::stop_transparent_huge_pages;

/// The daemon's allocator, so that allocation costs are the ones production pays.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tuesday 2026-11-24 18:00 UTC: 13:00 in New York, 10:00 in Los Angeles, 08:00 in Honolulu,
/// so business-hours schedules are open across the country for the whole run.
const T0: TimeUs = 1_795_543_200_000_000;
/// Virtual pings a second unless `PINGPOST_BENCH_PINGS_PER_SECOND` says otherwise.
const PINGS_PER_SECOND_DEFAULT: u64 = 100;
/// Share of offers the seller posts; the others expire.
const POST_PCT: u32 = 30;
/// How long after its offer a seller posts.
const POST_DELAY_US: u64 = 2_000_000;
/// Virtual time the pings before recording take: enough for offers to expire and ended
/// auctions to be forgotten (the post window, then the retention, and 10 s more), so the
/// engine's memory has reached its steady size. Before that, every new page the engine touches
/// is a page fault (with transparent huge pages kept, one that compacts memory for 2 MiB: about
/// 5 ms on the VMs these numbers were taken on). The warm-up's worst auction is printed on its
/// own: the engine's tables grow then, as in a daemon's first minutes.
const WARMUP_MS: u64 = POST_WINDOW_MS as u64 + AUCTION_RETENTION_MS as u64 + 10_000;
const BOOK_SEED: u64 = 0xB00C_2026;
const LEAD_SEED: u64 = 0x1EAD_2026;

/// Puts the generated book into a fresh engine as one batch (one compile of the book; one
/// change at a time would compile it once per campaign) and returns how long that took.
fn install_book(engine: &mut Engine, changes: Vec<AdminChange>) -> Duration {
    let started = Instant::now();
    engine.handle_admin_batch(T0, changes).unwrap();
    while engine.poll_event().is_some() {}
    started.elapsed()
}

/// One size's results.
struct Row {
    label: String,
    campaigns: usize,
    rules: usize,
    generate: Duration,
    compile: Duration,
    load: Duration,
    admin: Duration,
    index_bytes: usize,
    rss_bytes_loaded: u64,
    rss_bytes_after: u64,
    auctions: u64,
    sold: u64,
    /// Sales whose winners are all fallback campaigns.
    to_fallback: u64,
    rejected: u64,
    matched: u64,
    /// Matched campaigns the auction evaluated or listed (the rest the ping tree's walk never
    /// reached).
    evaluated: u64,
    eligible: u64,
    matched_per_ping: Histogram<u64>,
    auction_ns: Histogram<u64>,
    ping_only_ns: Histogram<u64>,
    /// The worst auction of the warm-up, while the engine's tables grow.
    warmup_max: Duration,
    post_ns: Histogram<u64>,
    timeout_ns: Histogram<u64>,
    no_sale: Vec<(u16, u64)>,
    auctions_in_memory: usize,
    snapshot_bytes: usize,
    snapshot_copy: Duration,
    snapshot_encode: Duration,
    snapshot_load: Duration,
    /// Each measured auction's latency and what it met, for [`fit_ping_costs`].
    ping_costs: Vec<PingCosts>,
}

/// What one measured auction met, by kind: the counts a ping's latency is fitted on.
#[derive(Clone, Copy)]
struct PingCosts {
    ns: f64,
    /// Territory vetoes; the book's own exclusions (paused, blocked by the seller, sale mode
    /// not bought), listed from the masks; campaigns evaluated and left out (filter, schedule,
    /// cap, budget, floor, duplicate); candidates (evaluated and priced).
    counts: [f64; PING_COST_KINDS],
}

const PING_COST_KINDS: usize = 4;
const PING_COST_NAMES: [&str; PING_COST_KINDS] = [
    "territory veto",
    "book exclusion",
    "evaluated, out",
    "candidate",
];

/// Auctions above this latency quantile are left out of the fit: their time is the machine's
/// (a page fault, a map growing, the scheduler), not what they met.
const PING_COST_FIT_QUANTILE: f64 = 0.99;

/// An ordinary least-squares fit of latency on what each auction met: the fixed cost of an
/// auction, then the cost of one more of each kind in [`PingCosts::counts`], in ns. `None`
/// when the counts do not vary enough to separate the kinds.
#[allow(clippy::needless_range_loop)] // a matrix's rows and columns, indexed as written
fn fit_ping_costs(pings: &[PingCosts]) -> Option<[f64; PING_COST_KINDS + 1]> {
    const N: usize = PING_COST_KINDS + 1;
    let mut latencies: Vec<f64> = pings.iter().map(|p| p.ns).collect();
    latencies.sort_unstable_by(f64::total_cmp);
    let cut = *latencies.get(((latencies.len() as f64) * PING_COST_FIT_QUANTILE) as usize)?;
    // The normal equations (XᵀX) b = Xᵀy, with a leading 1 for the fixed cost.
    let mut xtx = [[0.0f64; N]; N];
    let mut xty = [0.0f64; N];
    for ping in pings.iter().filter(|p| p.ns < cut) {
        let mut x = [1.0; N];
        x[1..].copy_from_slice(&ping.counts);
        for i in 0..N {
            xty[i] += x[i] * ping.ns;
            for j in 0..N {
                xtx[i][j] += x[i] * x[j];
            }
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..N {
        let pivot = (col..N).max_by(|&a, &b| xtx[a][col].abs().total_cmp(&xtx[b][col].abs()))?;
        if xtx[pivot][col].abs() < 1e-9 {
            return None;
        }
        xtx.swap(col, pivot);
        xty.swap(col, pivot);
        for row in col + 1..N {
            let factor = xtx[row][col] / xtx[col][col];
            for k in col..N {
                xtx[row][k] -= factor * xtx[col][k];
            }
            xty[row] -= factor * xty[col];
        }
    }
    let mut b = [0.0f64; N];
    for row in (0..N).rev() {
        let known: f64 = (row + 1..N).map(|k| xtx[row][k] * b[k]).sum();
        b[row] = (xty[row] - known) / xtx[row][row];
    }
    Some(b)
}

/// The engine's settings: the defaults, or with `PINGPOST_BENCH_EVALUATE_EVERY=1` every matched
/// campaign evaluated instead of the ping tree's walk (for comparing the two in one sitting).
fn config() -> EngineConfig {
    EngineConfig {
        evaluate_every_campaign: std::env::var_os("PINGPOST_BENCH_EVALUATE_EVERY")
            .is_some_and(|v| v != "0"),
        ..EngineConfig::default()
    }
}

/// `PINGPOST_BENCH_HOT_LEADS=n`: every ping takes the highlights (vertical, postal code,
/// attributes, sale mode) and seller of one of the first `n` leads, and keeps its own token and
/// consumer, so that the retry and duplicate checks still see a new lead. With a small `n` the
/// book's data these auctions read stays in the processor's caches: the run bounds what cache
/// misses on the book cost an auction. Unset: every lead its own.
fn hot_leads() -> Option<u64> {
    std::env::var("PINGPOST_BENCH_HOT_LEADS").ok().map(|text| {
        text.parse()
            .ok()
            .filter(|&n: &u64| n > 0)
            .unwrap_or_else(|| panic!("PINGPOST_BENCH_HOT_LEADS={text:?}: want a count above 0"))
    })
}

/// `PINGPOST_BENCH_TRANSPARENT_HUGE_PAGES=1`: keep the kernel's transparent huge pages, which
/// the bench (as the daemon) otherwise turns off once the first book is loaded.
fn keep_huge_pages() -> bool {
    std::env::var_os("PINGPOST_BENCH_TRANSPARENT_HUGE_PAGES").is_some_and(|v| v != "0")
}

/// `PINGPOST_BENCH_PINGS_PER_SECOND=r`: pings a second of virtual time (default 100). The
/// post window and the retention then hold about `r` × 120 s auctions in memory (ended ones at
/// most `AUCTIONS_CLOSED_MAX`), and the warm-up is `r` × 130 s pings long.
fn pings_per_second() -> u64 {
    std::env::var("PINGPOST_BENCH_PINGS_PER_SECOND")
        .ok()
        .map_or(PINGS_PER_SECOND_DEFAULT, |text| {
            text.parse()
                .ok()
                .filter(|&r: &u64| (1..=1_000_000).contains(&r))
                .unwrap_or_else(|| {
                    panic!("PINGPOST_BENCH_PINGS_PER_SECOND={text:?}: want 1 to 1000000")
                })
        })
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap()
}

fn record(histogram: &mut Histogram<u64>, elapsed: Duration) {
    histogram.saturating_record(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
}

/// Resident memory of this process, from `/proc/self/statm` (0 where there is none).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|text| text.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4_096)
}

fn run(label: &str, campaigns: usize, auctions: u64) -> Row {
    let spec = BookSpec::new(BOOK_SEED, campaigns);
    let started = Instant::now();
    let changes = generate(&spec);
    let generate_time = started.elapsed();
    let rules: usize = changes
        .iter()
        .map(|change| match change {
            AdminChange::CampaignPut(put) => put.campaign.territory.len(),
            _ => 0,
        })
        .sum();

    // A one-off compile of the whole book, as a snapshot load or a replay would do it.
    let mut defs = BookDefs::default();
    for change in &changes {
        defs.apply(change).unwrap();
    }
    let started = Instant::now();
    let book = Book::compile(&defs, 1).unwrap();
    let compile = started.elapsed();
    let index_bytes = book.territory.memory_bytes();
    let stats = book.territory.stats();
    drop(book);
    // One realistic edit for the admin timing: the first campaign's daily cap raised.
    let mut edit = defs.campaigns.values().next().cloned().unwrap();
    edit.caps.leads_day += 10;
    drop(defs);
    println!(
        "{label}: {campaigns} campaigns, {rules} territory rules; generate {:.0} ms, compile \
         {:.0} ms; index {:.1} MiB {stats:?}",
        generate_time.as_secs_f64() * 1e3,
        compile.as_secs_f64() * 1e3,
        index_bytes as f64 / f64::from(1 << 20),
    );

    let mut engine = Engine::new(config());
    let load = install_book(&mut engine, changes);
    if !keep_huge_pages() {
        // As the daemon does once its book is loaded (`pingpost::server::memory`).
        stop_transparent_huge_pages().unwrap();
    }
    let rss_bytes_loaded = rss_bytes();
    let started = Instant::now();
    engine
        .handle_admin(
            T0,
            AdminChange::CampaignPut(CampaignPut {
                mode: PutMode::Update,
                campaign: edit,
            }),
        )
        .unwrap();
    let admin = started.elapsed();
    while engine.poll_event().is_some() {}

    let primaries = (spec.campaigns - spec.fallback_campaigns()) as u64;
    let leads = LeadGen::new(LeadSpec::for_book(&spec, LEAD_SEED));
    let hot_leads = hot_leads();
    if let Some(n) = hot_leads {
        println!("{label}: every ping has the highlights of one of the first {n} leads");
    }
    let mut rng = SplitMix64::new(LEAD_SEED ^ 0x9057);
    let mut row = Row {
        label: label.to_owned(),
        campaigns,
        rules,
        generate: generate_time,
        compile,
        load,
        admin,
        index_bytes,
        rss_bytes_loaded,
        rss_bytes_after: 0,
        auctions,
        sold: 0,
        to_fallback: 0,
        rejected: 0,
        matched: 0,
        evaluated: 0,
        eligible: 0,
        matched_per_ping: Histogram::new_with_bounds(1, 1 << 24, 3).unwrap(),
        auction_ns: histogram(),
        ping_only_ns: histogram(),
        warmup_max: Duration::ZERO,
        post_ns: histogram(),
        timeout_ns: histogram(),
        no_sale: Vec::new(),
        auctions_in_memory: 0,
        snapshot_bytes: 0,
        snapshot_copy: Duration::ZERO,
        snapshot_encode: Duration::ZERO,
        snapshot_load: Duration::ZERO,
        ping_costs: Vec::with_capacity(auctions as usize),
    };
    // Reused buffers: outputs and events are moved here inside the timed region and looked
    // at and dropped outside it.
    let mut outputs: Vec<Output> = Vec::with_capacity(64);
    let mut events: Vec<Event> = Vec::with_capacity(64);
    // Posts to send: (when, ping id, lead number, seller).
    let mut posts: VecDeque<(TimeUs, u64, u64, u64)> = VecDeque::new();
    let mut tag = 0u64;

    let pings_per_second = pings_per_second();
    let ping_interval_us = 1_000_000 / pings_per_second;
    let warmup_pings = WARMUP_MS * pings_per_second / 1_000;
    for i in 0..warmup_pings + auctions {
        let now = T0 + i * ping_interval_us;
        let measured = i >= warmup_pings;

        // Expiries and posts that are due, each timed on its own.
        if engine.poll_timeout().is_some_and(|at| at <= now) {
            let started = Instant::now();
            engine.handle_timeout(now);
            outputs.extend(std::iter::from_fn(|| engine.poll_output()));
            events.extend(std::iter::from_fn(|| engine.poll_event()));
            if measured {
                record(&mut row.timeout_ns, started.elapsed());
            }
            outputs.clear();
            events.clear();
        }
        while posts.front().is_some_and(|&(at, ..)| at <= now) {
            let (_, ping_id, lead, seller) = posts.pop_front().unwrap();
            let contact = leads.contact(lead);
            let consent = leads.consent(lead, now);
            tag += 1;
            let started = Instant::now();
            engine.handle_post(now, tag, seller, ping_id, &contact, &consent);
            outputs.extend(std::iter::from_fn(|| engine.poll_output()));
            events.extend(std::iter::from_fn(|| engine.poll_event()));
            if measured {
                record(&mut row.post_ns, started.elapsed());
            }
            outputs.clear();
            events.clear();
        }

        let mut lead = leads.lead(i);
        if let Some(hot) = hot_leads {
            // Lead `i % hot`'s highlights and seller, lead `i`'s token and consumer.
            let like = leads.lead(i % hot);
            lead.seller = like.seller;
            lead.ping.lead = like.ping.lead;
            lead.ping.sale_mode = like.ping.sale_mode;
            lead.ping.shared_buyers_max = like.ping.shared_buyers_max;
        }
        tag += 1;
        let started = Instant::now();
        engine.handle_ping(now, tag, lead.seller, &lead.ping);
        let pinged = started.elapsed();
        outputs.extend(std::iter::from_fn(|| engine.poll_output()));
        events.extend(std::iter::from_fn(|| engine.poll_event()));
        let elapsed = started.elapsed();
        if measured {
            record(&mut row.auction_ns, elapsed);
            record(&mut row.ping_only_ns, pinged);
        } else {
            row.warmup_max = row.warmup_max.max(elapsed);
        }

        for output in outputs.drain(..) {
            let Output::PingAnswer { result, .. } = output else {
                continue;
            };
            match result.outcome {
                PingOutcome::Offer { .. } => {
                    if measured {
                        row.sold += 1;
                    }
                    if rng.percent(POST_PCT) {
                        posts.push_back((now + POST_DELAY_US, result.ping_id, i, lead.seller));
                    }
                }
                PingOutcome::NoSale { reason } if measured => {
                    match row.no_sale.iter_mut().find(|(code, _)| *code == reason.0) {
                        Some((_, count)) => *count += 1,
                        None => row.no_sale.push((reason.0, 1)),
                    }
                }
                PingOutcome::NoSale { .. } => {}
            }
        }
        for event in events.drain(..) {
            match event {
                Event::PingOpened {
                    candidates,
                    offers,
                    excluded,
                    not_reached,
                    ..
                } if measured => {
                    let mut counts = [0.0; PING_COST_KINDS];
                    let is = |reason: ExclusionCode, kinds: &[Exclusion]| {
                        kinds.iter().any(|&kind| reason == kind.into())
                    };
                    for exclusion in &excluded {
                        let kind = if is(exclusion.reason, &[Exclusion::Territory]) {
                            0
                        } else if is(
                            exclusion.reason,
                            &[Exclusion::Paused, Exclusion::Blocked, Exclusion::SaleMode],
                        ) {
                            1
                        } else {
                            2
                        };
                        counts[kind] += 1.0;
                    }
                    counts[3] = (candidates.len() + offers.len()) as f64;
                    row.ping_costs.push(PingCosts {
                        ns: elapsed.as_nanos() as f64,
                        counts,
                    });
                    let evaluated = (candidates.len() + offers.len() + excluded.len()) as u64;
                    let matched = evaluated + u64::from(not_reached);
                    row.matched += matched;
                    row.evaluated += evaluated;
                    row.eligible += (candidates.len() + offers.len()) as u64;
                    row.matched_per_ping.saturating_record(matched.max(1));
                }
                Event::AuctionResolved {
                    resolution: Resolution::Offer { winners, .. },
                    ..
                } if measured => {
                    row.to_fallback += u64::from(winners.iter().all(|w| w.campaign > primaries));
                }
                Event::PingRejected { .. } if measured => row.rejected += 1,
                _ => {}
            }
        }
    }
    row.rss_bytes_after = rss_bytes();
    row.auctions_in_memory = engine.auctions_in_memory();
    let started = Instant::now();
    let image = engine.snapshot_image().unwrap();
    row.snapshot_copy = started.elapsed();
    let started = Instant::now();
    let state = image.encode().unwrap();
    row.snapshot_encode = started.elapsed();
    drop(image);
    row.snapshot_bytes = state.len();
    let started = Instant::now();
    let loaded = Engine::from_snapshot(config(), &state).unwrap();
    row.snapshot_load = started.elapsed();
    assert_eq!(loaded.state_digest(), engine.state_digest());
    row.no_sale
        .sort_unstable_by_key(|&(_, count)| std::cmp::Reverse(count));
    row
}

fn us(histogram: &Histogram<u64>, quantile: f64) -> f64 {
    histogram.value_at_quantile(quantile) as f64 / 1e3
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / f64::from(1 << 20)
}

fn print_tables(rows: &[Row]) {
    println!();
    println!("Book: build time and memory");
    println!(
        "{:>5} {:>9} {:>9} {:>8} {:>11} {:>8} {:>9} {:>10} {:>11} {:>10}",
        "size",
        "campaigns",
        "rules",
        "gen ms",
        "compile ms",
        "load s",
        "admin ms",
        "index MiB",
        "RSS loaded",
        "RSS after"
    );
    for row in rows {
        println!(
            "{:>5} {:>9} {:>9} {:>8.0} {:>11.1} {:>8.2} {:>9.1} {:>10.1} {:>11.0} {:>10.0}",
            row.label,
            row.campaigns,
            row.rules,
            row.generate.as_secs_f64() * 1e3,
            row.compile.as_secs_f64() * 1e3,
            row.load.as_secs_f64(),
            row.admin.as_secs_f64() * 1e3,
            row.index_bytes as f64 / f64::from(1 << 20),
            mib(row.rss_bytes_loaded),
            mib(row.rss_bytes_after),
        );
    }
    println!();
    println!("Auction latency, µs (handle_ping + moving its outputs and events out)");
    println!(
        "{:>5} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>9} {:>16} {:>12}",
        "size",
        "pings",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "mean",
        "ns/match",
        "ping-only p50/99",
        "warm-up max"
    );
    for row in rows {
        let h = &row.auction_ns;
        let pings = row.auctions.max(1) as f64;
        println!(
            "{:>5} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9.1} {:>8.2} {:>9.0} {:>16} {:>12.1}",
            row.label,
            row.auctions,
            us(h, 0.5),
            us(h, 0.9),
            us(h, 0.99),
            us(h, 0.999),
            h.max() as f64 / 1e3,
            h.mean() / 1e3,
            h.mean() / (row.matched as f64 / pings).max(1.0),
            format!(
                "{:.2}/{:.2}",
                us(&row.ping_only_ns, 0.5),
                us(&row.ping_only_ns, 0.99)
            ),
            row.warmup_max.as_secs_f64() * 1e6,
        );
    }
    println!();
    println!("Auction outcomes, and posts and timeouts (µs)");
    println!(
        "{:>5} {:>6} {:>9} {:>6} {:>8} {:>14} {:>9} {:>9} {:>13} {:>16}",
        "size",
        "sold%",
        "fallback%",
        "rej%",
        "matched",
        "matched p50/99",
        "evaluated",
        "eligible",
        "post p50/99",
        "timeout p50/99"
    );
    for row in rows {
        let pings = row.auctions.max(1) as f64;
        println!(
            "{:>5} {:>6.1} {:>9.1} {:>6.1} {:>8.1} {:>14} {:>9.1} {:>9.1} {:>13} {:>16}",
            row.label,
            row.sold as f64 * 100.0 / pings,
            row.to_fallback as f64 * 100.0 / pings,
            row.rejected as f64 * 100.0 / pings,
            row.matched as f64 / pings,
            format!(
                "{}/{}",
                row.matched_per_ping.value_at_quantile(0.5),
                row.matched_per_ping.value_at_quantile(0.99)
            ),
            row.evaluated as f64 / pings,
            row.eligible as f64 / pings,
            format!("{:.1}/{:.1}", us(&row.post_ns, 0.5), us(&row.post_ns, 0.99)),
            format!(
                "{:.1}/{:.1}",
                us(&row.timeout_ns, 0.5),
                us(&row.timeout_ns, 0.99)
            ),
        );
    }
    println!();
    println!("No-sale reasons (code: share of pings)");
    for row in rows {
        let pings = row.auctions.max(1) as f64;
        let reasons: Vec<String> = row
            .no_sale
            .iter()
            .map(|&(code, count)| format!("{code}: {:.1}%", count as f64 * 100.0 / pings))
            .collect();
        println!("{:>5} {}", row.label, reasons.join(", "));
    }
    println!();
    println!(
        "Where an auction's time goes: latency fitted on what it met (least squares over the \
         auctions below p{:.0}), ns; mean count a ping in brackets",
        PING_COST_FIT_QUANTILE * 100.0
    );
    println!(
        "{:>5} {:>11} {:>20} {:>20} {:>20} {:>20}",
        "size",
        "fixed",
        PING_COST_NAMES[0],
        PING_COST_NAMES[1],
        PING_COST_NAMES[2],
        PING_COST_NAMES[3]
    );
    for row in rows {
        let Some(fit) = fit_ping_costs(&row.ping_costs) else {
            println!("{:>5} (the counts do not vary enough to fit)", row.label);
            continue;
        };
        let pings = row.ping_costs.len().max(1) as f64;
        let each: Vec<String> = (0..PING_COST_KINDS)
            .map(|kind| {
                let mean = row.ping_costs.iter().map(|p| p.counts[kind]).sum::<f64>() / pings;
                format!("{:.0} ({mean:.1})", fit[kind + 1])
            })
            .collect();
        println!(
            "{:>5} {:>11.0} {:>20} {:>20} {:>20} {:>20}",
            row.label, fit[0], each[0], each[1], each[2], each[3]
        );
    }
    println!();
    println!(
        "Snapshot of the steady state: copy (the exchange thread's stall), encode (the snapshot \
         thread's), load (a restart's)"
    );
    println!(
        "{:>5} {:>10} {:>10} {:>11} {:>8} {:>13} {:>10} {:>8}",
        "size", "auctions", "MiB", "bytes/auct", "copy ms", "copy µs/auct", "encode ms", "load ms"
    );
    for row in rows {
        let auctions = row.auctions_in_memory.max(1) as f64;
        println!(
            "{:>5} {:>10} {:>10.1} {:>11.0} {:>8.1} {:>13.2} {:>10.1} {:>8.1}",
            row.label,
            row.auctions_in_memory,
            mib(row.snapshot_bytes as u64),
            row.snapshot_bytes as f64 / auctions,
            row.snapshot_copy.as_secs_f64() * 1e3,
            row.snapshot_copy.as_secs_f64() * 1e6 / auctions,
            row.snapshot_encode.as_secs_f64() * 1e3,
            row.snapshot_load.as_secs_f64() * 1e3,
        );
    }
    println!();
    println!(
        "matched: campaigns the territory index returned for a ping (its exclusions included); \
         evaluated: those the auction evaluated or listed (the ping tree's walk never reaches \
         the rest); eligible: those that passed every check and were priced; ns/match: mean latency over \
         mean matched; fallback%: pings sold only to fallback campaigns; rej%: refused before \
         the auction (repeated consumers)."
    );
}

fn main() {
    let quick = std::env::var_os("PINGPOST_BENCH_QUICK").is_some_and(|v| v != "0");
    let auctions: u64 = std::env::var("PINGPOST_BENCH_AUCTIONS")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(if quick { 10_000 } else { 100_000 });
    let sizes = std::env::var("PINGPOST_BENCH_SIZES").unwrap_or_else(|_| "1k,10k,100k".into());
    let mut rows = Vec::new();
    for label in sizes.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let campaigns = match label {
            "1k" => 1_000,
            "10k" => 10_000,
            "100k" => 100_000,
            other => other
                .parse()
                .unwrap_or_else(|_| panic!("unknown size {other:?}")),
        };
        rows.push(run(label, campaigns, auctions));
    }
    print_tables(&rows);
}
