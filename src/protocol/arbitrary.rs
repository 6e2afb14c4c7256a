//! proptest strategies for every protocol type and message, for the codec's property tests and
//! any other in-crate test that needs valid messages.
//!
//! Every strategy yields only values the encoder accepts (lists within their maxima, strings
//! within their byte limits, ids non-zero where the spec says so), so `encode → decode` must
//! give back exactly what was generated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use proptest::strategy::{Strategy, Union};

use super::book;
use super::*;
use crate::limits::{MONEY_MAX, SHARED_BUYERS_MAX};

/// Text of at most `max` bytes: usually short and of any characters (multi-byte included),
/// sometimes exactly `max` bytes, to exercise the boundary.
pub fn text(max: usize) -> BoxedStrategy<Cow<'static, str>> {
    let short = vec(any::<char>(), 0..=max.min(12)).prop_map(move |chars| {
        let mut text = String::new();
        for c in chars {
            if text.len() + c.len_utf8() > max {
                break;
            }
            text.push(c);
        }
        Cow::Owned(text)
    });
    prop_oneof![6 => short, 1 => Just(Cow::Owned("x".repeat(max)))].boxed()
}

pub fn symbol() -> impl Strategy<Value = Symbol<'static>> {
    "[a-z0-9_]{1,32}".prop_map(|s| Symbol::new(s).unwrap())
}

pub fn postal_code() -> impl Strategy<Value = PostalCode<'static>> {
    "[A-Z0-9 -]{1,16}".prop_map(|s| PostalCode::new(s).unwrap())
}

pub fn country() -> impl Strategy<Value = Country> {
    "[A-Z]{2}".prop_map(|s| Country::new(&s).unwrap())
}

pub fn currency() -> impl Strategy<Value = Currency> {
    "[A-Z]{3}".prop_map(|s| Currency::new(&s).unwrap())
}

pub fn money() -> impl Strategy<Value = Money> {
    prop_oneof![0..=10_000_000u64, Just(MONEY_MAX), 0..=MONEY_MAX]
}

pub fn code() -> impl Strategy<Value = ErrorCode> {
    any::<u16>().prop_map(ErrorCode)
}

pub fn hash() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>().prop_map(Hash32)
}

pub fn ip() -> impl Strategy<Value = IpAddr> {
    any::<IpAddr>()
}

fn non_zero() -> impl Strategy<Value = u64> {
    1..=u64::MAX
}

#[derive(Debug, Clone)]
enum Value {
    Integer(i64),
    Decimal(i64, u8),
    String(Cow<'static, str>),
    Bool(bool),
    Enum(Symbol<'static>),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::Integer),
        (any::<i64>(), 0..=9u8).prop_map(|(m, s)| Value::Decimal(m, s)),
        text(256).prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        symbol().prop_map(Value::Enum),
    ]
}

fn build_attributes(entries: BTreeMap<Symbol<'static>, Value>) -> Attributes<'static> {
    let mut builder = Attributes::builder();
    for (key, value) in entries {
        let key = key.as_str().to_owned();
        builder = match value {
            Value::Integer(v) => builder.integer(key, v),
            Value::Decimal(m, s) => builder.decimal(key, m, s),
            Value::String(v) => builder.string(key, v.into_owned()),
            Value::Bool(v) => builder.bool(key, v),
            Value::Enum(v) => builder.enum_value(key, v.as_str()),
        };
    }
    builder.build().unwrap()
}

pub fn attributes() -> impl Strategy<Value = Attributes<'static>> {
    btree_map(symbol(), value(), 0..8).prop_map(build_attributes)
}

prop_compose! {
    pub fn lead_view()(vertical in symbol(), country in country(), postal_code in postal_code(),
                       attributes in attributes()) -> LeadView<'static> {
        LeadView { vertical, country, postal_code, attributes }
    }
}

prop_compose! {
    pub fn contact()(first_name in text(64), last_name in text(64), phone in text(20), email in text(254),
                     street in text(128), city in text(64), region in text(64)) -> Contact<'static> {
        Contact { first_name, last_name, phone, email, street, city, region }
    }
}

