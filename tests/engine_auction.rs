//! The auction engine driven through its public API with virtual time: the seed's worked
//! example, fallbacks, cascades, caps under load, expiry, and determinism.

use std::borrow::Cow;

use pingpost::engine::book::AdminChange;
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::protocol::{
    Attributes, Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, Country, DeliveryMode,
    DeliveryOutcome, Effect, ErrorCode, LeadView, PingOutcome, PingSaleMode, PostOutcome,
    PostalCode, Pricing, PutMode, SaleMode, SaleModes, Seller, SellerPut, Status, Symbol,
    TerritoryArea, TerritoryRule, Tier, VerticalPut,
};

mod engine_util;
use engine_util::{MS, T0, consent, contact, drain, events};

const SELLER: u64 = 1;
const FALLBACK_BUYER: u64 = 900;

fn admin(engine: &mut Engine, change: AdminChange) {
    engine
        .handle_admin(T0, change)
        .unwrap_or_else(|error| panic!("admin change refused: {error}"));
}

fn vertical(engine: &mut Engine) {
    admin(
        engine,
        AdminChange::VerticalPut(VerticalPut {
            mode: PutMode::Create,
            vertical: Symbol::new("solar").expect("symbol"),
            required: Vec::new(),
            tiers: vec![Tier {
                tier: 0,
                strategy: pingpost::protocol::Strategy::HighestBid,
            }],
        }),
    );
    admin(
        engine,
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
    );
}

fn buyer(engine: &mut Engine, buyer_id: u64, delivery: DeliveryMode) {
    admin(
        engine,
        AdminChange::BuyerPut(BuyerPut {
            mode: PutMode::Create,
            buyer: Buyer {
                buyer_id,
                name: Cow::Owned(format!("Installer {buyer_id}")),
                status: Status::Active,
                secret: Some(Cow::Borrowed("buyer-secret")),
                time_zone: Cow::Borrowed("Europe/Berlin"),
                budget_day: 0,
                budget_month: 0,
                delivery,
                accept_within_ms: 2_000,
            },
        }),
    );
}

fn munich() -> Vec<TerritoryRule<'static>> {
    vec![TerritoryRule {
        effect: Effect::Include,
        rule: TerritoryArea::Prefix {
            country: Country::new("DE").expect("country"),
            prefix: PostalCode::new("803").expect("prefix"),
        },
    }]
}

fn campaign(
    engine: &mut Engine,
    campaign_id: u64,
    buyer_id: u64,
    role: CampaignRole,
    pricing: Pricing,
    caps: Caps,
) {
    admin(
        engine,
        AdminChange::CampaignPut(CampaignPut {
            mode: PutMode::Create,
            campaign: Campaign {
                campaign_id,
                buyer_id,
                name: Cow::Owned(format!("Campaign {campaign_id}")),
                status: Status::Active,
                vertical: Symbol::new("solar").expect("symbol"),
                role,
                territory: munich(),
                filters: Vec::new(),
                schedule: Vec::new(),
                caps,
                sale_modes: SaleModes::EXCLUSIVE,
                pricing,
                tier: 0,
                weight: 1,
                duplicate_lookback_s: 0,
            },
        }),
    );
}

fn no_caps() -> Caps {
    Caps {
        leads_hour: 0,
        leads_day: 0,
        leads_week: 0,
        leads_month: 0,
        leads_total: 0,
        spend_day: 0,
        spend_month: 0,
    }
}

fn live_bid() -> Pricing {
    Pricing::LiveBid {
        bid_min: 1_000,
        bid_max: 10_000,
        adjust_bps: 0,
    }
}

/// The seed's market: six live installers around Munich, and one fixed-price fallback buyer.
fn seed_engine() -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    vertical(&mut engine);
    for buyer_id in 1..=6 {
        buyer(&mut engine, buyer_id, DeliveryMode::Live);
        campaign(
            &mut engine,
            100 + buyer_id,
            buyer_id,
            CampaignRole::Primary,
            live_bid(),
            no_caps(),
        );
    }
    buyer(&mut engine, FALLBACK_BUYER, DeliveryMode::Stored);
    campaign(
        &mut engine,
        999,
        FALLBACK_BUYER,
        CampaignRole::Fallback,
        Pricing::Fixed {
            exclusive_price: 2_500,
            shared_price: 0,
        },
        no_caps(),
    );
    drain(&mut engine);
    engine
}

