//! The daemon over loopback, through the client library: the seed's worked example, fallback,
//! cascade, deliveries that survive a disconnect, and roles.

#![allow(clippy::unwrap_used)]

mod server_util;

use server_util::*;
use std::net::SocketAddr;
use std::time::Duration;

use pingpost::client::{Client, ClientError, LoginParams, ServerEvent};
use pingpost::protocol::{
    Country, ErrorCode, Ping, PingOutcome, Post, PostOutcome, PostResult, PostalCode, Role,
    SaleMode, Symbol,
};
use pingpost::server::default_book::{DEFAULT_SELLER, FALLBACK_BUYER, SEED_BUYERS};

/// The seed's bids: $38, $42, $45 from the first three installers; the others pass.
fn seed_bid(buyer: u64) -> Option<u64> {
    match buyer {
        101 => Some(3_800),
        102 => Some(4_200),
        103 => Some(4_500),
        _ => None,
    }
}

/// What a live installer does: bid its seed price, and accept or reject deliveries.
#[derive(Debug, Clone, Copy)]
enum OnDelivery {
    Accept,
    Reject,
    /// Never answers: the delivery times out.
    Silent,
}

/// Runs a live installer until its session ends; returns the lead ids it was delivered.
fn installer(
    client: Client,
    id: u64,
    on_delivery: OnDelivery,
) -> tokio::task::JoinHandle<Vec<u64>> {
    tokio::spawn(async move {
        let mut incoming = client.incoming().unwrap();
        let mut delivered = Vec::new();
        while let Some(event) = incoming.recv().await {
            match event {
                ServerEvent::Offer(offer) => match seed_bid(id) {
                    Some(price) => offer.bid(price).await.unwrap(),
                    None => offer.no_bid(ErrorCode::NOT_INTERESTED).await.unwrap(),
                },
                ServerEvent::Delivery(delivery) => {
                    delivered.push(delivery.delivery().lead_id);
                    match on_delivery {
                        OnDelivery::Accept => delivery.accept().await.unwrap(),
                        OnDelivery::Reject => {
                            delivery.reject(ErrorCode::REJECT_OTHER).await.unwrap();
                        }
                        OnDelivery::Silent => std::mem::forget(delivery),
                    }
                }
                ServerEvent::Goodbye { .. } => break,
                _ => {}
            }
        }
        let _ = client;
        delivered
    })
}

async fn connect_installers(
    addr: SocketAddr,
    reject: &[u64],
) -> Vec<(u64, Client, tokio::task::JoinHandle<Vec<u64>>)> {
    connect_installers_with(addr, |id| {
        if reject.contains(&id) {
            OnDelivery::Reject
        } else {
            OnDelivery::Accept
        }
    })
    .await
}

async fn connect_installers_with(
    addr: SocketAddr,
    mode_of: impl Fn(u64) -> OnDelivery,
) -> Vec<(u64, Client, tokio::task::JoinHandle<Vec<u64>>)> {
    let mut installers = Vec::new();
    for id in SEED_BUYERS {
        let client = buyer(addr, id, 0).await;
        let mode = mode_of(id);
        let task = installer(client.clone(), id, mode);
        installers.push((id, client, task));
    }
    installers
}

/// The installers that were delivered a lead, by id.
fn receivers(delivered: &[(u64, Vec<u64>)]) -> Vec<u64> {
    delivered
        .iter()
        .filter(|(_, leads)| !leads.is_empty())
        .map(|(id, _)| *id)
        .collect()
}

async fn close_installers(
    installers: Vec<(u64, Client, tokio::task::JoinHandle<Vec<u64>>)>,
) -> Vec<(u64, Vec<u64>)> {
    let mut delivered = Vec::new();
    for (id, client, task) in installers {
        let _ = client.close().await;
        let leads = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        delivered.push((id, leads));
    }
    delivered
}