prop_compose! {
    pub fn consent()(certificate_id in text(256), text_version in text(64), consented_at in any::<u64>(),
                     ip in ip(), user_agent in text(512), page_url in text(512)) -> Consent<'static> {
        Consent { certificate_id, text_version, consented_at, ip, user_agent, page_url }
    }
}

fn sale_mode() -> impl Strategy<Value = SaleMode> {
    prop_oneof![Just(SaleMode::Exclusive), Just(SaleMode::Shared)]
}

fn ping_sale_mode_and_max() -> impl Strategy<Value = (PingSaleMode, u8)> {
    prop_oneof![
        Just((PingSaleMode::Exclusive, 0)),
        (1..=SHARED_BUYERS_MAX).prop_map(|n| (PingSaleMode::Shared, n)),
        (1..=SHARED_BUYERS_MAX).prop_map(|n| (PingSaleMode::Either, n)),
    ]
}

prop_compose! {
    pub fn ping()(client_token in any::<u64>(), lead in lead_view(), phone_hash in proptest::option::of(hash()),
                  email_hash in proptest::option::of(hash()), (sale_mode, shared_buyers_max) in ping_sale_mode_and_max(),
                  timeout_ms in any::<u32>()) -> Ping<'static> {
        Ping { client_token, lead, phone_hash, email_hash, sale_mode, shared_buyers_max, timeout_ms }
    }
}

fn login() -> impl Strategy<Value = Message<'static>> {
    (
        prop_oneof![Just(Role::Seller), Just(Role::Buyer), Just(Role::Admin)],
        any::<u64>(),
        text(128),
        any::<(u8, u8, u32, u64)>(),
        text(64),
    )
        .prop_map(
            |(
                role,
                principal_id,
                secret,
                (version_min, version_max, heartbeat_interval_ms, last_delivery_seq),
                client_name,
            )| {
                Message::Login(Login {
                    role,
                    principal_id,
                    secret,
                    version_min,
                    version_max,
                    heartbeat_interval_ms,
                    last_delivery_seq,
                    client_name,
                })
            },
        )
}

fn login_accepted() -> impl Strategy<Value = Message<'static>> {
    (any::<(u64, u8, u32, u32, u32)>(), currency(), any::<u64>()).prop_map(
        |(
            (session_id, version, heartbeat_interval_ms, frame_length_max, in_flight_max),
            currency,
            server_time,
        )| {
            Message::LoginAccepted(LoginAccepted {
                session_id,
                version,
                heartbeat_interval_ms,
                frame_length_max,
                in_flight_max,
                currency,
                server_time,
            })
        },
    )
}

fn ping_result() -> impl Strategy<Value = Message<'static>> {
    let outcome = prop_oneof![
        (sale_mode(), vec(money(), 1..=8), any::<u32>()).prop_map(
            |(sale_mode, payouts, post_within_ms)| {
                PingOutcome::Offer {
                    sale_mode,
                    payouts: Cow::Owned(payouts),
                    post_within_ms,
                }
            }
        ),
        code().prop_map(|reason| PingOutcome::NoSale { reason }),
    ];
    (any::<u64>(), outcome)
        .prop_map(|(ping_id, outcome)| Message::PingResult(PingResult { ping_id, outcome }))
}

fn post_result() -> impl Strategy<Value = Message<'static>> {
    let receipt =
        (any::<u64>(), money()).prop_map(|(receipt_id, payout)| Receipt { receipt_id, payout });
    let outcome = prop_oneof![
        (sale_mode(), money(), vec(receipt, 1..=8)).prop_map(
            |(sale_mode, payout_total, receipts)| {
                PostOutcome::Sold {
                    sale_mode,
                    payout_total,
                    receipts: Cow::Owned(receipts),
                }
            }
        ),
        code().prop_map(|reason| PostOutcome::Unsold { reason }),
    ];
    (any::<u64>(), any::<u64>(), outcome).prop_map(|(ping_id, lead_id, outcome)| {
        Message::PostResult(PostResult {
            ping_id,
            lead_id,
            outcome,
        })
    })
}