/// A market of one stored buyer (50) with one fixed-price campaign (500, $30 exclusive).
fn one_fixed_price_campaign(caps: Caps) -> Engine {
    let mut engine = Engine::new(EngineConfig::default());
    vertical(&mut engine);
    buyer(&mut engine, 50, DeliveryMode::Stored);
    campaign(
        &mut engine,
        500,
        50,
        CampaignRole::Primary,
        Pricing::Fixed {
            exclusive_price: 3_000,
            shared_price: 0,
        },
        caps,
    );
    drain(&mut engine);
    engine
}

fn solar_ping(client_token: u64) -> pingpost::protocol::Ping<'static> {
    pingpost::protocol::Ping {
        client_token,
        lead: LeadView {
            vertical: Symbol::new("solar").expect("symbol"),
            country: Country::new("DE").expect("country"),
            postal_code: PostalCode::new("80331").expect("postal code"),
            attributes: Attributes::builder()
                .bool("homeowner", true)
                .decimal("monthly_bill", 14_550, 2)
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

/// Pings the seed lead, answers the offers with the seed's bids ($38, $42, $45 from buyers 1–3;
/// buyers 4–6 pass), and returns the ping id and everything the engine said.
fn seed_auction(engine: &mut Engine) -> (u64, Vec<Output>) {
    engine.handle_ping(T0, 7, SELLER, &solar_ping(0));
    let offers = drain(engine);
    let offered: Vec<(u64, u64, u64)> = offers
        .iter()
        .filter_map(|output| match output {
            Output::Offer { buyer, offer } => {
                // What a buyer sees of the lead is the anonymized view and nothing else.
                assert_eq!(offer.lead.postal_code.as_str(), "80331");
                Some((*buyer, offer.auction_id, offer.campaign_id))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        offered.len(),
        6,
        "six matching buyers are pinged: {offers:?}"
    );
    let ping_id = offered[0].1;
    for (buyer, auction, campaign) in offered {
        let price = match buyer {
            1 => Some(3_800),
            2 => Some(4_200),
            3 => Some(4_500),
            _ => None,
        };
        engine.handle_bid(
            T0 + 20 * MS,
            buyer,
            auction,
            campaign,
            price,
            ErrorCode::NOT_INTERESTED,
        );
    }
    (ping_id, drain(engine))
}

#[test]
fn seed_example_the_45_dollar_bid_wins_and_gets_the_lead() {
    let mut engine = seed_engine();
    let (ping_id, outputs) = seed_auction(&mut engine);

    let answer = outputs
        .iter()
        .find_map(|output| match output {
            Output::PingAnswer {
                request: 7, result, ..
            } => Some(result.clone()),
            _ => None,
        })
        .expect("the seller gets its answer once every buyer has answered");
    match answer.outcome {
        PingOutcome::Offer {
            sale_mode, payouts, ..
        } => {
            assert_eq!(sale_mode, SaleMode::Exclusive);
            // $45 less the seller's 10 % margin.
            assert_eq!(payouts.as_ref(), &[4_050]);
        }
        PingOutcome::NoSale { reason } => panic!("no sale: {reason:?}"),
    }
    let won: Vec<_> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Won { buyer, notice } => Some((*buyer, notice.price)),
            _ => None,
        })
        .collect();
    assert_eq!(won, vec![(3, 4_500)]);
    let lost: Vec<u64> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Lost { buyer, notice } if notice.reason == ErrorCode::OUTBID => Some(*buyer),
            _ => None,
        })
        .collect();
    assert_eq!(lost.len(), 2, "the two outbid bidders hear it: {outputs:?}");
    assert!(
        !outputs.iter().any(|o| matches!(o, Output::Deliver { .. })),
        "no contact data before the post"
    );

    engine.handle_post(T0 + 200 * MS, 8, SELLER, ping_id, &contact(), &consent());
    let outputs = drain(&mut engine);
    let deliveries: Vec<_> = outputs
        .iter()
        .filter_map(|output| match output {
            Output::Deliver { buyer, delivery } => Some((*buyer, delivery.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        deliveries.len(),
        1,
        "only the winner receives the contact record"
    );
    let (buyer, delivery) = &deliveries[0];
    assert_eq!(*buyer, 3);
    assert_eq!(delivery.price, 4_500);
    assert_eq!(delivery.delivery_seq, 1);
    assert_eq!(delivery.contact.phone, "+4989555014200");

    engine.handle_delivery_ack(
        T0 + 300 * MS,
        3,
        delivery.delivery_seq,
        DeliveryOutcome::Accept,
        ErrorCode::NONE,
    );
    let outputs = drain(&mut engine);
    let result = outputs
        .iter()
        .find_map(|output| match output {
            Output::PostAnswer {
                request: 8, result, ..
            } => Some(result.clone()),
            _ => None,
        })
        .expect("the seller hears the sale");
    match result.outcome {
        PostOutcome::Sold {
            payout_total,
            receipts,
            ..
        } => {
            assert_eq!(payout_total, 4_050);
            assert_eq!(receipts.len(), 1);
        }
        PostOutcome::Unsold { reason } => panic!("unsold: {reason:?}"),
    }
    assert_eq!(engine.ledger().sales, 1);
    assert_eq!(engine.ledger().charged, 4_500);
    assert_eq!(engine.ledger().paid_out, 4_050);
}

#[test]
fn seed_example_without_bids_goes_to_the_fixed_price_fallback() {
    let mut engine = seed_engine();
    engine.handle_ping(T0, 7, SELLER, &solar_ping(0));
    let offers = drain(&mut engine);
    for output in offers {
        if let Output::Offer { buyer, offer } = output {
            engine.handle_bid(
                T0 + MS,
                buyer,
                offer.auction_id,
                offer.campaign_id,
                None,
                ErrorCode::NOT_INTERESTED,
            );
        }
    }
    let outputs = drain(&mut engine);
    let answer = outputs
        .iter()
        .find_map(|output| match output {
            Output::PingAnswer { result, .. } => Some(result.clone()),
            _ => None,
        })
        .expect("answer");
    match answer.outcome {
        PingOutcome::Offer { payouts, .. } => assert_eq!(payouts.as_ref(), &[2_250]),
        PingOutcome::NoSale { reason } => panic!("no sale: {reason:?}"),
    }
}

#[test]
fn silent_buyers_time_out_and_the_deadline_resolves_the_auction() {
    let mut engine = seed_engine();
    engine.handle_ping(T0, 7, SELLER, &solar_ping(0));
    drain(&mut engine);
    let deadline = engine.poll_timeout().expect("a bid deadline");
    assert!(
        deadline <= T0 + 150 * MS,
        "bids close before the seller's deadline"
    );
    engine.handle_timeout(deadline);
    let outputs = drain(&mut engine);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::PingAnswer { result, .. }
            if matches!(result.outcome, PingOutcome::Offer { .. }))),
        "the fallback still buys after the silence: {outputs:?}"
    );
}

