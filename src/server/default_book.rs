//! The embedded default: what `pingpost serve` runs with no configuration, so that a newcomer
//! can start it and connect at once. Its credentials are printed at start; they are for trying
//! the daemon on loopback, not for production (a configuration file replaces them).
//!
//! The book:
//! - verticals `solar`, `mortgage` and `auto_insurance`;
//! - seller 1 (Sunny Leads), selling all three with a 10 % margin;
//! - the seed's market around Munich (DE 803xx): six live installers (buyers 101–106, live
//!   bids $10–$100) and a fixed-price fallback buyer (900, $25) that takes what nobody bid on;
//! - four stored US buyers over the real ZIP table, one per kind of territory: Colorado
//!   (state), 25 miles around 10001 (radius), ZIP3s around Los Angeles (prefix), and a list of
//!   Phoenix ZIPs (exact), with schedules, caps, budgets and attribute filters.

use std::borrow::Cow;

use super::config::{AdminEntry, ConfigFile, JOURNAL_DIR_DEFAULT};
use crate::engine::book::AdminChange;
use crate::limits::{
    CONNECTIONS_MAX, IN_FLIGHT_MAX, LISTEN_ADDR_DEFAULT, SESSION_QUEUE_LEN,
    SNAPSHOT_EVERY_RECORDS_DEFAULT,
};
use crate::protocol::{
    AttributeKind, Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, Country,
    DeliveryMode, Effect, Filter, FilterCondition, PostalCode, Pricing, PutMode, RequiredAttribute,
    SaleModes, Seller, SellerPut, Status, Strategy, Symbol, TerritoryArea, TerritoryRule, Tier,
    VerticalPut, Window,
};

/// The default admin's id and secret.
pub const DEFAULT_ADMIN: (u64, &str) = (1, "admin-demo-secret");
/// The default seller's id and secret.
pub const DEFAULT_SELLER: (u64, &str) = (1, "seller-demo-secret");
/// The secret every default buyer logs in with (ids 101–106, 900, 201–204).
pub const DEFAULT_BUYER_SECRET: &str = "buyer-demo-secret";
/// The six live installers of the seed's example.
pub const SEED_BUYERS: [u64; 6] = [101, 102, 103, 104, 105, 106];
/// The fixed-price fallback buyer around Munich.
pub const FALLBACK_BUYER: u64 = 900;