fn lead_delivery() -> impl Strategy<Value = Message<'static>> {
    (
        any::<(u64, u64, u64, u64)>(),
        money(),
        sale_mode(),
        lead_view(),
        contact(),
        consent(),
        any::<(u64, u32)>(),
    )
        .prop_map(
            |(
                (delivery_seq, lead_id, auction_id, campaign_id),
                price,
                sale_mode,
                lead,
                contact,
                consent,
                (delivered_at, accept_within_ms),
            )| {
                Message::LeadDelivery(LeadDelivery {
                    delivery_seq,
                    lead_id,
                    auction_id,
                    campaign_id,
                    price,
                    sale_mode,
                    lead,
                    contact,
                    consent,
                    delivered_at,
                    accept_within_ms,
                })
            },
        )
}

fn put_mode() -> impl Strategy<Value = PutMode> {
    prop_oneof![
        Just(PutMode::Create),
        Just(PutMode::Update),
        Just(PutMode::Upsert)
    ]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![Just(Status::Active), Just(Status::Paused)]
}

fn attribute_kind() -> impl Strategy<Value = AttributeKind> {
    prop_oneof![
        Just(AttributeKind::Integer),
        Just(AttributeKind::Decimal),
        Just(AttributeKind::String),
        Just(AttributeKind::Bool),
        Just(AttributeKind::Enum),
    ]
}

fn tier_strategy() -> impl Strategy<Value = book::Strategy> {
    prop_oneof![
        Just(book::Strategy::HighestBid),
        Just(book::Strategy::SecondPrice),
        Just(book::Strategy::RoundRobin),
        Just(book::Strategy::Weighted),
        Just(book::Strategy::FirstToAccept),
    ]
}

fn vertical_put() -> impl Strategy<Value = Message<'static>> {
    let required =
        (symbol(), attribute_kind()).prop_map(|(key, kind)| RequiredAttribute { key, kind });
    let tier = (any::<u8>(), tier_strategy()).prop_map(|(tier, strategy)| Tier { tier, strategy });
    (put_mode(), symbol(), vec(required, 0..4), vec(tier, 0..4)).prop_map(
        |(mode, vertical, required, tiers)| {
            Message::VerticalPut(VerticalPut {
                mode,
                vertical,
                required,
                tiers,
            })
        },
    )
}

fn seller() -> impl Strategy<Value = Seller<'static>> {
    let floor = (symbol(), money()).prop_map(|(vertical, price)| Floor { vertical, price });
    (
        (
            non_zero(),
            text(64),
            status(),
            proptest::option::of(text(128)),
        ),
        (
            vec(symbol(), 0..4),
            0..=10_000u16,
            money(),
            vec(floor, 0..4),
        ),
        (vec(any::<u64>(), 0..6), vec(any::<u64>(), 0..6)),
    )
        .prop_map(
            |(
                (seller_id, name, status, secret),
                (verticals, margin_bps, margin_fixed, floors),
                (buyers_allowed, buyers_blocked),
            )| Seller {
                seller_id,
                name,
                status,
                secret,
                verticals,
                margin_bps,
                margin_fixed,
                floors,
                buyers_allowed,
                buyers_blocked,
            },
        )
}

fn buyer() -> impl Strategy<Value = Buyer<'static>> {
    (
        (
            non_zero(),
            text(64),
            status(),
            proptest::option::of(text(128)),
            text(64),
        ),
        (
            money(),
            money(),
            prop_oneof![Just(DeliveryMode::Live), Just(DeliveryMode::Stored)],
            any::<u32>(),
        ),
    )
        .prop_map(
            |(
                (buyer_id, name, status, secret, time_zone),
                (budget_day, budget_month, delivery, accept_within_ms),
            )| Buyer {
                buyer_id,
                name,
                status,
                secret,
                time_zone,
                budget_day,
                budget_month,
                delivery,
                accept_within_ms,
            },
        )
}

