//! The ping tree's walk: an auction of fixed prices evaluates its campaigns in rank order and
//! stops at the winners; a cascade ranks the runners-up when it first needs one. Checked
//! against an engine that evaluates every matched campaign (`evaluate_every_campaign`): the
//! same sales, prices, payouts and cascades, with fewer campaigns evaluated.

use std::borrow::Cow;
use std::collections::HashMap;

use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, SplitMix64, generate};
use pingpost::engine::book::{AdminChange, CompiledCampaign};
use pingpost::engine::events::{Event, Resolution};
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::engine::types::VerticalIx;
use pingpost::protocol::{
    Attributes, Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, Country, DeliveryMode,
    DeliveryOutcome, Effect, ErrorCode, LeadView, PingSaleMode, PostalCode, Pricing, PutMode,
    SaleMode, SaleModes, Seller, SellerPut, Status, Strategy, Symbol, TerritoryArea, TerritoryRule,
    Tier, TraceEventKind, TraceKey, VerticalPut,
};

mod engine_util;
use engine_util::{MS, T0, answered_ping, consent, contact, drain, events};

const SELLER: u64 = 1;
const FALLBACK: u64 = 990;

fn engines() -> (Engine, Engine) {
    let full = EngineConfig {
        evaluate_every_campaign: true,
        ..EngineConfig::default()
    };
    (Engine::new(EngineConfig::default()), Engine::new(full))
}

/// A solar market around Munich of live-delivery buyers with fixed exclusive prices (one
/// campaign each, buyer = campaign - 100) in tier 0 of `strategy`, and a stored fallback at $25.
fn market(engine: &mut Engine, strategy: Strategy, prices: &[(u64, u64)]) {
    let mut changes = vec![
        AdminChange::VerticalPut(VerticalPut {
            mode: PutMode::Create,
            vertical: Symbol::new("solar").expect("symbol"),
            required: Vec::new(),
            tiers: vec![Tier { tier: 0, strategy }],
        }),
        AdminChange::SellerPut(SellerPut {
            mode: PutMode::Create,
            seller: Seller {
                seller_id: SELLER,
                name: Cow::Borrowed("Sunny Leads"),
                status: Status::Active,
                secret: Some(Cow::Borrowed("seller-secret")),
                verticals: vec![Symbol::new("solar").expect("symbol")],
                margin_bps: 1_000,
                margin_fixed: 0,
                floors: Vec::new(),
                buyers_allowed: Vec::new(),
                buyers_blocked: Vec::new(),
            },
        }),
    ];
    let fallback = [(FALLBACK + 100, 2_500)];
    for &(campaign_id, price) in prices.iter().chain(&fallback) {
        let buyer_id = campaign_id - 100;
        changes.push(AdminChange::BuyerPut(BuyerPut {
            mode: PutMode::Create,
            buyer: Buyer {
                buyer_id,
                name: Cow::Owned(format!("Installer {buyer_id}")),
                status: Status::Active,
                secret: Some(Cow::Borrowed("buyer-secret")),
                time_zone: Cow::Borrowed("Europe/Berlin"),
                budget_day: 0,
                budget_month: 0,
                delivery: if buyer_id == FALLBACK {
                    DeliveryMode::Stored
                } else {
                    DeliveryMode::Live
                },
                accept_within_ms: 2_000,
            },
        }));
        changes.push(AdminChange::CampaignPut(CampaignPut {
            mode: PutMode::Create,
            campaign: Campaign {
                campaign_id,
                buyer_id,
                name: Cow::Owned(format!("Campaign {campaign_id}")),
                status: Status::Active,
                vertical: Symbol::new("solar").expect("symbol"),
                role: if buyer_id == FALLBACK {
                    CampaignRole::Fallback
                } else {
                    CampaignRole::Primary
                },
                territory: vec![TerritoryRule {
                    effect: Effect::Include,
                    rule: TerritoryArea::Prefix {
                        country: Country::new("DE").expect("country"),
                        prefix: PostalCode::new("803").expect("prefix"),
                    },
                }],
                filters: Vec::new(),
                schedule: Vec::new(),
                caps: Caps {
                    leads_hour: 0,
                    leads_day: 0,
                    leads_week: 0,
                    leads_month: 0,
                    leads_total: 0,
                    spend_day: 0,
                    spend_month: 0,
                },
                sale_modes: SaleModes::EXCLUSIVE,
                pricing: Pricing::Fixed {
                    exclusive_price: price,
                    shared_price: 0,
                },
                tier: 0,
                weight: 1,
                duplicate_lookback_s: 0,
            },
        }));
    }
    engine
        .handle_admin_batch(T0, changes)
        .expect("the market loads");
    drain(engine);
    events(engine);
}

