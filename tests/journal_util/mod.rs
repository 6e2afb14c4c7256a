//! What the journal tests share: a seeded engine workload over a generated book (pings, live
//! bids, posts, accepted and rejected deliveries, expiries), a small payload type for tests of
//! the journal's own mechanics, and directory helpers.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::path::{Path, PathBuf};

use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, SplitMix64, generate};
use pingpost::engine::book::AdminChange;
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::journal::JournalRecord;
use pingpost::protocol::{CampaignPut, DeliveryOutcome, ErrorCode, PingOutcome, PutMode};
use serde::{Deserialize, Serialize};

/// Tuesday 2026-11-24 18:00 UTC: business hours across the US.
pub const T0: u64 = 1_795_543_200_000_000;
pub const MS: u64 = 1_000;

/// Drives an engine through `pings` pings of a generated 200-campaign book (40 % live buyers)
/// with seeded randomness, handing every event to `journal` as it is polled, the way the
/// daemon's engine thread does. Returns the engine.
pub fn drive(seed: u64, pings: u64, journal: impl FnMut(Event)) -> Engine {
    drive_with(seed, pings, journal, |_, _| {})
}

/// [`drive`], calling `between(step, engine)` at each step before its ping, when every event
/// so far has gone to `journal`: the point at which a daemon could snapshot the engine (and
/// `between` may replace it, to check that a restored engine carries on the same). Every 450
/// pings an admin change raises a campaign's daily cap, so that auctions in flight hold an
/// older book version.
pub fn drive_with(
    seed: u64,
    pings: u64,
    mut journal: impl FnMut(Event),
    mut between: impl FnMut(u64, &mut Engine),
) -> Engine {
    let mut spec = BookSpec::new(seed, 200);
    spec.live_share_pct = 40;
    let mut engine = Engine::new(EngineConfig::default());
    engine
        .handle_admin_batch(T0, generate(&spec))
        .expect("the generated book loads");
    while let Some(event) = engine.poll_event() {
        journal(event);
    }
    let leads = LeadGen::new(LeadSpec::for_book(&spec, seed ^ 0x1EAD));
    let mut rng = SplitMix64::new(seed ^ 0xD21E);
    // (when, ping id, lead number, seller)
    let mut posts: VecDeque<(u64, u64, u64, u64)> = VecDeque::new();
    // (when, buyer, delivery sequence)
    let mut acks: VecDeque<(u64, u64, u64)> = VecDeque::new();
    // (when, buyer, ping id, campaign, floor)
    let mut bids: VecDeque<(u64, u64, u64, u64, u64)> = VecDeque::new();
    let mut lead_of_ping = std::collections::HashMap::new();
    let mut tag = 0;
    let mut now = T0;
    let poll = |engine: &mut Engine, journal: &mut dyn FnMut(Event)| {
        while let Some(event) = engine.poll_event() {
            journal(event);
        }
        std::iter::from_fn(|| engine.poll_output()).collect::<Vec<_>>()
    };
    for i in 0..pings {
        now += 10 * MS + rng.below(20 * MS);
        let mut outputs = Vec::new();
        if engine.poll_timeout().is_some_and(|at| at <= now) {
            engine.handle_timeout(now);
            outputs.extend(poll(&mut engine, &mut journal));
        }
        while bids.front().is_some_and(|b| b.0 <= now) {
            let Some((_, buyer, ping_id, campaign, floor)) = bids.pop_front() else {
                break;
            };
            let price = (rng.percent(80)).then(|| floor + rng.below(3_000));
            engine.handle_bid(now, buyer, ping_id, campaign, price, ErrorCode::NONE);
            outputs.extend(poll(&mut engine, &mut journal));
        }
        while posts.front().is_some_and(|p| p.0 <= now) {
            let Some((_, ping_id, lead, seller)) = posts.pop_front() else {
                break;
            };
            tag += 1;
            let contact = leads.contact(lead);
            let consent = leads.consent(lead, now);
            engine.handle_post(now, tag, seller, ping_id, &contact, &consent);
            outputs.extend(poll(&mut engine, &mut journal));
        }
        while acks.front().is_some_and(|a| a.0 <= now) {
            let Some((_, buyer, seq)) = acks.pop_front() else {
                break;
            };
            let outcome = if rng.percent(85) {
                DeliveryOutcome::Accept
            } else {
                DeliveryOutcome::Reject
            };
            engine.handle_delivery_ack(now, buyer, seq, outcome, ErrorCode::REJECT_OTHER);
            outputs.extend(poll(&mut engine, &mut journal));
        }
        if i % 450 == 225 {
            let defs = engine.definitions();
            let n = defs.campaigns.len();
            let mut edit = defs
                .campaigns
                .values()
                .nth((i / 450) as usize % n)
                .cloned()
                .expect("a campaign");
            // A cap of 0 is none: only an existing cap is raised.
            edit.caps.leads_day += u32::from(edit.caps.leads_day != 0);
            engine
                .handle_admin(
                    now,
                    AdminChange::CampaignPut(CampaignPut {
                        mode: PutMode::Update,
                        campaign: edit,
                    }),
                )
                .expect("the edit applies");
            outputs.extend(poll(&mut engine, &mut journal));
        }
        between(i, &mut engine);
        let lead = leads.lead(i);
        tag += 1;
        engine.handle_ping(now, tag, lead.seller, &lead.ping);
        outputs.extend(poll(&mut engine, &mut journal));
        for output in outputs {
            match output {
                Output::PingAnswer { result, seller, .. }
                    if matches!(result.outcome, PingOutcome::Offer { .. }) && rng.percent(60) =>
                {
                    let lead = lead_of_ping.get(&result.ping_id).copied().unwrap_or(i);
                    posts.push_back((now + 500 * MS, result.ping_id, lead, seller));
                }
                Output::Offer { buyer, offer } => {
                    lead_of_ping.insert(offer.auction_id, i);
                    if rng.percent(90) {
                        bids.push_back((
                            now + 5 * MS,
                            buyer,
                            offer.auction_id,
                            offer.campaign_id,
                            offer.price_floor,
                        ));
                    }
                }
                Output::Deliver { buyer, delivery } if rng.percent(90) => {
                    acks.push_back((now + 300 * MS, buyer, delivery.delivery_seq));
                }
                _ => {}
            }
        }
    }
    // Let every deadline pass, so offers expire and deliveries time out.
    now += 10 * 60 * 1_000 * MS;
    engine.handle_timeout(now);
    poll(&mut engine, &mut journal);
    engine
}

/// A small payload for tests of the journal's mechanics (framing, chain, recovery), which do
/// not need the engine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub at: u64,
    pub n: u64,
    pub text: String,
}

impl JournalRecord for Note {
    const SCHEMA_VERSION: u16 = 1;

    fn record_type(&self) -> u16 {
        1
    }

    fn timestamp_us(&self) -> u64 {
        self.at
    }
}

pub fn note(n: u64) -> Note {
    Note {
        at: T0 + n * MS,
        n,
        text: format!("note number {n} {}", "x".repeat((n % 7) as usize * 5)),
    }
}

/// The directory's segment files, in order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Copies the files of `from` into a fresh temporary directory.
pub fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().expect("temp dir");
    for entry in std::fs::read_dir(from).expect("list") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, to.path().join(path.file_name().expect("name"))).expect("copy");
    }
    to
}