fn territory_rule() -> impl Strategy<Value = TerritoryRule<'static>> {
    let effect = prop_oneof![Just(Effect::Include), Just(Effect::Exclude)];
    let rule = prop_oneof![
        (country(), postal_code()).prop_map(|(country, postal_code)| TerritoryArea::Postal {
            country,
            postal_code
        }),
        (country(), postal_code())
            .prop_map(|(country, prefix)| TerritoryArea::Prefix { country, prefix }),
        (country(), text(8))
            .prop_map(|(country, region)| TerritoryArea::Region { country, region }),
        (country(), postal_code(), any::<u16>()).prop_map(|(country, center, radius_miles)| {
            TerritoryArea::Radius {
                country,
                center,
                radius_miles,
            }
        }),
        country().prop_map(|country| TerritoryArea::Country { country }),
    ];
    (effect, rule).prop_map(|(effect, rule)| TerritoryRule { effect, rule })
}

fn filter() -> impl Strategy<Value = Filter<'static>> {
    let condition = prop_oneof![
        any::<(i64, i64)>().prop_map(|(min, max)| FilterCondition::IntRange { min, max }),
        (any::<(i64, i64)>(), 0..=9u8)
            .prop_map(|((min, max), scale)| FilterCondition::DecimalRange { min, max, scale }),
        vec(text(256), 0..4).prop_map(|values| FilterCondition::OneOf { values }),
        any::<bool>().prop_map(|value| FilterCondition::Is { value }),
        Just(FilterCondition::Present {}),
        Just(FilterCondition::Absent {}),
    ];
    (symbol(), condition).prop_map(|(key, condition)| Filter { key, condition })
}

fn window() -> impl Strategy<Value = Window> {
    (1..=7u8, any::<u16>(), any::<u16>()).prop_map(|(weekday, open_minute, close_minute)| Window {
        weekday,
        open_minute,
        close_minute,
    })
}

fn caps() -> impl Strategy<Value = Caps> {
    (any::<(u32, u32, u32, u32, u32)>(), money(), money()).prop_map(
        |(
            (leads_hour, leads_day, leads_week, leads_month, leads_total),
            spend_day,
            spend_month,
        )| Caps {
            leads_hour,
            leads_day,
            leads_week,
            leads_month,
            leads_total,
            spend_day,
            spend_month,
        },
    )
}

fn pricing() -> impl Strategy<Value = Pricing> {
    prop_oneof![
        (money(), money()).prop_map(|(exclusive_price, shared_price)| Pricing::Fixed {
            exclusive_price,
            shared_price
        }),
        (money(), money(), -10_000..=10_000i16).prop_map(|(bid_min, bid_max, adjust_bps)| {
            Pricing::LiveBid {
                bid_min,
                bid_max,
                adjust_bps,
            }
        }),
    ]
}

fn campaign() -> impl Strategy<Value = Campaign<'static>> {
    (
        (non_zero(), any::<u64>(), text(64), status(), symbol()),
        (
            prop_oneof![Just(CampaignRole::Primary), Just(CampaignRole::Fallback)],
            vec(territory_rule(), 0..4),
        ),
        (vec(filter(), 0..4), vec(window(), 0..4), caps()),
        (1..=3u8, pricing(), any::<u8>(), 1..=u16::MAX, any::<u32>()),
    )
        .prop_map(
            |(
                (campaign_id, buyer_id, name, status, vertical),
                (role, territory),
                (filters, schedule, caps),
                (sale_modes, pricing, tier, weight, duplicate_lookback_s),
            )| Campaign {
                campaign_id,
                buyer_id,
                name,
                status,
                vertical,
                role,
                territory,
                filters,
                schedule,
                caps,
                sale_modes: SaleModes::new(sale_modes).unwrap(),
                pricing,
                tier,
                weight,
                duplicate_lookback_s,
            },
        )
}