#[test]
fn a_rejected_delivery_cascades_to_the_next_bidder() {
    let mut engine = seed_engine();
    let (ping_id, _) = seed_auction(&mut engine);
    engine.handle_post(T0 + 200 * MS, 8, SELLER, ping_id, &contact(), &consent());
    let first = drain(&mut engine);
    let seq = first
        .iter()
        .find_map(|o| match o {
            Output::Deliver { buyer: 3, delivery } => Some(delivery.delivery_seq),
            _ => None,
        })
        .expect("delivered to the $45 buyer");
    engine.handle_delivery_ack(
        T0 + 300 * MS,
        3,
        seq,
        DeliveryOutcome::Reject,
        ErrorCode::REJECT_DUPLICATE,
    );
    let next = drain(&mut engine);
    let (buyer, price) = next
        .iter()
        .find_map(|o| match o {
            Output::Deliver { buyer, delivery } => Some((*buyer, delivery.price)),
            _ => None,
        })
        .expect("the runner-up gets the lead");
    assert_eq!((buyer, price), (2, 4_200));
}

#[test]
fn an_unanswered_delivery_cascades_after_its_deadline_and_the_fallback_ends_the_line() {
    let mut engine = seed_engine();
    let (ping_id, _) = seed_auction(&mut engine);
    engine.handle_post(T0 + 200 * MS, 8, SELLER, ping_id, &contact(), &consent());
    drain(&mut engine);
    // Nobody answers: $45, then $42, then $38 time out; the stored fallback takes it.
    let mut buyers = Vec::new();
    for _ in 0..3 {
        let deadline = engine.poll_timeout().expect("an answer deadline");
        engine.handle_timeout(deadline);
        for output in drain(&mut engine) {
            match output {
                Output::Deliver { buyer, .. } => buyers.push(buyer),
                Output::PostAnswer { result, .. } => match result.outcome {
                    PostOutcome::Sold { payout_total, .. } => {
                        assert_eq!(payout_total, 2_250);
                        buyers.push(0);
                    }
                    PostOutcome::Unsold { reason } => panic!("unsold: {reason:?}"),
                },
                _ => {}
            }
        }
    }
    assert_eq!(buyers, vec![2, 1, FALLBACK_BUYER, 0]);
}