#[tokio::test]
async fn the_seed_example_the_45_dollar_bid_wins_and_its_buyer_alone_gets_the_lead() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let installers = connect_installers(server.addr, &[]).await;
    let seller = server_util::seller(server.addr).await;

    let result = tokio::time::timeout(WAIT, seller.ping(solar_ping(1)))
        .await
        .unwrap()
        .unwrap();
    // $45 less the seller's 10 % margin.
    assert_eq!(offered(&result), (SaleMode::Exclusive, vec![4_050]));

    let posted = post(&seller, result.ping_id, contact()).await;
    assert_eq!(sold(&posted), 4_050);

    let delivered = close_installers(installers).await;
    for (id, leads) in delivered {
        if id == 103 {
            assert_eq!(
                leads,
                vec![posted.lead_id],
                "the $45 buyer gets the lead once"
            );
        } else {
            assert!(leads.is_empty(), "buyer {id} lost and got {leads:?}");
        }
    }
    let _ = seller.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_rejected_delivery_cascades_to_the_next_bidder() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let installers = connect_installers(server.addr, &[103]).await;
    let seller = server_util::seller(server.addr).await;
    let result = seller.ping(solar_ping(2)).await.unwrap();
    offered(&result);
    let posted = post(&seller, result.ping_id, contact()).await;
    // The $42 runner-up took it: 90 % of $42.
    assert_eq!(sold(&posted), 3_780);
    let delivered = close_installers(installers).await;
    let got = receivers(&delivered);
    assert_eq!(got, vec![102, 103], "103 rejected, 102 took it");
    let _ = seller.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_live_buyers_the_lead_goes_to_the_fallback_which_picks_it_up_once_on_connecting() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let seller = server_util::seller(server.addr).await;
    // No installer is connected: the exchange answers for them at once.
    let result = tokio::time::timeout(WAIT, seller.ping(solar_ping(3)))
        .await
        .unwrap()
        .unwrap();
    // The $25 fallback less 10 %.
    assert_eq!(offered(&result).1, vec![2_250]);
    let posted = seller
        .post(Post {
            ping_id: result.ping_id,
            contact: contact(),
            consent: consent(),
        })
        .await
        .unwrap();
    sold(&posted);

    // The stored buyer connects later and receives the lead with its sequence number.
    let fallback = server_util::buyer(server.addr, FALLBACK_BUYER, 0).await;
    let mut incoming = fallback.incoming().unwrap();
    let event = tokio::time::timeout(WAIT, incoming.recv()).await.unwrap();
    let Some(ServerEvent::Delivery(delivery)) = event else {
        panic!("expected a delivery, got {event:?}");
    };
    let seq = delivery.delivery().delivery_seq;
    assert_eq!(delivery.delivery().lead_id, posted.lead_id);
    assert_eq!(delivery.delivery().contact.phone, "+4989555014200");
    drop(delivery);
    fallback.close().await.unwrap();

    // A buyer that crashed before processing it logs in with the sequence number before:
    // the same delivery comes again under the same number.
    let replay = server_util::buyer(server.addr, FALLBACK_BUYER, seq - 1).await;
    let mut incoming = replay.incoming().unwrap();
    let event = tokio::time::timeout(WAIT, incoming.recv()).await.unwrap();
    let Some(ServerEvent::Delivery(delivery)) = event else {
        panic!("expected the delivery again, got {event:?}");
    };
    assert_eq!(delivery.delivery().delivery_seq, seq);
    assert_eq!(delivery.delivery().lead_id, posted.lead_id);
    drop(delivery);
    replay.close().await.unwrap();

    // Logging in with that sequence number confirms it: nothing is delivered twice.
    let again = server_util::buyer(server.addr, FALLBACK_BUYER, seq).await;
    let mut incoming = again.incoming().unwrap();
    let event = tokio::time::timeout(Duration::from_millis(300), incoming.recv()).await;
    assert!(event.is_err(), "nothing more to deliver, got {event:?}");
    again.close().await.unwrap();
    let again = server_util::buyer(server.addr, FALLBACK_BUYER, seq - 1).await;
    let mut incoming = again.incoming().unwrap();
    let event = tokio::time::timeout(Duration::from_millis(300), incoming.recv()).await;
    assert!(
        event.is_err(),
        "a confirmed delivery is not kept, got {event:?}"
    );
    again.close().await.unwrap();
    let _ = seller.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn wrong_secrets_and_wrong_roles_get_coded_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let refused = Client::connect(
        server.addr,
        LoginParams::new(Role::Seller, DEFAULT_SELLER.0, "wrong"),
    )
    .await;
    assert!(
        matches!(refused, Err(ClientError::LoginRejected { reason, .. }) if reason == ErrorCode::BAD_CREDENTIALS),
        "{refused:?}"
    );
    let unknown = Client::connect(server.addr, LoginParams::new(Role::Admin, 99, "x")).await;
    assert!(
        matches!(unknown, Err(ClientError::LoginRejected { .. })),
        "{unknown:?}"
    );

    // A buyer may not ping; an admin may not ping; a seller may not read stats.
    let as_buyer = server_util::buyer(server.addr, 101, 0).await;
    let error = as_buyer.ping(solar_ping(4)).await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::ROLE_FORBIDDEN), "{error:?}");
    let seller = server_util::seller(server.addr).await;
    let error = seller.stats().await.unwrap_err();
    assert_eq!(error.code(), Some(ErrorCode::ROLE_FORBIDDEN), "{error:?}");
    // The seller's session carries on after the refusal.
    let result = seller.ping(solar_ping(5)).await.unwrap();
    offered(&result);

    let admin = server_util::admin(server.addr).await;
    assert_eq!(counter(&admin, "pings").await, Some(1));
    let trace = admin
        .trace(pingpost::protocol::TraceKey::Ping, result.ping_id)
        .await
        .unwrap();
    assert!(!trace.events.is_empty());
    let _ = (
        as_buyer.close().await,
        seller.close().await,
        admin.close().await,
    );
    server.shutdown().await.unwrap();
}