fn stats() -> impl Strategy<Value = Message<'static>> {
    let counter = (text(64), any::<u64>()).prop_map(|(name, value)| Counter { name, value });
    let latency = (text(64), any::<(u64, u64, u64, u64, u64, u64)>()).prop_map(
        |(name, (count, p50_us, p90_us, p99_us, p999_us, max_us))| Latency {
            name,
            count,
            p50_us,
            p90_us,
            p99_us,
            p999_us,
            max_us,
        },
    );
    (any::<u64>(), vec(counter, 0..4), vec(latency, 0..4)).prop_map(
        |(uptime_ms, counters, latencies)| {
            Message::Stats(Stats {
                uptime_ms,
                counters,
                latencies,
            })
        },
    )
}

fn trace() -> impl Strategy<Value = Message<'static>> {
    let event = (any::<(u64, u16, u64)>(), money(), code(), text(256)).prop_map(
        |((at, kind, party_id), amount, code, detail)| TraceEvent {
            at,
            kind: TraceEventKind(kind),
            party_id,
            amount,
            code,
            detail,
        },
    );
    (any::<u64>(), any::<u64>(), vec(event, 0..4)).prop_map(|(ping_id, lead_id, events)| {
        Message::Trace(Trace {
            ping_id,
            lead_id,
            events,
        })
    })
}