#[test]
fn a_daily_cap_counts_reservations_and_expiry_gives_the_unit_back() {
    let mut engine = one_fixed_price_campaign(Caps {
        leads_day: 1,
        ..no_caps()
    });

    engine.handle_ping(T0, 1, SELLER, &solar_ping(0));
    let first = drain(&mut engine);
    assert!(
        first
            .iter()
            .any(|o| matches!(o, Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::Offer { .. })))
    );
    // The unit is reserved, not yet sold: a second ping cannot take it.
    engine.handle_ping(T0 + MS, 2, SELLER, &solar_ping(0));
    let second = drain(&mut engine);
    assert!(
        second.iter().any(|o| matches!(o, Output::PingAnswer { result, .. }
            if matches!(result.outcome, PingOutcome::NoSale { reason } if reason == ErrorCode::CAPS_REACHED))),
        "{second:?}"
    );
    // The first seller never posts: at expiry the reservation is released.
    let expiry = engine.poll_timeout().expect("offer expiry");
    engine.handle_timeout(expiry);
    engine.handle_ping(expiry + MS, 3, SELLER, &solar_ping(0));
    let third = drain(&mut engine);
    assert!(
        third
            .iter()
            .any(|o| matches!(o, Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::Offer { .. }))),
        "{third:?}"
    );
}

#[test]
fn a_retried_ping_gets_the_first_answer_not_a_second_auction() {
    let mut engine = one_fixed_price_campaign(no_caps());
    engine.handle_ping(T0, 1, SELLER, &solar_ping(42));
    engine.handle_ping(T0 + MS, 2, SELLER, &solar_ping(42));
    let answers: Vec<u64> = drain(&mut engine)
        .into_iter()
        .filter_map(|o| match o {
            Output::PingAnswer { result, .. } => Some(result.ping_id),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0], answers[1], "same ping id for the retry");
}

#[test]
fn pre_ping_rejects_before_any_buyer_is_asked() {
    let mut engine = seed_engine();
    let mut ping = solar_ping(0);
    ping.lead.vertical = Symbol::new("mortgage").expect("symbol");
    engine.handle_ping(T0, 1, SELLER, &ping);
    let outputs = drain(&mut engine);
    assert_eq!(outputs.len(), 1, "no offer went out: {outputs:?}");
    assert!(matches!(&outputs[0], Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::NoSale { reason } if reason == ErrorCode::UNKNOWN_VERTICAL)));

    let mut ping = solar_ping(0);
    ping.lead.country = Country::new("US").expect("country");
    ping.lead.postal_code = PostalCode::new("80331").expect("postal code");
    engine.handle_ping(T0, 2, SELLER, &ping);
    let outputs = drain(&mut engine);
    assert!(
        matches!(&outputs[0], Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::NoSale { reason } if reason == ErrorCode::UNKNOWN_POSTAL_CODE)),
        "80331 is not a US ZIP: {outputs:?}"
    );
}

/// Runs the whole seed story (ping, bids, post, a rejection, a timeout, a sale) and returns
/// every output and event, for determinism and replay checks.
fn seed_story() -> (Engine, Vec<Output>, Vec<Event>) {
    let mut engine = seed_engine();
    let mut outputs = Vec::new();
    let (ping_id, auction_outputs) = seed_auction(&mut engine);
    outputs.extend(auction_outputs);
    engine.handle_post(T0 + 200 * MS, 8, SELLER, ping_id, &contact(), &consent());
    outputs.extend(drain(&mut engine));
    engine.handle_delivery_ack(
        T0 + 250 * MS,
        3,
        1,
        DeliveryOutcome::Reject,
        ErrorCode::REJECT_OTHER,
    );
    outputs.extend(drain(&mut engine));
    let deadline = engine.poll_timeout().expect("deadline");
    engine.handle_timeout(deadline);
    outputs.extend(drain(&mut engine));
    let events = events(&mut engine);
    (engine, outputs, events)
}

#[test]
fn the_same_inputs_give_the_same_outputs_and_events() {
    let (_, outputs_a, events_a) = seed_story();
    let (_, outputs_b, events_b) = seed_story();
    assert_eq!(outputs_a, outputs_b);
    assert_eq!(events_a, events_b);
    let json_a = serde_json::to_string(&events_a).expect("events serialize");
    let json_b = serde_json::to_string(&events_b).expect("events serialize");
    assert_eq!(json_a, json_b, "byte for byte");
}