fn symbol(text: &'static str) -> Symbol<'static> {
    Symbol::new(text).unwrap_or_else(|_| unreachable!("constant symbol {text} is valid"))
}

fn postal(text: &'static str) -> PostalCode<'static> {
    PostalCode::new(text).unwrap_or_else(|_| unreachable!("constant postal code {text} is valid"))
}

fn country(code: &'static str) -> Country {
    Country::new(code).unwrap_or_else(|_| unreachable!("constant country {code} is valid"))
}

fn include(rule: TerritoryArea<'static>) -> TerritoryRule<'static> {
    TerritoryRule {
        effect: Effect::Include,
        rule,
    }
}

fn caps(leads_day: u32, spend_day: u64) -> Caps {
    Caps {
        leads_hour: 0,
        leads_day,
        leads_week: 0,
        leads_month: 0,
        leads_total: 0,
        spend_day,
        spend_month: 0,
    }
}

/// Monday to Saturday, `open`–`close` o'clock local time.
fn business_hours(open: u16, close: u16) -> Vec<Window> {
    (1..=6)
        .map(|weekday| Window {
            weekday,
            open_minute: open * 60,
            close_minute: close * 60,
        })
        .collect()
}

fn vertical(name: &'static str, required: Vec<RequiredAttribute<'static>>) -> AdminChange {
    AdminChange::VerticalPut(VerticalPut {
        mode: PutMode::Create,
        vertical: symbol(name),
        required,
        tiers: vec![Tier {
            tier: 0,
            strategy: Strategy::HighestBid,
        }],
    })
}

fn buyer(id: u64, name: &'static str, zone: &'static str, delivery: DeliveryMode) -> AdminChange {
    AdminChange::BuyerPut(BuyerPut {
        mode: PutMode::Create,
        buyer: Buyer {
            buyer_id: id,
            name: Cow::Borrowed(name),
            status: Status::Active,
            secret: Some(Cow::Borrowed(DEFAULT_BUYER_SECRET)),
            time_zone: Cow::Borrowed(zone),
            budget_day: 0,
            budget_month: 0,
            delivery,
            accept_within_ms: 5_000,
        },
    })
}

struct CampaignSpec {
    id: u64,
    buyer: u64,
    name: &'static str,
    vertical: &'static str,
    role: CampaignRole,
    territory: Vec<TerritoryRule<'static>>,
    filters: Vec<Filter<'static>>,
    schedule: Vec<Window>,
    caps: Caps,
    pricing: Pricing,
}

fn campaign(spec: CampaignSpec) -> AdminChange {
    AdminChange::CampaignPut(CampaignPut {
        mode: PutMode::Create,
        campaign: Campaign {
            campaign_id: spec.id,
            buyer_id: spec.buyer,
            name: Cow::Borrowed(spec.name),
            status: Status::Active,
            vertical: symbol(spec.vertical),
            role: spec.role,
            territory: spec.territory,
            filters: spec.filters,
            schedule: spec.schedule,
            caps: spec.caps,
            sale_modes: SaleModes::BOTH,
            pricing: spec.pricing,
            tier: 0,
            weight: 1,
            duplicate_lookback_s: 30 * 24 * 3_600,
        },
    })
}

fn fixed(exclusive_dollars: u64, shared_dollars: u64) -> Pricing {
    Pricing::Fixed {
        exclusive_price: exclusive_dollars * 100,
        shared_price: shared_dollars * 100,
    }
}

/// The default book, as the admin changes that build it.
pub fn default_book() -> Vec<AdminChange> {
    let mut book = vec![
        vertical("solar", Vec::new()),
        vertical(
            "mortgage",
            vec![RequiredAttribute {
                key: symbol("loan_amount"),
                kind: AttributeKind::Integer,
            }],
        ),
        vertical("auto_insurance", Vec::new()),
        AdminChange::SellerPut(SellerPut {
            mode: PutMode::Create,
            seller: Seller {
                seller_id: DEFAULT_SELLER.0,
                name: Cow::Borrowed("Sunny Leads"),
                status: Status::Active,
                secret: Some(Cow::Borrowed(DEFAULT_SELLER.1)),
                verticals: vec![
                    symbol("solar"),
                    symbol("mortgage"),
                    symbol("auto_insurance"),
                ],
                margin_bps: 1_000,
                margin_fixed: 0,
                floors: Vec::new(),
                buyers_allowed: Vec::new(),
                buyers_blocked: Vec::new(),
            },
        }),
    ];
    let munich = || {
        vec![include(TerritoryArea::Prefix {
            country: country("DE"),
            prefix: postal("803"),
        })]
    };
    let installers = [
        "Isar Solar",
        "Alpen Energie",
        "Sonnenwerk München",
        "Bavaria PV",
        "Dachstrom",
        "Helios Süd",
    ];
    for (&id, name) in SEED_BUYERS.iter().zip(installers) {
        book.push(buyer(id, name, "Europe/Berlin", DeliveryMode::Live));
        book.push(campaign(CampaignSpec {
            id: id * 10,
            buyer: id,
            name,
            vertical: "solar",
            role: CampaignRole::Primary,
            territory: munich(),
            filters: Vec::new(),
            schedule: Vec::new(),
            caps: caps(0, 0),
            pricing: Pricing::LiveBid {
                bid_min: 1_000,
                bid_max: 10_000,
                adjust_bps: 0,
            },
        }));
    }
    book.push(buyer(
        FALLBACK_BUYER,
        "Munich Lead Pool",
        "Europe/Berlin",
        DeliveryMode::Stored,
    ));
    book.push(campaign(CampaignSpec {
        id: 9_000,
        buyer: FALLBACK_BUYER,
        name: "Munich fixed price",
        vertical: "solar",
        role: CampaignRole::Fallback,
        territory: munich(),
        filters: Vec::new(),
        schedule: Vec::new(),
        caps: caps(0, 0),
        pricing: fixed(25, 0),
    }));

    let us = || country("US");
    book.push(buyer(
        201,
        "Front Range Solar",
        "America/Denver",
        DeliveryMode::Stored,
    ));
    book.push(campaign(CampaignSpec {
        id: 2_010,
        buyer: 201,
        name: "Colorado homeowners",
        vertical: "solar",
        role: CampaignRole::Primary,
        territory: vec![include(TerritoryArea::Region {
            country: us(),
            region: Cow::Borrowed("CO"),
        })],
        filters: vec![Filter {
            key: symbol("homeowner"),
            condition: FilterCondition::Is { value: true },
        }],
        schedule: business_hours(7, 21),
        caps: caps(200, 800_000),
        pricing: fixed(35, 15),
    }));
    book.push(buyer(
        202,
        "Empire Mortgage",
        "America/New_York",
        DeliveryMode::Stored,
    ));
    book.push(campaign(CampaignSpec {
        id: 2_020,
        buyer: 202,
        name: "Manhattan 25 miles",
        vertical: "mortgage",
        role: CampaignRole::Primary,
        territory: vec![include(TerritoryArea::Radius {
            country: us(),
            center: postal("10001"),
            radius_miles: 25,
        })],
        filters: vec![Filter {
            key: symbol("loan_amount"),
            condition: FilterCondition::IntRange {
                min: 100_000,
                max: 2_000_000,
            },
        }],
        schedule: business_hours(8, 20),
        caps: caps(100, 0),
        pricing: fixed(60, 25),
    }));
    book.push(buyer(
        203,
        "Pacific Auto Insurance",
        "America/Los_Angeles",
        DeliveryMode::Stored,
    ));
    book.push(campaign(CampaignSpec {
        id: 2_030,
        buyer: 203,
        name: "Los Angeles ZIP3s",
        vertical: "auto_insurance",
        role: CampaignRole::Primary,
        territory: ["900", "902", "913", "917"]
            .into_iter()
            .map(|prefix| {
                include(TerritoryArea::Prefix {
                    country: us(),
                    prefix: postal(prefix),
                })
            })
            .collect(),
        filters: Vec::new(),
        schedule: Vec::new(),
        caps: caps(500, 0),
        pricing: fixed(18, 8),
    }));
    book.push(buyer(
        204,
        "Sunbelt Solar",
        "America/Phoenix",
        DeliveryMode::Stored,
    ));
    book.push(campaign(CampaignSpec {
        id: 2_040,
        buyer: 204,
        name: "Phoenix ZIPs",
        vertical: "solar",
        role: CampaignRole::Primary,
        territory: [
            "85003", "85004", "85006", "85008", "85012", "85016", "85018",
        ]
        .into_iter()
        .map(|code| {
            include(TerritoryArea::Postal {
                country: us(),
                postal_code: postal(code),
            })
        })
        .collect(),
        filters: Vec::new(),
        schedule: Vec::new(),
        caps: caps(50, 0),
        pricing: fixed(30, 12),
    }));
    book
}

/// The embedded default configuration.
pub fn default_config_file() -> ConfigFile {
    ConfigFile {
        listen: LISTEN_ADDR_DEFAULT.to_owned(),
        journal_dir: JOURNAL_DIR_DEFAULT.to_owned(),
        fsync: "interval=2".to_owned(),
        currency: "USD".to_owned(),
        connections_max: CONNECTIONS_MAX,
        in_flight_max: IN_FLIGHT_MAX,
        session_queue_len: SESSION_QUEUE_LEN,
        snapshot_every_records: SNAPSHOT_EVERY_RECORDS_DEFAULT,
        admins: vec![AdminEntry {
            id: DEFAULT_ADMIN.0,
            secret: Some(DEFAULT_ADMIN.1.to_owned()),
            secret_hash: None,
        }],
        book: default_book(),
    }
}

/// The credentials of the default book, for the start banner.
pub fn default_credentials_text() -> String {
    format!(
        "  admin  id {}  secret {}\n  seller id {}  secret {}\n  buyers ids 101-106 (live, Munich), 900 (stored fallback), 201-204 (stored, US)  secret {}",
        DEFAULT_ADMIN.0, DEFAULT_ADMIN.1, DEFAULT_SELLER.0, DEFAULT_SELLER.1, DEFAULT_BUYER_SECRET
    )
}
