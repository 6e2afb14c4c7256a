//! The daemon against misbehaving clients, over raw loopback sockets: garbage, oversize frames,
//! no login, a reader that never reads, too many connections, a silent peer; and the bytes a
//! losing or non-matching buyer receives never contain the consumer's contact data.
//!
//! Each case checks that the offender gets its coded answer and that a well-behaved seller on
//! the same daemon carries on.

#![allow(clippy::unwrap_used)]

mod server_util;

use server_util::*;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use pingpost::client::Client;
use pingpost::protocol::{
    Bid, ErrorCode, Login, Message, NoBid, PingOutcome, Post, PostOutcome, Role, StatsRequest,
    check_frame, decode_frame, encode_frame,
};
use pingpost::server::default_book::{DEFAULT_ADMIN, DEFAULT_BUYER_SECRET, DEFAULT_SELLER};
use pingpost::server::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The contact fields that must never reach a buyer that did not win.
const PII: [&str; 4] = [
    "Muster",
    "+4989555014200",
    "jana.muster@example.com",
    "Marienplatz",
];

/// A well-behaved seller still gets answers.
async fn seller_carries_on(seller: &Client, token: u64) {
    let result = tokio::time::timeout(WAIT, seller.ping(lead(token, "solar", "US", "80202")))
        .await
        .expect("the seller is answered in time")
        .expect("the seller's ping is answered");
    assert!(
        matches!(
            result.outcome,
            PingOutcome::Offer { .. } | PingOutcome::NoSale { .. }
        ),
        "{result:?}"
    );
}