#[test]
fn replaying_the_events_rebuilds_the_same_state() {
    // seed_story's events start with the admin changes that built the book.
    let (engine, _, events) = seed_story();
    assert!(matches!(events.first(), Some(Event::BookChanged { .. })));
    let mut replayed = Engine::new(EngineConfig::default());
    for event in &events {
        replayed.apply(event);
    }
    assert_eq!(replayed.state_digest(), engine.state_digest());
    assert_eq!(replayed.ledger(), engine.ledger());
    assert_eq!(replayed.book().version, engine.book().version);
}

#[test]
fn when_every_buyer_in_line_rejects_the_lead_is_held_back_unsold() {
    let mut engine = Engine::new(EngineConfig::default());
    vertical(&mut engine);
    for buyer_id in 1..=3 {
        buyer(&mut engine, buyer_id, DeliveryMode::Live);
        campaign(
            &mut engine,
            100 + buyer_id,
            buyer_id,
            CampaignRole::Primary,
            live_bid(),
            no_caps(),
        );
    }
    drain(&mut engine);
    engine.handle_ping(T0, 7, SELLER, &solar_ping(0));
    for output in drain(&mut engine) {
        if let Output::Offer { buyer, offer } = output {
            let price = 3_000 + buyer * 100;
            engine.handle_bid(
                T0 + MS,
                buyer,
                offer.auction_id,
                offer.campaign_id,
                Some(price),
                ErrorCode::NONE,
            );
        }
    }
    let ping_id = drain(&mut engine)
        .into_iter()
        .find_map(|o| match o {
            Output::PingAnswer { result, .. } => Some(result.ping_id),
            _ => None,
        })
        .expect("offer");
    engine.handle_post(T0 + 10 * MS, 8, SELLER, ping_id, &contact(), &consent());
    let mut answer = None;
    let mut delivered = Vec::new();
    let mut outputs = drain(&mut engine);
    while answer.is_none() {
        let mut next = None;
        for output in outputs {
            match output {
                Output::Deliver { buyer, delivery } => {
                    delivered.push(buyer);
                    next = Some((buyer, delivery.delivery_seq));
                }
                Output::PostAnswer { result, .. } => answer = Some(result),
                _ => {}
            }
        }
        let Some((buyer, seq)) = next else { break };
        engine.handle_delivery_ack(
            T0 + 20 * MS,
            buyer,
            seq,
            DeliveryOutcome::Reject,
            ErrorCode::REJECT_OTHER,
        );
        outputs = drain(&mut engine);
    }
    assert_eq!(
        delivered,
        vec![3, 2, 1],
        "highest bid first, then the runners-up in order"
    );
    let answer = answer.expect("the seller hears the outcome");
    assert!(
        matches!(answer.outcome, PostOutcome::Unsold { reason } if reason == ErrorCode::CASCADE_EXHAUSTED)
    );
    // Nothing stays reserved for a lead nobody took.
    for campaign_id in 101..=103 {
        let usage = engine
            .campaign_usage(campaign_id, T0 + 30 * MS)
            .expect("campaign");
        assert_eq!(usage.total.leads_used(), 0, "campaign {campaign_id}");
    }
    assert_eq!(engine.ledger().sales, 0);
}

#[test]
fn a_shared_sale_goes_to_several_buyers_each_paying_its_own_price() {
    let mut engine = Engine::new(EngineConfig::default());
    vertical(&mut engine);
    for (buyer_id, shared_price) in [(1u64, 1_500u64), (2, 1_200), (3, 1_000)] {
        buyer(&mut engine, buyer_id, DeliveryMode::Stored);
        admin(
            &mut engine,
            AdminChange::CampaignPut(CampaignPut {
                mode: PutMode::Create,
                campaign: Campaign {
                    campaign_id: 100 + buyer_id,
                    buyer_id,
                    name: Cow::Borrowed("shared"),
                    status: Status::Active,
                    vertical: Symbol::new("solar").expect("symbol"),
                    role: CampaignRole::Primary,
                    territory: munich(),
                    filters: Vec::new(),
                    schedule: Vec::new(),
                    caps: no_caps(),
                    sale_modes: SaleModes::BOTH,
                    pricing: Pricing::Fixed {
                        exclusive_price: 3_000,
                        shared_price,
                    },
                    tier: 0,
                    weight: 1,
                    duplicate_lookback_s: 0,
                },
            }),
        );
    }
    drain(&mut engine);
    let mut ping = solar_ping(0);
    ping.sale_mode = PingSaleMode::Either;
    ping.shared_buyers_max = 3;
    engine.handle_ping(T0, 7, SELLER, &ping);
    let answer = drain(&mut engine)
        .into_iter()
        .find_map(|o| match o {
            Output::PingAnswer { result, .. } => Some(result),
            _ => None,
        })
        .expect("answer");
    // Exclusive would bring 3,000; three shared sales bring 3,700: shared wins.
    let PingOutcome::Offer {
        sale_mode, payouts, ..
    } = answer.outcome
    else {
        panic!("no sale");
    };
    assert_eq!(sale_mode, SaleMode::Shared);
    assert_eq!(payouts.as_ref(), &[1_350, 1_080, 900]);
    engine.handle_post(T0 + MS, 8, SELLER, answer.ping_id, &contact(), &consent());
    let outputs = drain(&mut engine);
    let mut buyers: Vec<u64> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Deliver { buyer, .. } => Some(*buyer),
            _ => None,
        })
        .collect();
    buyers.sort_unstable();
    assert_eq!(buyers, vec![1, 2, 3]);
    let sold = outputs.iter().find_map(|o| match o {
        Output::PostAnswer { result, .. } => Some(result.clone()),
        _ => None,
    });
    assert!(
        matches!(sold.map(|r| r.outcome), Some(PostOutcome::Sold { payout_total: 3_330, ref receipts, .. }) if receipts.len() == 3)
    );
}

