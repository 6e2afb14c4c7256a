//! A stand-in exchange for the generator's own tests: a small tokio server on the
//! `pingpost::protocol` codec that accepts any login and answers pings, posts and admin
//! changes at once. It can stall once, to show that a stall reaches the latency tail.
//!
//! It is no auction: it lets the generator's pacing, measurement and reporting be tested
//! without the daemon, in process, with exact counts of what arrived.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use pingpost::limits::{FRAME_LENGTH_MAX, IN_FLIGHT_MAX};
use pingpost::protocol::{
    AdminOk, Currency, Error, ErrorCode, GoodbyeAck, HeartbeatAck, LoginAccepted, Message,
    PingOutcome, PingResult, PostOutcome, PostResult, Receipt, SaleMode, WireCodec, check_frame,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_util::codec::Framed;

/// The payout the fake exchange offers for every lead, in cents.
pub const FAKE_PAYOUT: u64 = 2_500;

/// How the fake exchange behaves.
#[derive(Debug, Clone, Default)]
pub struct FakeConfig {
    /// Before answering the ping that arrives as number `n` (from 0), wait this long, once:
    /// that connection stops reading meanwhile, as a server in a GC pause or a fsync stall.
    pub stall_once: Option<(u64, Duration)>,
    /// Every `n`-th ping (by arrival) gets `NO_SALE NO_MATCHING_CAMPAIGN`; 0: never.
    pub no_sale_every: u64,
    /// Record each ping's arrival time and client token (for pacing tests).
    pub record_arrivals: bool,
}

/// What the fake exchange received.
#[derive(Debug, Default)]
pub struct FakeCounters {
    pub logins: AtomicU64,
    pub pings: AtomicU64,
    pub posts: AtomicU64,
    pub admin_changes: AtomicU64,
    /// `(client_token, arrival)` of each ping, when recording.
    pub arrivals: Mutex<Vec<(u64, Instant)>>,
}

impl FakeCounters {
    pub fn arrivals(&self) -> Vec<(u64, Instant)> {
        self.arrivals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running fake exchange on a free loopback port. Dropping it stops accepting.
#[derive(Debug)]
pub struct FakeServer {
    pub addr: SocketAddr,
    pub counters: Arc<FakeCounters>,
    accept: JoinHandle<()>,
}

impl FakeServer {
    pub async fn start(config: FakeConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(FakeCounters::default());
        let shared = Arc::new(Shared {
            config,
            counters: Arc::clone(&counters),
            stalled: AtomicBool::new(false),
        });
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Ok(Self {
            addr,
            counters,
            accept,
        })
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[derive(Debug)]
struct Shared {
    config: FakeConfig,
    counters: Arc<FakeCounters>,
    stalled: AtomicBool,
}

async fn serve(stream: TcpStream, shared: Arc<Shared>) {
    let Ok(usd) = Currency::new("USD") else {
        return;
    };
    let mut framed = Framed::new(stream, WireCodec::new(FRAME_LENGTH_MAX));
    let mut next_id = 1u64;
    while let Some(Ok(raw)) = framed.next().await {
        let Ok(frame) = raw.decode() else {
            return;
        };
        let correlation_id = frame.header.correlation_id;
        let answer = match frame.message {
            Message::Login(_) => {
                shared.counters.logins.fetch_add(1, Ordering::Relaxed);
                Message::LoginAccepted(LoginAccepted {
                    session_id: 1,
                    version: 1,
                    heartbeat_interval_ms: 5_000,
                    frame_length_max: FRAME_LENGTH_MAX,
                    in_flight_max: IN_FLIGHT_MAX,
                    currency: usd,
                    server_time: 0,
                })
            }
            Message::Heartbeat(heartbeat) => Message::HeartbeatAck(HeartbeatAck {
                sent_at: heartbeat.sent_at,
            }),
            Message::Goodbye(_) => {
                let _ = framed
                    .send((correlation_id, &Message::GoodbyeAck(GoodbyeAck)))
                    .await;
                return;
            }
            Message::Ping(ping) => {
                let n = shared.counters.pings.fetch_add(1, Ordering::Relaxed);
                if shared.config.record_arrivals {
                    shared
                        .counters
                        .arrivals
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push((ping.client_token, Instant::now()));
                }
                if let Some((at, stall)) = shared.config.stall_once {
                    if n == at && !shared.stalled.swap(true, Ordering::AcqRel) {
                        tokio::time::sleep(stall).await;
                    }
                }
                next_id += 1;
                let every = shared.config.no_sale_every;
                let outcome = if every > 0 && (n + 1) % every == 0 {
                    PingOutcome::NoSale {
                        reason: ErrorCode::NO_MATCHING_CAMPAIGN,
                    }
                } else {
                    PingOutcome::Offer {
                        sale_mode: SaleMode::Exclusive,
                        payouts: vec![FAKE_PAYOUT].into(),
                        post_within_ms: 30_000,
                    }
                };
                Message::PingResult(PingResult {
                    ping_id: next_id,
                    outcome,
                })
            }
            Message::Post(post) => {
                shared.counters.posts.fetch_add(1, Ordering::Relaxed);
                sold(post.ping_id)
            }
            Message::DirectPost(_) => {
                shared.counters.posts.fetch_add(1, Ordering::Relaxed);
                next_id += 1;
                sold(next_id)
            }
            Message::VerticalPut(_)
            | Message::VerticalRemove(_)
            | Message::SellerPut(_)
            | Message::SellerRemove(_)
            | Message::BuyerPut(_)
            | Message::BuyerRemove(_)
            | Message::CampaignPut(_)
            | Message::CampaignRemove(_)
            | Message::SetStatus(_) => {
                let n = shared
                    .counters
                    .admin_changes
                    .fetch_add(1, Ordering::Relaxed);
                Message::AdminOk(AdminOk {
                    book_version: n + 1,
                })
            }
            _ => Message::Error(Error {
                code: ErrorCode::UNEXPECTED_MESSAGE,
                message: "the fake exchange does not answer this message".into(),
            }),
        };
        // Answers go out in one write per batch of requests: flush only when no further whole
        // frame is already buffered, as a real exchange should.
        if framed.feed((correlation_id, &answer)).await.is_err() {
            return;
        }
        let more = matches!(
            check_frame(framed.read_buffer(), FRAME_LENGTH_MAX),
            Ok(Some(_))
        );
        if !more && framed.flush().await.is_err() {
            return;
        }
    }
}

fn sold(ping_id: u64) -> Message<'static> {
    Message::PostResult(PostResult {
        ping_id,
        lead_id: ping_id,
        outcome: PostOutcome::Sold {
            sale_mode: SaleMode::Exclusive,
            payout_total: FAKE_PAYOUT,
            receipts: vec![Receipt {
                receipt_id: ping_id,
                payout: FAKE_PAYOUT,
            }]
            .into(),
        },
    })
}