/// A client on a raw socket: what it sends and every byte it receives.
struct Raw {
    stream: TcpStream,
    received: BytesMut,
    /// Every byte received, for searching.
    all: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            received: BytesMut::new(),
            all: Vec::new(),
        }
    }

    async fn send(&mut self, correlation_id: u64, message: &Message<'_>) {
        let mut out = BytesMut::new();
        encode_frame(correlation_id, message, &mut out).unwrap();
        self.stream.write_all(&out).await.unwrap();
    }

    async fn login(addr: SocketAddr, role: Role, id: u64, secret: &str) -> Self {
        let mut raw = Self::connect(addr).await;
        raw.send(
            1,
            &Message::Login(Login {
                role,
                principal_id: id,
                secret: secret.into(),
                version_min: 1,
                version_max: 1,
                heartbeat_interval_ms: 0,
                last_delivery_seq: 0,
                client_name: "raw-test".into(),
            }),
        )
        .await;
        let (_, accepted) = raw.frame().await.expect("an answer to LOGIN");
        assert!(
            matches!(accepted, Message::LoginAccepted(_)),
            "{accepted:?}"
        );
        raw
    }

    /// The next frame, or `None` when the server closed the connection.
    async fn frame(&mut self) -> Option<(u64, Message<'static>)> {
        loop {
            if let Some(length) = check_frame(&self.received, 1 << 20).unwrap() {
                let frame = decode_frame(&self.received[..length]).unwrap().into_owned();
                self.received.advance(length);
                return Some((frame.header.correlation_id, frame.message));
            }
            let mut chunk = [0_u8; 8192];
            let read = tokio::time::timeout(WAIT, self.stream.read(&mut chunk))
                .await
                .expect("the server answers in time");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => {
                    self.received.extend_from_slice(&chunk[..n]);
                    self.all.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }

    /// The next `ERROR` or `GOODBYE`'s code, skipping other frames.
    async fn code(&mut self) -> Option<ErrorCode> {
        while let Some((_, message)) = self.frame().await {
            match message {
                Message::Error(error) => return Some(error.code),
                Message::Goodbye(goodbye) => return Some(goodbye.reason),
                Message::LoginRejected(rejected) => return Some(rejected.reason),
                _ => {}
            }
        }
        None
    }

    /// Reads until the server closes the connection.
    async fn until_closed(&mut self) {
        while self.frame().await.is_some() {}
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn garbage_and_oversize_frames_close_only_their_own_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let seller = server_util::seller(server.addr).await;

    // A frame with an unknown type: ERROR 102 for that frame, the session carries on.
    let mut raw = Raw::login(
        server.addr,
        Role::Seller,
        DEFAULT_SELLER.0,
        DEFAULT_SELLER.1,
    )
    .await;
    let mut bad_type = Vec::new();
    bad_type.extend_from_slice(&12_u32.to_le_bytes());
    bad_type.extend_from_slice(&0x7777_u16.to_le_bytes());
    bad_type.extend_from_slice(&[1, 0]);
    bad_type.extend_from_slice(&5_u64.to_le_bytes());
    raw.stream.write_all(&bad_type).await.unwrap();
    assert_eq!(raw.code().await, Some(ErrorCode::UNKNOWN_MESSAGE_TYPE));
    // An oversize prefix: ERROR 100, then the connection closes.
    raw.stream
        .write_all(&(64 * 1024 * 1024_u32).to_le_bytes())
        .await
        .unwrap();
    assert_eq!(raw.code().await, Some(ErrorCode::FRAME_TOO_LARGE));
    raw.until_closed().await;
    seller_carries_on(&seller, 1).await;

    // Random bytes before any login.
    let mut raw = Raw::connect(server.addr).await;
    raw.stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(raw.code().await.is_some(), "garbage gets a coded error");
    raw.until_closed().await;

    // A request before LOGIN.
    let mut raw = Raw::connect(server.addr).await;
    raw.send(9, &Message::Ping(lead(1, "solar", "US", "80202")))
        .await;
    assert_eq!(raw.code().await, Some(ErrorCode::NOT_LOGGED_IN));
    raw.until_closed().await;
    seller_carries_on(&seller, 2).await;

    let _ = seller.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_that_never_reads_is_closed_as_a_slow_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.session_queue_len = 64;
    let server = start(config).await.unwrap();
    let seller = server_util::seller(server.addr).await;

    // An admin that asks for stats (about 1.5 KB each) as fast as it can and never reads.
    let mut raw = Raw::login(server.addr, Role::Admin, DEFAULT_ADMIN.0, DEFAULT_ADMIN.1).await;
    let mut burst = BytesMut::new();
    for id in 0..20_000_u64 {
        encode_frame(id + 2, &Message::StatsRequest(StatsRequest {}), &mut burst).unwrap();
    }
    // The server may close the connection before all of it is written.
    let _ = tokio::time::timeout(WAIT, raw.stream.write_all(&burst)).await;
    seller_carries_on(&seller, 3).await;

    let admin = server_util::admin(server.addr).await;
    let closed = async {
        loop {
            let stats = admin.stats().await.unwrap();
            let slow = stats
                .counters
                .iter()
                .find(|c| c.name == "slow_consumers_closed")
                .map_or(0, |c| c.value);
            if slow >= 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(WAIT, closed)
        .await
        .expect("the non-reading session is closed");
    // Its socket ends: reading drains what was sent, then end of stream.
    raw.until_closed().await;
    seller_carries_on(&seller, 4).await;
    let _ = (admin.close().await, seller.close().await);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn connections_over_the_limit_are_told_why() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.connections_max = 2;
    let server = start(config).await.unwrap();
    let seller = server_util::seller(server.addr).await;
    let _second = Raw::connect(server.addr).await;
    // Let the accept loop take the first two.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut third = Raw::connect(server.addr).await;
    assert_eq!(third.code().await, Some(ErrorCode::TOO_MANY_CONNECTIONS));
    third.until_closed().await;
    seller_carries_on(&seller, 5).await;
    let _ = seller.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_silent_peer_is_declared_dead_after_three_heartbeat_intervals() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    let mut raw = Raw::connect(server.addr).await;
    raw.send(
        1,
        &Message::Login(Login {
            role: Role::Seller,
            principal_id: DEFAULT_SELLER.0,
            secret: DEFAULT_SELLER.1.into(),
            version_min: 1,
            version_max: 1,
            heartbeat_interval_ms: 1_000,
            last_delivery_seq: 0,
            client_name: "silent".into(),
        }),
    )
    .await;
    // The server's heartbeats arrive, then GOODBYE HEARTBEAT_TIMEOUT since we never answer.
    assert_eq!(raw.code().await, Some(ErrorCode::HEARTBEAT_TIMEOUT));
    raw.until_closed().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn losing_and_non_matching_buyers_never_receive_contact_data() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path()).await;
    // Buyer 101 bids $38 and loses; 103 bids $45 and wins; 201 (Colorado) does not match.
    let mut loser = Raw::login(server.addr, Role::Buyer, 101, DEFAULT_BUYER_SECRET).await;
    let mut winner = Raw::login(server.addr, Role::Buyer, 103, DEFAULT_BUYER_SECRET).await;
    let mut stranger = Raw::login(server.addr, Role::Buyer, 201, DEFAULT_BUYER_SECRET).await;
    for id in [102, 104, 105, 106] {
        // The other installers pass at once (so the auction does not wait for them).
        let mut raw = Raw::login(server.addr, Role::Buyer, id, DEFAULT_BUYER_SECRET).await;
        tokio::spawn(async move {
            while let Some((correlation_id, message)) = raw.frame().await {
                if let Message::PingOffer(offer) = message {
                    let no_bid = NoBid {
                        auction_id: offer.auction_id,
                        campaign_id: offer.campaign_id,
                        reason: ErrorCode::NOT_INTERESTED,
                    };
                    raw.send(correlation_id, &Message::NoBid(no_bid)).await;
                }
            }
        });
    }
    let seller = server_util::seller(server.addr).await;
    let pinged = {
        let seller = seller.clone();
        tokio::spawn(async move { seller.ping(lead(7, "solar", "DE", "80331")).await })
    };
    for (raw, price) in [(&mut loser, 3_800), (&mut winner, 4_500)] {
        let (correlation_id, message) = raw.frame().await.unwrap();
        let Message::PingOffer(offer) = message else {
            panic!("expected an offer, got {message:?}");
        };
        let bid = Bid {
            auction_id: offer.auction_id,
            campaign_id: offer.campaign_id,
            price,
        };
        raw.send(correlation_id, &Message::Bid(bid)).await;
    }
    let result = pinged.await.unwrap().unwrap();
    let posted = tokio::spawn({
        let seller = seller.clone();
        async move {
            seller
                .post(Post {
                    ping_id: result.ping_id,
                    contact: contact(),
                    consent: consent(),
                })
                .await
        }
    });
    // The winner receives the lead (after its AUCTION_WON) and accepts it.
    let delivery = loop {
        let (correlation_id, message) = winner.frame().await.unwrap();
        if let Message::LeadDelivery(delivery) = message {
            break (correlation_id, delivery);
        }
    };
    let (correlation_id, delivery) = delivery;
    let ack = pingpost::protocol::DeliveryAck {
        delivery_seq: delivery.delivery_seq,
        lead_id: delivery.lead_id,
        outcome: pingpost::protocol::DeliveryOutcome::Accept,
        reason: ErrorCode::NONE,
    };
    winner
        .send(correlation_id, &Message::DeliveryAck(ack))
        .await;
    let posted = posted.await.unwrap().unwrap();
    assert!(
        matches!(posted.outcome, PostOutcome::Sold { .. }),
        "{posted:?}"
    );

    // The loser got its offer and its AUCTION_LOST; the stranger nothing. Close them and read
    // every byte they were sent.
    let _ = seller.close().await;
    server.shutdown().await.unwrap();
    loser.until_closed().await;
    stranger.until_closed().await;
    for field in PII {
        assert!(contains(&winner.all, field), "the winner has {field}");
        assert!(!contains(&loser.all, field), "the losing buyer saw {field}");
        assert!(
            !contains(&stranger.all, field),
            "a non-matching buyer saw {field}"
        );
    }
    assert!(
        contains(&loser.all, "80331"),
        "the loser saw the ping's view"
    );
}