/// One strategy per message type, indexed like [`MessageType::ALL`].
pub fn messages_by_type() -> Vec<(MessageType, BoxedStrategy<Message<'static>>)> {
    use MessageType as T;
    let code_text = || (code(), text(256));
    vec![
        (T::Login, login().boxed()),
        (T::LoginAccepted, login_accepted().boxed()),
        (
            T::LoginRejected,
            code_text()
                .prop_map(|(reason, message)| {
                    Message::LoginRejected(LoginRejected { reason, message })
                })
                .boxed(),
        ),
        (
            T::Heartbeat,
            any::<u64>()
                .prop_map(|sent_at| Message::Heartbeat(Heartbeat { sent_at }))
                .boxed(),
        ),
        (
            T::HeartbeatAck,
            any::<u64>()
                .prop_map(|sent_at| Message::HeartbeatAck(HeartbeatAck { sent_at }))
                .boxed(),
        ),
        (
            T::Goodbye,
            code_text()
                .prop_map(|(reason, message)| Message::Goodbye(Goodbye { reason, message }))
                .boxed(),
        ),
        (T::GoodbyeAck, Just(Message::GoodbyeAck(GoodbyeAck)).boxed()),
        (
            T::Error,
            code_text()
                .prop_map(|(code, message)| Message::Error(Error { code, message }))
                .boxed(),
        ),
        (T::Ping, ping().prop_map(Message::Ping).boxed()),
        (T::PingResult, ping_result().boxed()),
        (
            T::Post,
            (any::<u64>(), contact(), consent())
                .prop_map(|(ping_id, contact, consent)| {
                    Message::Post(Post {
                        ping_id,
                        contact,
                        consent,
                    })
                })
                .boxed(),
        ),
        (T::PostResult, post_result().boxed()),
        (
            T::DirectPost,
            (ping(), contact(), consent())
                .prop_map(|(ping, contact, consent)| {
                    Message::DirectPost(DirectPost {
                        ping,
                        contact,
                        consent,
                    })
                })
                .boxed(),
        ),
        (
            T::PingOffer,
            (
                any::<(u64, u64)>(),
                lead_view(),
                sale_mode(),
                money(),
                any::<u32>(),
            )
                .prop_map(
                    |((auction_id, campaign_id), lead, sale_mode, price_floor, bid_within_ms)| {
                        Message::PingOffer(PingOffer {
                            auction_id,
                            campaign_id,
                            lead,
                            sale_mode,
                            price_floor,
                            bid_within_ms,
                        })
                    },
                )
                .boxed(),
        ),
        (
            T::Bid,
            (any::<(u64, u64)>(), money())
                .prop_map(|((auction_id, campaign_id), price)| {
                    Message::Bid(Bid {
                        auction_id,
                        campaign_id,
                        price,
                    })
                })
                .boxed(),
        ),
        (
            T::NoBid,
            (any::<(u64, u64)>(), code())
                .prop_map(|((auction_id, campaign_id), reason)| {
                    Message::NoBid(NoBid {
                        auction_id,
                        campaign_id,
                        reason,
                    })
                })
                .boxed(),
        ),
        (
            T::AuctionWon,
            (any::<(u64, u64)>(), money(), sale_mode())
                .prop_map(|((auction_id, campaign_id), price, sale_mode)| {
                    Message::AuctionWon(AuctionWon {
                        auction_id,
                        campaign_id,
                        price,
                        sale_mode,
                    })
                })
                .boxed(),
        ),
        (
            T::AuctionLost,
            (any::<(u64, u64)>(), code())
                .prop_map(|((auction_id, campaign_id), reason)| {
                    Message::AuctionLost(AuctionLost {
                        auction_id,
                        campaign_id,
                        reason,
                    })
                })
                .boxed(),
        ),
        (T::LeadDelivery, lead_delivery().boxed()),
        (
            T::DeliveryAck,
            (
                any::<(u64, u64)>(),
                prop_oneof![Just(DeliveryOutcome::Accept), Just(DeliveryOutcome::Reject)],
                code(),
            )
                .prop_map(|((delivery_seq, lead_id), outcome, reason)| {
                    Message::DeliveryAck(DeliveryAck {
                        delivery_seq,
                        lead_id,
                        outcome,
                        reason,
                    })
                })
                .boxed(),
        ),
        (T::VerticalPut, vertical_put().boxed()),
        (
            T::VerticalRemove,
            symbol()
                .prop_map(|vertical| Message::VerticalRemove(VerticalRemove { vertical }))
                .boxed(),
        ),
        (
            T::SellerPut,
            (put_mode(), seller())
                .prop_map(|(mode, seller)| Message::SellerPut(SellerPut { mode, seller }))
                .boxed(),
        ),
        (
            T::SellerRemove,
            any::<u64>()
                .prop_map(|seller_id| Message::SellerRemove(SellerRemove { seller_id }))
                .boxed(),
        ),
        (
            T::BuyerPut,
            (put_mode(), buyer())
                .prop_map(|(mode, buyer)| Message::BuyerPut(BuyerPut { mode, buyer }))
                .boxed(),
        ),
        (
            T::BuyerRemove,
            any::<u64>()
                .prop_map(|buyer_id| Message::BuyerRemove(BuyerRemove { buyer_id }))
                .boxed(),
        ),
        (
            T::CampaignPut,
            (put_mode(), campaign())
                .prop_map(|(mode, campaign)| Message::CampaignPut(CampaignPut { mode, campaign }))
                .boxed(),
        ),
        (
            T::CampaignRemove,
            any::<u64>()
                .prop_map(|campaign_id| Message::CampaignRemove(CampaignRemove { campaign_id }))
                .boxed(),
        ),
        (
            T::SetStatus,
            (
                prop_oneof![
                    Just(StatusTarget::Seller),
                    Just(StatusTarget::Buyer),
                    Just(StatusTarget::Campaign)
                ],
                any::<u64>(),
                status(),
            )
                .prop_map(|(target, id, status)| {
                    Message::SetStatus(SetStatus { target, id, status })
                })
                .boxed(),
        ),
        (
            T::AdminOk,
            any::<u64>()
                .prop_map(|book_version| Message::AdminOk(AdminOk { book_version }))
                .boxed(),
        ),
        (
            T::StatsRequest,
            Just(Message::StatsRequest(StatsRequest)).boxed(),
        ),
        (T::Stats, stats().boxed()),
        (
            T::TraceRequest,
            (
                prop_oneof![Just(TraceKey::Lead), Just(TraceKey::Ping)],
                any::<u64>(),
            )
                .prop_map(|(key, id)| Message::TraceRequest(TraceRequest { key, id }))
                .boxed(),
        ),
        (T::Trace, trace().boxed()),
    ]
}

/// Any message, every type equally likely.
pub fn message() -> impl Strategy<Value = Message<'static>> {
    Union::new(messages_by_type().into_iter().map(|(_, strategy)| strategy))
}