fn solar_ping() -> pingpost::protocol::Ping<'static> {
    pingpost::protocol::Ping {
        client_token: 0,
        lead: LeadView {
            vertical: Symbol::new("solar").expect("symbol"),
            country: Country::new("DE").expect("country"),
            postal_code: PostalCode::new("80331").expect("postal code"),
            attributes: Attributes::builder()
                .bool("homeowner", true)
                .build()
                .expect("attributes"),
        },
        phone_hash: None,
        email_hash: None,
        sale_mode: PingSaleMode::Exclusive,
        shared_buyers_max: 0,
        timeout_ms: 150,
    }
}

/// Pings, posts, and has every live buyer reject its delivery until the lead is sold or held
/// back. Returns the (buyer, price) of each delivery, in order, and every event.
fn reject_down_the_line(engine: &mut Engine) -> (Vec<(u64, u64)>, Vec<Event>) {
    let mut all = Vec::new();
    engine.handle_ping(T0, 1, SELLER, &solar_ping());
    let ping_id = answered_ping(&drain(engine)).expect("answered");
    all.extend(events(engine));
    engine.handle_post(T0 + 100 * MS, 2, SELLER, ping_id, &contact(), &consent());
    let mut deliveries = Vec::new();
    let mut at = T0 + 200 * MS;
    loop {
        let outputs = drain(engine);
        all.extend(events(engine));
        let Some((buyer, seq, price)) = outputs.iter().find_map(|output| match output {
            Output::Deliver { buyer, delivery } => {
                Some((*buyer, delivery.delivery_seq, delivery.price))
            }
            _ => None,
        }) else {
            break;
        };
        deliveries.push((buyer, price));
        if buyer == FALLBACK {
            break;
        }
        engine.handle_delivery_ack(
            at,
            buyer,
            seq,
            DeliveryOutcome::Reject,
            ErrorCode::REJECT_DUPLICATE,
        );
        at += 100 * MS;
    }
    (deliveries, all)
}