/// A stored buyer added at runtime with one campaign: ZIP 90001 only, $50 exclusive, at most
/// `leads_day` leads a day.
async fn add_capped_buyer(admin: &Client, leads_day: u32) {
    use pingpost::protocol::{
        Buyer, BuyerPut, Campaign, CampaignPut, CampaignRole, Caps, DeliveryMode, Effect, Pricing,
        PutMode, SaleModes, Status, TerritoryArea, TerritoryRule,
    };
    admin
        .buyer_put(BuyerPut {
            mode: PutMode::Create,
            buyer: Buyer {
                buyer_id: 205,
                name: "Capped Insurer".into(),
                status: Status::Active,
                secret: Some("capped-secret".into()),
                time_zone: "America/Los_Angeles".into(),
                budget_day: 0,
                budget_month: 0,
                delivery: DeliveryMode::Stored,
                accept_within_ms: 0,
            },
        })
        .await
        .unwrap();
    admin
        .campaign_put(CampaignPut {
            mode: PutMode::Create,
            campaign: Campaign {
                campaign_id: 2_050,
                buyer_id: 205,
                name: "90001 capped".into(),
                status: Status::Active,
                vertical: Symbol::new("auto_insurance").unwrap(),
                role: CampaignRole::Primary,
                territory: vec![TerritoryRule {
                    effect: Effect::Include,
                    rule: TerritoryArea::Postal {
                        country: Country::new("US").unwrap(),
                        postal_code: PostalCode::new("90001").unwrap(),
                    },
                }],
                filters: Vec::new(),
                schedule: Vec::new(),
                caps: Caps {
                    leads_hour: 0,
                    leads_day,
                    leads_week: 0,
                    leads_month: 0,
                    leads_total: 0,
                    spend_day: 0,
                    spend_month: 0,
                },
                sale_modes: SaleModes::EXCLUSIVE,
                pricing: Pricing::Fixed {
                    exclusive_price: 5_000,
                    shared_price: 0,
                },
                tier: 0,
                weight: 1,
                duplicate_lookback_s: 0,
            },
        })
        .await
        .unwrap();
}

fn insurance_ping(client_token: u64) -> Ping<'static> {
    let mut ping = solar_ping(client_token);
    ping.lead.vertical = Symbol::new("auto_insurance").unwrap();
    ping.lead.country = Country::new("US").unwrap();
    ping.lead.postal_code = PostalCode::new("90001").unwrap();
    ping
}

