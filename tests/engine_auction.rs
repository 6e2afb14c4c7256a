//! The auction engine driven through its public API with virtual time: the seed's worked
//! example, fallbacks, cascades, caps under load, expiry, and determinism.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use pingpost::engine::book::AdminChange;
use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, EngineConfig, Output};
use pingpost::protocol::{
    Attributes, Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, Consent, Contact,
    Country, DeliveryMode, DeliveryOutcome, Effect, ErrorCode, LeadView, PingOutcome, PingSaleMode,
    PostOutcome, PostalCode, Pricing, PutMode, SaleMode, SaleModes, Seller, SellerPut, Status,
    Symbol, TerritoryArea, TerritoryRule, Tier, VerticalPut,
};

/// 2026-11-23 14:00 UTC, a Monday afternoon in Munich: every schedule below is open.
const T0: u64 = 1_795_442_400_000_000;
const MS: u64 = 1_000;
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

fn contact() -> Contact<'static> {
    Contact {
        first_name: Cow::Borrowed("Jana"),
        last_name: Cow::Borrowed("Muster"),
        phone: Cow::Borrowed("+4989555014200"),
        email: Cow::Borrowed("jana.muster@example.com"),
        street: Cow::Borrowed("Marienplatz 8"),
        city: Cow::Borrowed("München"),
        region: Cow::Borrowed("BY"),
    }
}

fn consent() -> Consent<'static> {
    Consent {
        certificate_id: Cow::Borrowed("cert-7d1c"),
        text_version: Cow::Borrowed("solar-2026-03"),
        consented_at: T0 - 60_000_000,
        ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        user_agent: Cow::Borrowed("Mozilla/5.0"),
        page_url: Cow::Borrowed("https://quotes.example.com/solar"),
    }
}

fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

fn events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
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
    assert_eq!(offered.len(), 6, "six matching buyers are pinged: {offers:?}");
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
            Output::PingAnswer { request: 7, result, .. } => Some(result.clone()),
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
    assert_eq!(deliveries.len(), 1, "only the winner receives the contact record");
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
            Output::PostAnswer { request: 8, result, .. } => Some(result.clone()),
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
    assert!(deadline <= T0 + 150 * MS, "bids close before the seller's deadline");
    engine.handle_timeout(deadline);
    let outputs = drain(&mut engine);
    assert!(
        outputs.iter().any(|o| matches!(o, Output::PingAnswer { result, .. }
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
        Caps {
            leads_day: 1,
            ..no_caps()
        },
    );
    drain(&mut engine);

    engine.handle_ping(T0, 1, SELLER, &solar_ping(0));
    let first = drain(&mut engine);
    assert!(first.iter().any(|o| matches!(o, Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::Offer { .. }))));
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
    assert!(third.iter().any(|o| matches!(o, Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::Offer { .. }))), "{third:?}");
}

#[test]
fn a_retried_ping_gets_the_first_answer_not_a_second_auction() {
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
        no_caps(),
    );
    drain(&mut engine);
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
    assert!(matches!(&outputs[0], Output::PingAnswer { result, .. }
        if matches!(result.outcome, PingOutcome::NoSale { reason } if reason == ErrorCode::UNKNOWN_POSTAL_CODE)),
        "80331 is not a US ZIP: {outputs:?}");
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
    engine.handle_delivery_ack(T0 + 250 * MS, 3, 1, DeliveryOutcome::Reject, ErrorCode::REJECT_OTHER);
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