#[test]
fn the_walk_stops_at_the_winner_and_the_cascade_ranks_the_rest_when_it_needs_them() {
    let prices = [(101, 5_000), (102, 4_000), (103, 3_000), (104, 2_000)];
    let (mut walked, mut full) = engines();
    market(&mut walked, Strategy::HighestBid, &prices);
    market(&mut full, Strategy::HighestBid, &prices);
    let (deliveries, walked_events) = reject_down_the_line(&mut walked);
    let (full_deliveries, full_events) = reject_down_the_line(&mut full);

    // Every buyer in line, best price first, then the fallback: the same cascade either way.
    let line = vec![
        (1, 5_000),
        (2, 4_000),
        (3, 3_000),
        (4, 2_000),
        (FALLBACK, 2_500),
    ];
    assert_eq!(deliveries, line);
    assert_eq!(full_deliveries, line);

    // The walk evaluated the winner and the runner-up that prices it; three were not reached.
    let opened = |events: &[Event]| {
        events.iter().find_map(|event| match event {
            Event::PingOpened {
                candidates,
                not_reached,
                ..
            } => Some((candidates.len(), *not_reached)),
            _ => None,
        })
    };
    assert_eq!(opened(&walked_events), Some((2, 3)));
    assert_eq!(opened(&full_events), Some((5, 0)));
    let resolved = |events: &[Event]| {
        events.iter().find_map(|event| match event {
            Event::AuctionResolved {
                resolution:
                    Resolution::Offer {
                        runners_up,
                        runners_up_later,
                        ..
                    },
                ..
            } => Some((runners_up.len(), *runners_up_later)),
            _ => None,
        })
    };
    assert_eq!(resolved(&walked_events), Some((0, true)));
    assert_eq!(resolved(&full_events), Some((4, false)));

    // The first rejection ranked the rest, once: the winner left out, the fallback last.
    let ranked: Vec<Vec<u64>> = walked_events
        .iter()
        .filter_map(|event| match event {
            Event::RunnersUpRanked { runners_up, .. } => {
                Some(runners_up.iter().map(|award| award.campaign).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(ranked, vec![vec![102, 103, 104, FALLBACK + 100]]);
    assert!(
        !full_events
            .iter()
            .any(|event| matches!(event, Event::RunnersUpRanked { .. }))
    );
    assert_eq!(walked.ledger(), full.ledger());

    // Replaying the walked engine's events rebuilds its state, the ranking included.
    let mut replayed = Engine::new(EngineConfig::default());
    market(&mut replayed, Strategy::HighestBid, &prices);
    for event in &walked_events {
        replayed.apply(event);
    }
    assert_eq!(replayed.state_digest(), walked.state_digest());
}

#[test]
fn a_trace_counts_the_campaigns_the_walk_never_reached() {
    let prices = [(101, 5_000), (102, 4_000), (103, 3_000), (104, 2_000)];
    let (mut engine, _) = engines();
    market(&mut engine, Strategy::HighestBid, &prices);
    engine.handle_ping(T0, 1, SELLER, &solar_ping());
    let ping_id = answered_ping(&drain(&mut engine)).expect("answered");
    events(&mut engine);
    let trace = engine.trace(TraceKey::Ping, ping_id).expect("trace");
    let not_reached: Vec<(u64, u16, &str)> = trace
        .events
        .iter()
        .filter(|event| {
            event.kind == TraceEventKind::EXCLUDED && event.code == ErrorCode::EXCLUDED_NOT_REACHED
        })
        .map(|event| (event.party_id, event.code.0, &*event.detail))
        .collect();
    assert_eq!(not_reached.len(), 1, "{:?}", trace.events);
    assert_eq!(not_reached[0].0, 0, "a count, not a campaign");
    assert!(
        not_reached[0].2.starts_with("3 "),
        "the count leads its detail: {:?}",
        not_reached[0].2
    );
}

#[test]
fn round_robin_walks_least_recently_selected_first() {
    // Equal prices: round robin rotates through the buyers, the walk and the full evaluation
    // alike.
    let prices = [(101, 3_000), (102, 3_000), (103, 3_000)];
    let (mut walked, mut full) = engines();
    market(&mut walked, Strategy::RoundRobin, &prices);
    market(&mut full, Strategy::RoundRobin, &prices);
    let mut winners = Vec::new();
    for i in 0..6 {
        for engine in [&mut walked, &mut full] {
            engine.handle_ping(T0 + i * 1_000 * MS, 1 + i, SELLER, &solar_ping());
            drain(engine);
            for event in events(engine) {
                if let Event::AuctionResolved {
                    resolution: Resolution::Offer { winners: w, .. },
                    ..
                } = event
                {
                    winners.push(w[0].campaign);
                }
            }
        }
    }
    let (walked_winners, full_winners): (Vec<_>, Vec<_>) =
        winners.chunks(2).map(|pair| (pair[0], pair[1])).unzip();
    assert_eq!(walked_winners, full_winners);
    assert_eq!(walked_winners, vec![101, 102, 103, 101, 102, 103]);
}

/// One engine's answer and decision per ping: what the seller got, and the resolution.
type Decisions = Vec<(Vec<Output>, Option<Resolution>)>;

/// Drives an engine through `pings` generated leads over a generated book of `campaigns`,
/// posting 30 % of the offers; returns what each ping decided, and per ping the (candidates,
/// excluded, not reached) its opening recorded.
fn generated_run(
    config: EngineConfig,
    campaigns: usize,
    pings: u64,
) -> (Engine, Decisions, Vec<Event>) {
    let spec = BookSpec::new(0xB00C_7E57, campaigns);
    let mut engine = Engine::new(config);
    engine
        .handle_admin_batch(T0, generate(&spec))
        .expect("the generated book loads");
    events(&mut engine);
    let leads = LeadGen::new(LeadSpec::for_book(&spec, 0x1EAD_7E57));
    let mut rng = SplitMix64::new(99);
    let mut decisions = Vec::new();
    let mut opened = Vec::new();
    for i in 0..pings {
        let now = T0 + i * 20 * MS;
        let lead = leads.lead(i);
        engine.handle_ping(now, i, lead.seller, &lead.ping);
        let outputs = drain(&mut engine);
        let mut resolution = None;
        for event in events(&mut engine) {
            match event {
                Event::AuctionResolved { resolution: r, .. } => resolution = Some(r),
                event @ Event::PingOpened { .. } => opened.push(event),
                _ => {}
            }
        }
        if let Some(Resolution::Offer { .. }) = resolution {
            if rng.percent(30) {
                let ping_id = answered_ping(&outputs).expect("answered");
                engine.handle_post(
                    now + MS,
                    1_000_000 + i,
                    lead.seller,
                    ping_id,
                    &leads.contact(i),
                    &leads.consent(i, now),
                );
                drain(&mut engine);
                events(&mut engine);
            }
        }
        decisions.push((outputs, resolution));
    }
    (engine, decisions, opened)
}

#[test]
fn over_a_generated_book_the_walk_sells_exactly_what_evaluating_everything_sells() {
    let full_config = EngineConfig {
        evaluate_every_campaign: true,
        ..EngineConfig::default()
    };
    let (walked, walked_decisions, walked_opened) =
        generated_run(EngineConfig::default(), 3_000, 1_500);
    let (full, full_decisions, full_opened) = generated_run(full_config, 3_000, 1_500);

    let mut sales = 0;
    let mut modes = HashMap::new();
    for (i, (walk, every)) in walked_decisions.iter().zip(&full_decisions).enumerate() {
        assert_eq!(walk.0, every.0, "ping {i}: the seller's answer");
        match (&walk.1, &every.1) {
            (
                Some(Resolution::Offer {
                    sale_mode,
                    winners,
                    payouts,
                    expires_at,
                    ..
                }),
                Some(Resolution::Offer {
                    sale_mode: full_mode,
                    winners: full_winners,
                    payouts: full_payouts,
                    expires_at: full_expires_at,
                    ..
                }),
            ) => {
                assert_eq!(
                    (sale_mode, winners, payouts, expires_at),
                    (full_mode, full_winners, full_payouts, full_expires_at),
                    "ping {i}: the sale"
                );
                sales += 1;
                *modes.entry(format!("{sale_mode:?}")).or_insert(0) += 1;
            }
            (walk, every) => assert_eq!(walk, every, "ping {i}: no sale, or none at all"),
        }
    }
    assert!(sales > 1_000, "most pings sell: {sales}");
    assert!(modes.len() == 2, "both sale modes sold: {modes:?}");
    assert_eq!(walked.ledger(), full.ledger());

    // What the walk recorded is what evaluating everything found, for fewer campaigns.
    let mut walked_evaluated = 0;
    let mut full_evaluated = 0;
    for (walk, every) in walked_opened.iter().zip(&full_opened) {
        let (
            Event::PingOpened {
                candidates,
                excluded,
                not_reached,
                ..
            },
            Event::PingOpened {
                candidates: full_candidates,
                excluded: full_excluded,
                not_reached: 0,
                ..
            },
        ) = (walk, every)
        else {
            panic!("both opened, the full one reaching every campaign");
        };
        assert_eq!(
            candidates.len() + excluded.len() + *not_reached as usize,
            full_candidates.len() + full_excluded.len(),
            "every matched campaign accounted for"
        );
        for candidate in candidates {
            assert!(full_candidates.contains(candidate), "{candidate:?}");
        }
        for exclusion in excluded {
            assert!(full_excluded.contains(exclusion), "{exclusion:?}");
        }
        walked_evaluated += candidates.len() + excluded.len();
        full_evaluated += full_candidates.len() + full_excluded.len();
    }
    assert!(
        walked_evaluated * 3 < full_evaluated,
        "the walk evaluates far fewer: {walked_evaluated} of {full_evaluated}"
    );
}

#[test]
fn a_cascade_ranks_against_the_book_its_auction_started_with() {
    let prices = [(101, 5_000), (102, 4_000), (103, 3_000)];
    let (mut walked, mut full) = engines();
    market(&mut walked, Strategy::HighestBid, &prices);
    market(&mut full, Strategy::HighestBid, &prices);
    let mut lines = Vec::new();
    for engine in [&mut walked, &mut full] {
        engine.handle_ping(T0, 1, SELLER, &solar_ping());
        let ping_id = answered_ping(&drain(engine)).expect("answered");
        // A new book while the auction is in flight: campaign 103 now outbids 102.
        let mut changed = engine
            .definitions()
            .campaigns
            .get(&103)
            .cloned()
            .expect("campaign 103");
        changed.pricing = Pricing::Fixed {
            exclusive_price: 4_900,
            shared_price: 0,
        };
        engine
            .handle_admin(
                T0 + 10 * MS,
                AdminChange::CampaignPut(CampaignPut {
                    mode: PutMode::Update,
                    campaign: changed,
                }),
            )
            .expect("the change applies");
        engine.handle_post(T0 + 100 * MS, 2, SELLER, ping_id, &contact(), &consent());
        let first = drain(engine)
            .iter()
            .find_map(|output| match output {
                Output::Deliver { buyer, delivery } => Some((*buyer, delivery.delivery_seq)),
                _ => None,
            })
            .expect("delivered to the winner");
        assert_eq!(first.0, 1);
        engine.handle_delivery_ack(
            T0 + 200 * MS,
            first.0,
            first.1,
            DeliveryOutcome::Reject,
            ErrorCode::REJECT_DUPLICATE,
        );
        let next = drain(engine)
            .iter()
            .find_map(|output| match output {
                Output::Deliver { buyer, delivery } => Some((*buyer, delivery.price)),
                _ => None,
            })
            .expect("the cascade delivers");
        lines.push(next);
    }
    // The auction's own book: 102 at $40 is next, not 103 at its new price.
    assert_eq!(lines, vec![(2, 4_000), (2, 4_000)]);
}

#[test]
fn the_book_numbers_campaigns_in_ping_tree_order() {
    // The generated book draws each campaign's vertical, role, tier and price at random, so
    // ids interleave them; the book numbers campaigns by vertical (the territory index reads a
    // market's bitset words as one run), then primaries before fallbacks, then tier, then
    // exclusive fixed price descending (none last), then id: each tier of a vertical is one
    // run of indexes, in the order a tier ordered by price asks them.
    let spec = BookSpec::new(0xB00C_7E57, 400);
    let mut engine = Engine::new(EngineConfig::default());
    engine
        .handle_admin_batch(T0, generate(&spec))
        .expect("the generated book loads");
    let book = engine.book();
    let campaigns = book.campaigns();
    assert_eq!(campaigns.len(), 400);
    let mut by_id: Vec<_> = campaigns.iter().map(|c| (c.id, c.vertical)).collect();
    by_id.sort_unstable();
    assert!(
        by_id.windows(2).any(|pair| pair[0].1 > pair[1].1),
        "in id order the verticals interleave"
    );
    for (at, campaign) in campaigns.iter().enumerate() {
        assert_eq!(campaign.ix.0 as usize, at);
        assert_eq!(
            book.campaign_by_id(campaign.id).map(|c| c.ix),
            Some(campaign.ix)
        );
    }
    let key = |c: &CompiledCampaign| {
        (
            c.vertical,
            c.role == CampaignRole::Fallback,
            c.tier,
            std::cmp::Reverse(c.fixed_price(SaleMode::Exclusive)),
            c.id,
        )
    };
    assert!(
        campaigns
            .windows(2)
            .all(|pair| key(&pair[0]) < key(&pair[1])),
        "ordered by vertical, role, tier, exclusive price descending, then id"
    );
    assert!(
        campaigns
            .windows(2)
            .any(|pair| pair[0].vertical == pair[1].vertical && pair[0].id > pair[1].id),
        "a vertical's campaigns are not in id order"
    );
    // Each vertical's runs cover its campaigns, one run per role and tier, in tree order.
    let mut covered = 0;
    for vertical in 0..4 {
        let runs = book.availability.tier_runs(VerticalIx(vertical));
        assert!(!runs.is_empty(), "vertical {vertical} has campaigns");
        for pair in runs.windows(2) {
            assert!((pair[0].fallback, pair[0].tier) < (pair[1].fallback, pair[1].tier));
        }
        for run in runs {
            assert_eq!(run.start as usize, covered);
            for campaign in &campaigns[run.start as usize..run.end as usize] {
                assert_eq!(
                    (
                        campaign.vertical.0,
                        campaign.role == CampaignRole::Fallback,
                        campaign.tier
                    ),
                    (vertical, run.fallback, run.tier)
                );
            }
            covered = run.end as usize;
        }
    }
    assert_eq!(covered, campaigns.len());
    assert!(book.availability.tier_runs(VerticalIx(4)).is_empty());
}