#[test]
fn ended_auctions_are_forgotten_after_the_retention_time() {
    let mut engine = seed_engine();
    engine.handle_ping(T0, 1, SELLER, &solar_ping(0));
    drain(&mut engine);
    let deadline = engine.poll_timeout().expect("deadline");
    engine.handle_timeout(deadline);
    let expiry = engine.poll_timeout().expect("expiry");
    engine.handle_timeout(expiry);
    drain(&mut engine);
    assert_eq!(engine.auctions_in_memory(), 1);
    let later = expiry + u64::from(pingpost::limits::AUCTION_RETENTION_MS) * MS + 1;
    engine.handle_ping(later, 2, SELLER, &solar_ping(0));
    assert_eq!(
        engine.auctions_in_memory(),
        1,
        "the old auction is gone, the new one is there"
    );
}

mod caps_never_overrun {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Step {
        Ping,
        Post(usize),
        Accept(usize),
        Reject(usize),
        Advance(u64),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => Just(Step::Ping),
            2 => (0usize..8).prop_map(Step::Post),
            2 => (0usize..8).prop_map(Step::Accept),
            1 => (0usize..8).prop_map(Step::Reject),
            // Up to 7 hours: crosses hours and, with several steps, local days.
            1 => (1u64..25_200_000_000).prop_map(Step::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

        /// Random interleavings of pings, posts, acceptances, rejections and the passage of
        /// time (offers expiring, deliveries timing out, periods rolling over) never put a
        /// campaign's committed + reserved leads or a buyer's spend above its limits.
        #[test]
        fn under_random_interleavings(steps in proptest::collection::vec(step(), 1..80)) {
            let mut engine = Engine::new(EngineConfig::default());
            vertical(&mut engine);
            for buyer_id in 1..=3u64 {
                admin(&mut engine, AdminChange::BuyerPut(BuyerPut {
                    mode: PutMode::Create,
                    buyer: Buyer {
                        buyer_id,
                        name: Cow::Borrowed("capped"),
                        status: Status::Active,
                        secret: None,
                        time_zone: Cow::Borrowed("America/Denver"),
                        budget_day: 9_000,
                        budget_month: 0,
                        delivery: DeliveryMode::Live,
                        accept_within_ms: 2_000,
                    },
                }));
                campaign(&mut engine, 100 + buyer_id, buyer_id, CampaignRole::Primary,
                    Pricing::Fixed { exclusive_price: 2_000 + buyer_id * 500, shared_price: 0 },
                    Caps { leads_hour: 2, leads_day: 3, ..no_caps() });
            }
            drain(&mut engine);
            let mut now = T0;
            let mut offers: Vec<u64> = Vec::new();
            let mut deliveries: Vec<(u64, u64)> = Vec::new();
            let mut token = 0;
            for step in steps {
                match step {
                    Step::Ping => {
                        token += 1;
                        engine.handle_ping(now, token, SELLER, &solar_ping(token));
                    }
                    Step::Post(i) if !offers.is_empty() => {
                        let ping_id = offers.remove(i % offers.len());
                        engine.handle_post(now, 0, SELLER, ping_id, &contact(), &consent());
                    }
                    Step::Accept(i) | Step::Reject(i) if !deliveries.is_empty() => {
                        let (buyer, seq) = deliveries.remove(i % deliveries.len());
                        let outcome = if matches!(step, Step::Accept(_)) {
                            DeliveryOutcome::Accept
                        } else {
                            DeliveryOutcome::Reject
                        };
                        engine.handle_delivery_ack(now, buyer, seq, outcome, ErrorCode::REJECT_OTHER);
                    }
                    Step::Advance(us) => {
                        now += us;
                        engine.handle_timeout(now);
                    }
                    _ => {}
                }
                for output in drain(&mut engine) {
                    match output {
                        Output::PingAnswer { result, .. } => {
                            if matches!(result.outcome, PingOutcome::Offer { .. }) {
                                offers.push(result.ping_id);
                            }
                        }
                        Output::Deliver { buyer, delivery } => deliveries.push((buyer, delivery.delivery_seq)),
                        _ => {}
                    }
                }
                for buyer_id in 1..=3u64 {
                    let usage = engine.campaign_usage(100 + buyer_id, now).expect("campaign");
                    prop_assert!(usage.hour.leads_used() <= 2, "hour cap: {usage:?}");
                    prop_assert!(usage.day.leads_used() <= 3, "day cap: {usage:?}");
                    let budget = engine.budget_usage(buyer_id, now).expect("buyer");
                    prop_assert!(budget.day.spend_used() <= 9_000, "budget: {budget:?}");
                }
            }
        }
    }
}

#[test]
fn a_leads_trace_tells_its_life_with_every_left_out_campaign_and_why() {
    use pingpost::protocol::{TraceEventKind as Kind, TraceKey};

    let mut engine = seed_engine();
    let (ping_id, _) = seed_auction(&mut engine);
    engine.handle_post(T0 + 200 * MS, 8, SELLER, ping_id, &contact(), &consent());
    drain(&mut engine);
    engine.handle_delivery_ack(
        T0 + 300 * MS,
        3,
        1,
        DeliveryOutcome::Accept,
        ErrorCode::NONE,
    );
    drain(&mut engine);

    let by_ping = engine
        .trace(TraceKey::Ping, ping_id)
        .expect("trace by ping");
    let by_lead = engine
        .trace(TraceKey::Lead, by_ping.lead_id)
        .expect("trace by lead");
    assert_eq!(by_ping, by_lead);
    let kinds: Vec<Kind> = by_ping.events.iter().map(|e| e.kind).collect();
    let count = |kind: Kind| kinds.iter().filter(|&&k| k == kind).count();
    assert_eq!(kinds.first(), Some(&Kind::PINGED));
    assert_eq!(count(Kind::OFFERED), 6);
    assert_eq!(count(Kind::BID), 3);
    assert_eq!(count(Kind::NO_BID), 3);
    let winner = by_ping
        .events
        .iter()
        .find(|e| e.kind == Kind::WINNER_CHOSEN)
        .expect("winner");
    assert_eq!((winner.party_id, winner.amount), (103, 4_500));
    for kind in [
        Kind::RESERVED,
        Kind::POSTED,
        Kind::DELIVERED,
        Kind::COMMITTED,
        Kind::SOLD,
    ] {
        assert_eq!(count(kind), 1, "{kind:?} in {kinds:?}");
    }
    // Buyers 4-6 passed: each shows up as left out with the no-bid code.
    let no_bid = by_ping
        .events
        .iter()
        .filter(|e| e.kind == Kind::EXCLUDED && e.code == ErrorCode::EXCLUDED_NO_BID)
        .count();
    assert_eq!(no_bid, 3);
    let mut times: Vec<u64> = by_ping.events.iter().map(|e| e.at).collect();
    let sorted = {
        times.sort_unstable();
        times.clone()
    };
    assert_eq!(times, sorted, "oldest first");
}

#[test]
fn a_retry_without_a_token_is_known_by_its_consumer_and_lead() {
    use pingpost::protocol::Hash32;

    let mut engine = one_fixed_price_campaign(no_caps());
    let mut ping = solar_ping(0);
    ping.phone_hash = Some(Hash32([7; 32]));
    engine.handle_ping(T0, 1, SELLER, &ping);
    engine.handle_ping(T0 + MS, 2, SELLER, &ping);
    let mut other = ping.clone();
    other.phone_hash = Some(Hash32([8; 32]));
    engine.handle_ping(T0 + 2 * MS, 3, SELLER, &other);
    let answers: Vec<(u64, u64)> = drain(&mut engine)
        .into_iter()
        .filter_map(|o| match o {
            Output::PingAnswer {
                request, result, ..
            } => Some((request, result.ping_id)),
            _ => None,
        })
        .collect();
    assert_eq!(answers.len(), 3);
    assert_eq!(
        answers[0].1, answers[1].1,
        "the retry gets the first answer"
    );
    assert_ne!(
        answers[2].1, answers[0].1,
        "another consumer gets its own auction"
    );
}

#[test]
fn an_admin_batch_is_all_or_nothing() {
    let mut engine = seed_engine();
    let version = engine.book().version;
    let good = AdminChange::SetStatus(pingpost::protocol::SetStatus {
        target: pingpost::protocol::StatusTarget::Campaign,
        id: 101,
        status: Status::Paused,
    });
    let bad = AdminChange::CampaignRemove {
        campaign_id: 424_242,
    };
    let error = engine
        .handle_admin_batch(T0, vec![good.clone(), bad])
        .expect_err("an unknown campaign refuses the batch");
    assert_eq!(error.code, ErrorCode::NOT_FOUND);
    assert_eq!(engine.book().version, version, "nothing changed");
    assert!(engine.book().campaign_by_id(101).expect("campaign").active);
    let version = engine.handle_admin_batch(T0, vec![good]).expect("applies");
    assert_eq!(engine.book().version, version);
    assert!(!engine.book().campaign_by_id(101).expect("campaign").active);
}

#[test]
fn a_trace_in_memory_lists_the_first_exclusions_and_counts_the_rest_by_reason() {
    use pingpost::bookgen::{BookSpec, LeadGen, LeadSpec, generate};
    use pingpost::limits::TRACE_EXCLUSIONS_LISTED_MAX;
    use pingpost::protocol::{TraceEventKind as Kind, TraceKey};

    let spec = BookSpec::new(7, 2_000);
    let mut engine = Engine::new(EngineConfig::default());
    engine
        .handle_admin_batch(T0, generate(&spec))
        .expect("the generated book loads");
    events(&mut engine);
    let leads = LeadGen::new(LeadSpec::for_book(&spec, 11));
    let mut checked = 0;
    for i in 0..400_u64 {
        let lead = leads.lead(i);
        engine.handle_ping(T0 + i * MS, i, lead.seller, &lead.ping);
        drain(&mut engine);
        let Some(Event::PingOpened {
            ping_id,
            excluded,
            not_reached,
            ..
        }) = events(&mut engine)
            .into_iter()
            .find(|e| matches!(e, Event::PingOpened { .. }))
        else {
            continue;
        };
        if excluded.len() <= TRACE_EXCLUSIONS_LISTED_MAX {
            continue;
        }
        let trace = engine.trace(TraceKey::Ping, ping_id).expect("trace");
        // After PINGED: the ping's first exclusions one by one, then its summaries.
        let after_pinged = &trace.events[1..];
        let listed: Vec<u64> = after_pinged[..TRACE_EXCLUSIONS_LISTED_MAX]
            .iter()
            .map(|e| {
                assert_eq!(e.kind, Kind::EXCLUDED);
                e.party_id
            })
            .collect();
        let summaries: Vec<_> = after_pinged[TRACE_EXCLUSIONS_LISTED_MAX..]
            .iter()
            .take_while(|e| e.kind == Kind::EXCLUDED && e.party_id == 0)
            .collect();
        let first: Vec<u64> = excluded[..TRACE_EXCLUSIONS_LISTED_MAX]
            .iter()
            .map(|e| e.campaign)
            .collect();
        assert_eq!(listed, first, "the first ones one by one");
        // The summaries name a reason and how many more: together, every exclusion.
        let summarized: u64 = summaries
            .iter()
            .map(|e| {
                let count: u64 = e
                    .detail
                    .split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a summary starts with its count");
                // The ping tree's walk counts the campaigns it never reached without listing
                // them.
                let reason_count = if e.code == ErrorCode::EXCLUDED_NOT_REACHED {
                    u64::from(not_reached)
                } else {
                    excluded[TRACE_EXCLUSIONS_LISTED_MAX..]
                        .iter()
                        .filter(|x| x.reason.0 == e.code.0)
                        .count() as u64
                };
                assert_eq!(count, reason_count, "{}", e.detail);
                count
            })
            .sum();
        assert_eq!(
            listed.len() as u64 + summarized,
            excluded.len() as u64 + u64::from(not_reached),
            "nothing lost from the count"
        );
        checked += 1;
    }
    assert!(
        checked > 10,
        "the book leaves many campaigns out of some auctions"
    );
}