#[tokio::test]
async fn concurrent_pipelined_sellers_never_overrun_a_cap() {
    const SELLERS: u64 = 4;
    const PINGS_PER_SELLER: u64 = 100;
    const CAP: u32 = 25;
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let admin = server_util::admin(server.addr).await;
    add_capped_buyer(&admin, CAP).await;

    let mut tasks = Vec::new();
    for s in 0..SELLERS {
        let seller = server_util::seller(server.addr).await;
        for p in 0..PINGS_PER_SELLER {
            let seller = seller.clone();
            let n = s * PINGS_PER_SELLER + p;
            // All pings of a seller are in flight at once on its one connection.
            tasks.push(tokio::spawn(async move {
                let result = seller.ping(insurance_ping(n + 1)).await.unwrap();
                let PingOutcome::Offer { payouts, .. } = result.outcome else {
                    return None;
                };
                let posted = seller
                    .post(Post {
                        ping_id: result.ping_id,
                        contact: consumer(n),
                        consent: consent(),
                    })
                    .await
                    .unwrap();
                match posted.outcome {
                    PostOutcome::Sold { payout_total, .. } => Some((payouts[0], payout_total)),
                    PostOutcome::Unsold { .. } => None,
                }
            }));
        }
    }
    let mut capped_sales = 0;
    let mut other_sales = 0;
    for task in tasks {
        match tokio::time::timeout(WAIT, task).await.unwrap().unwrap() {
            // $50 less 10 %: the capped campaign.
            Some((_, 4_500)) => capped_sales += 1,
            Some(_) => other_sales += 1,
            None => {}
        }
    }
    assert_eq!(
        capped_sales, CAP,
        "the cap is reached exactly, never passed"
    );
    assert_eq!(
        other_sales,
        SELLERS * PINGS_PER_SELLER - u64::from(CAP),
        "the rest go to the next campaign in line (the $18 Los Angeles one)"
    );
    let stats = admin.stats().await.unwrap();
    let sold = stats
        .counters
        .iter()
        .find(|c| c.name == "leads_sold")
        .unwrap();
    assert_eq!(sold.value, SELLERS * PINGS_PER_SELLER);
    let _ = admin.close().await;
    server.shutdown().await.unwrap();
}

/// Posts the seed lead after its auction and returns the seller's answer.
async fn seed_sale(seller: &Client, token: u64) -> PostResult<'static> {
    let result = seller.ping(solar_ping(token)).await.unwrap();
    offered(&result);
    post(seller, result.ping_id, contact()).await
}

#[tokio::test]
async fn a_winner_that_does_not_answer_in_time_loses_the_lead_to_the_runner_up() {
    use pingpost::protocol::{Buyer, BuyerPut, DeliveryMode, PutMode, Status};
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    // Installer 103 gets 300 ms to answer a delivery instead of the default 5 s.
    let admin = server_util::admin(server.addr).await;
    admin
        .buyer_put(BuyerPut {
            mode: PutMode::Update,
            buyer: Buyer {
                buyer_id: 103,
                name: "Sonnenwerk München".into(),
                status: Status::Active,
                secret: None,
                time_zone: "Europe/Berlin".into(),
                budget_day: 0,
                budget_month: 0,
                delivery: DeliveryMode::Live,
                accept_within_ms: 300,
            },
        })
        .await
        .unwrap();
    let installers = connect_installers_with(server.addr, |id| {
        if id == 103 {
            OnDelivery::Silent
        } else {
            OnDelivery::Accept
        }
    })
    .await;
    let seller = server_util::seller(server.addr).await;
    let posted = seed_sale(&seller, 11).await;
    // 103 stayed silent past its 300 ms; the $42 runner-up took it.
    assert_eq!(sold(&posted), 3_780);
    let delivered = close_installers(installers).await;
    let got = receivers(&delivered);
    assert_eq!(got, vec![102, 103]);
    let _ = (seller.close().await, admin.close().await);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn when_every_buyer_in_line_rejects_the_post_is_unsold_with_its_reason() {
    use pingpost::protocol::{SetStatus, Status, StatusTarget};
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    // Without the fallback, the line ends with the three bidders.
    let admin = server_util::admin(server.addr).await;
    admin
        .set_status(SetStatus {
            target: StatusTarget::Campaign,
            id: 9_000,
            status: Status::Paused,
        })
        .await
        .unwrap();
    let installers = connect_installers(server.addr, &SEED_BUYERS).await;
    let seller = server_util::seller(server.addr).await;
    let posted = seed_sale(&seller, 12).await;
    match posted.outcome {
        PostOutcome::Unsold { reason } => assert_eq!(reason, ErrorCode::CASCADE_EXHAUSTED),
        PostOutcome::Sold { .. } => panic!("sold: {posted:?}"),
    }
    let delivered = close_installers(installers).await;
    let got = receivers(&delivered);
    assert_eq!(
        got,
        vec![101, 102, 103],
        "each bidder was offered it in turn"
    );
    let _ = (seller.close().await, admin.close().await);
    server.shutdown().await.unwrap();
}
