//! What the daemon's loopback tests share: a daemon on a free port with a fresh journal, logins
//! with the embedded default book's credentials, the seed's lead, a consumer's contact record
//! and consent, and reading answers.

#![allow(dead_code, clippy::unwrap_used)]

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use pingpost::client::{Client, Incoming, LoginParams, ServerEvent};
use pingpost::protocol::{
    Attributes, Consent, Contact, Country, LeadView, Ping, PingOutcome, PingResult, PingSaleMode,
    Post, PostOutcome, PostResult, PostalCode, Role, SaleMode, Symbol,
};
use pingpost::server::config::ServerConfig;
use pingpost::server::default_book::{
    DEFAULT_ADMIN, DEFAULT_BUYER_SECRET, DEFAULT_SELLER, default_config_file,
};
use pingpost::server::{RunningServer, start};

/// Bound on every wait in these tests: long enough for a loaded CI machine, short enough that
/// a hang fails the test instead of the run.
pub const WAIT: Duration = Duration::from_secs(20);

/// The embedded default configuration on a free loopback port, journaling to `dir`.
pub fn config(dir: &Path) -> ServerConfig {
    let mut config = default_config_file().check().unwrap();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.journal_dir = dir.to_path_buf();
    config
}

pub async fn server(dir: &Path) -> RunningServer {
    start(config(dir)).await.unwrap()
}

pub async fn seller(addr: SocketAddr) -> Client {
    Client::connect(
        addr,
        LoginParams::new(Role::Seller, DEFAULT_SELLER.0, DEFAULT_SELLER.1),
    )
    .await
    .unwrap()
}

pub async fn buyer(addr: SocketAddr, id: u64, last_delivery_seq: u64) -> Client {
    let mut login = LoginParams::new(Role::Buyer, id, DEFAULT_BUYER_SECRET);
    login.last_delivery_seq = last_delivery_seq;
    Client::connect(addr, login).await.unwrap()
}

pub async fn admin(addr: SocketAddr) -> Client {
    Client::connect(
        addr,
        LoginParams::new(Role::Admin, DEFAULT_ADMIN.0, DEFAULT_ADMIN.1),
    )
    .await
    .unwrap()
}

/// One of the daemon's counters, as `STATS` reports it.
pub async fn counter(admin: &Client, name: &str) -> Option<u64> {
    let stats = admin.stats().await.unwrap();
    stats
        .counters
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.value)
}

/// A lead of `vertical` in `country`/`postal_code`, with a two-second deadline.
pub fn lead(client_token: u64, vertical: &str, country: &str, postal_code: &str) -> Ping<'static> {
    Ping {
        client_token,
        lead: LeadView {
            vertical: Symbol::new(vertical).unwrap().into_owned(),
            country: Country::new(country).unwrap(),
            postal_code: PostalCode::new(postal_code).unwrap().into_owned(),
            attributes: Attributes::builder()
                .bool("homeowner", true)
                .decimal("monthly_bill", 14_550, 2)
                .build()
                .unwrap(),
        },
        phone_hash: None,
        email_hash: None,
        sale_mode: PingSaleMode::Exclusive,
        shared_buyers_max: 0,
        timeout_ms: 2_000,
    }
}

/// The seed's lead: solar, ZIP 80331 (Munich).
pub fn solar_ping(client_token: u64) -> Ping<'static> {
    lead(client_token, "solar", "DE", "80331")
}

/// The seed's consumer.
pub fn contact() -> Contact<'static> {
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

/// Consumer number `n`: distinct, so that look-backs do not refuse repeats.
pub fn consumer(n: u64) -> Contact<'static> {
    Contact {
        first_name: Cow::Borrowed("Test"),
        last_name: Cow::Owned(format!("Consumer{n}")),
        phone: Cow::Owned(format!("+1213{n:07}")),
        email: Cow::Owned(format!("c{n}@example.com")),
        street: Cow::Borrowed("1 Main St"),
        city: Cow::Borrowed("Los Angeles"),
        region: Cow::Borrowed("CA"),
    }
}

/// Consent given a minute ago.
pub fn consent() -> Consent<'static> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros();
    Consent {
        certificate_id: Cow::Borrowed("cert-7d1c"),
        text_version: Cow::Borrowed("solar-2026-03"),
        consented_at: u64::try_from(now).unwrap() - 60_000_000,
        ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        user_agent: Cow::Borrowed("Mozilla/5.0"),
        page_url: Cow::Borrowed("https://quotes.example.com/solar"),
    }
}

/// Posts `contact` for a ping and waits (bounded) for the answer.
pub async fn post(seller: &Client, ping_id: u64, contact: Contact<'static>) -> PostResult<'static> {
    tokio::time::timeout(
        WAIT,
        seller.post(Post {
            ping_id,
            contact,
            consent: consent(),
        }),
    )
    .await
    .unwrap()
    .unwrap()
}

/// The offer's sale mode and payouts, or a panic naming the outcome.
pub fn offered(result: &PingResult<'_>) -> (SaleMode, Vec<u64>) {
    match result.outcome.clone() {
        PingOutcome::Offer {
            sale_mode, payouts, ..
        } => (sale_mode, payouts.to_vec()),
        PingOutcome::NoSale { reason } => panic!("no sale: {reason}"),
    }
}

/// The post's payout total, or a panic naming the outcome.
pub fn sold(result: &PostResult<'_>) -> u64 {
    match result.outcome.clone() {
        PostOutcome::Sold { payout_total, .. } => payout_total,
        PostOutcome::Unsold { reason } => panic!("unsold: {reason}"),
    }
}

/// Receives `count` deliveries, accepting each; returns (sequence number, lead id, last name).
pub async fn pick_up(incoming: &mut Incoming, count: usize) -> Vec<(u64, u64, String)> {
    let mut delivered = Vec::new();
    while delivered.len() < count {
        match tokio::time::timeout(WAIT, incoming.recv()).await.unwrap() {
            Some(ServerEvent::Delivery(delivery)) => {
                let d = delivery.delivery();
                delivered.push((d.delivery_seq, d.lead_id, d.contact.last_name.to_string()));
                delivery.accept().await.unwrap();
            }
            Some(_) => {}
            None => panic!("the session ended before every delivery arrived"),
        }
    }
    delivered
}
