//! Simulated live buyers: each session answers its offers after a drawn latency, with a bid
//! drawn between the offer's floor and the campaign's `bid_max` (or a `NO_BID`), and accepts or
//! rejects each delivery.
//!
//! Every draw is a pure function of the seed and the auction or delivery, so a rerun makes the
//! same decisions; each answer runs in its own task, so a slow answer never holds back the
//! next offer, exactly as a real bidder's workers would behave.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use pingpost::bookgen::SplitMix64;
use pingpost::client::{Client, ServerEvent};
use pingpost::protocol::{ErrorCode, Money};

use crate::cli::{LatencyDist, Share};
use crate::limits::BPS_PER_ONE;
use crate::report::{BuyerReport, Counts, code_label};

/// Salts for the independent draws of one offer or delivery.
const LATENCY_SALT: u64 = 0x6C61_7465;
const BID_SALT: u64 = 0x6269_6421;
const NO_BID_SALT: u64 = 0x6E6F_6269;
const REJECT_SALT: u64 = 0x7265_6A65;

/// How the simulated buyers behave.
#[derive(Debug, Clone)]
pub struct BuyerBehavior {
    pub latency_ms: LatencyDist,
    pub no_bid_share: Share,
    pub reject_share: Share,
    pub seed: u64,
    /// Each live campaign's highest bid that counts.
    pub bid_max: Arc<HashMap<u64, Money>>,
}

/// A buyer's answer to one offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Bid(Money),
    NoBid,
}

impl BuyerBehavior {
    /// How long to wait before answering the offer of auction `auction_id` to `campaign_id`.
    pub fn answer_latency(&self, auction_id: u64, campaign_id: u64) -> Duration {
        let draw = SplitMix64::fork(self.seed ^ LATENCY_SALT ^ campaign_id, auction_id).next_u64();
        Duration::from_millis(self.latency_ms.sample_ms(draw))
    }

    /// The answer to an offer with `price_floor`: a bid uniform in `floor..=bid_max` (the
    /// campaign's; the floor itself when the campaign is not known as live), or `NO_BID` for
    /// the no-bid share and when the floor is above what the campaign may bid.
    pub fn answer(&self, auction_id: u64, campaign_id: u64, price_floor: Money) -> Answer {
        let mut rng = SplitMix64::fork(self.seed ^ NO_BID_SALT ^ campaign_id, auction_id);
        if self
            .no_bid_share
            .holds_for(rng.below(u64::from(BPS_PER_ONE)))
        {
            return Answer::NoBid;
        }
        let max = self
            .bid_max
            .get(&campaign_id)
            .copied()
            .unwrap_or(price_floor);
        if price_floor > max {
            return Answer::NoBid;
        }
        let mut rng = SplitMix64::fork(self.seed ^ BID_SALT ^ campaign_id, auction_id);
        Answer::Bid(rng.range(price_floor, max))
    }

    /// Whether this buyer rejects the delivery of `lead_id`.
    pub fn rejects(&self, buyer_id: u64, lead_id: u64) -> bool {
        let draw = SplitMix64::fork(self.seed ^ REJECT_SALT ^ buyer_id, lead_id)
            .below(u64::from(BPS_PER_ONE));
        self.reject_share.holds_for(draw)
    }
}

/// What the buyer sessions counted, shared by all of them.
#[derive(Debug, Default)]
pub struct BuyerCounters {
    pub offers: AtomicU64,
    pub bids: AtomicU64,
    pub no_bids: AtomicU64,
    pub won: AtomicU64,
    pub lost: AtomicU64,
    pub deliveries: AtomicU64,
    pub accepted: AtomicU64,
    pub rejected: AtomicU64,
    /// By code; a mutex because codes are rare and counted off the hot path.
    pub lost_by_reason: Mutex<Counts>,
    pub errors_by_code: Mutex<Counts>,
}

impl BuyerCounters {
    fn count(counts: &Mutex<Counts>, label: &str) {
        counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .add(label, 1);
    }

    pub fn report(&self, sessions: u64) -> BuyerReport {
        let get = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let lock = |counts: &Mutex<Counts>| {
            counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
        };
        BuyerReport {
            sessions,
            offers: get(&self.offers),
            bids: get(&self.bids),
            no_bids: get(&self.no_bids),
            won: get(&self.won),
            lost: get(&self.lost),
            lost_by_reason: lock(&self.lost_by_reason),
            deliveries: get(&self.deliveries),
            accepted: get(&self.accepted),
            rejected: get(&self.rejected),
            errors_by_code: lock(&self.errors_by_code),
        }
    }
}

/// Runs one live buyer session until the session ends: reads its events and answers each offer
/// and delivery in a task of its own.
pub async fn run_buyer(
    client: Client,
    buyer_id: u64,
    behavior: Arc<BuyerBehavior>,
    counters: Arc<BuyerCounters>,
) {
    let Some(mut incoming) = client.incoming() else {
        return;
    };
    while let Some(event) = incoming.recv().await {
        match event {
            ServerEvent::Offer(handle) => {
                counters.offers.fetch_add(1, Ordering::Relaxed);
                let behavior = Arc::clone(&behavior);
                let counters = Arc::clone(&counters);
                tokio::spawn(async move {
                    let offer = handle.offer();
                    let (auction_id, campaign_id) = (offer.auction_id, offer.campaign_id);
                    let answer = behavior.answer(auction_id, campaign_id, offer.price_floor);
                    tokio::time::sleep(behavior.answer_latency(auction_id, campaign_id)).await;
                    let sent = match answer {
                        Answer::Bid(price) => {
                            counters.bids.fetch_add(1, Ordering::Relaxed);
                            handle.bid(price).await
                        }
                        Answer::NoBid => {
                            counters.no_bids.fetch_add(1, Ordering::Relaxed);
                            handle.no_bid(ErrorCode::NOT_INTERESTED).await
                        }
                    };
                    if sent.is_err() {
                        BuyerCounters::count(&counters.errors_by_code, "DISCONNECTED");
                    }
                });
            }
            ServerEvent::Delivery(handle) => {
                counters.deliveries.fetch_add(1, Ordering::Relaxed);
                let behavior = Arc::clone(&behavior);
                let counters = Arc::clone(&counters);
                tokio::spawn(async move {
                    let lead_id = handle.delivery().lead_id;
                    let sent = if behavior.rejects(buyer_id, lead_id) {
                        counters.rejected.fetch_add(1, Ordering::Relaxed);
                        handle.reject(ErrorCode::REJECT_OTHER).await
                    } else {
                        counters.accepted.fetch_add(1, Ordering::Relaxed);
                        handle.accept().await
                    };
                    if sent.is_err() {
                        BuyerCounters::count(&counters.errors_by_code, "DISCONNECTED");
                    }
                });
            }
            ServerEvent::Won(_) => {
                counters.won.fetch_add(1, Ordering::Relaxed);
            }
            ServerEvent::Lost(lost) => {
                counters.lost.fetch_add(1, Ordering::Relaxed);
                BuyerCounters::count(&counters.lost_by_reason, &code_label(lost.reason));
            }
            ServerEvent::Error { code, .. } => {
                BuyerCounters::count(&counters.errors_by_code, &code_label(code));
            }
            ServerEvent::Goodbye { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn behavior(no_bid: &str, reject: &str) -> BuyerBehavior {
        BuyerBehavior {
            latency_ms: LatencyDist::Uniform { lo: 2, hi: 9 },
            no_bid_share: no_bid.parse().unwrap_or_default(),
            reject_share: reject.parse().unwrap_or_default(),
            seed: 3,
            bid_max: Arc::new(HashMap::from([(7, 4_500), (8, 1_000)])),
        }
    }

    #[test]
    fn bids_fall_between_the_floor_and_the_campaign_max() {
        let b = behavior("0", "0");
        let mut seen_low = false;
        let mut seen_high = false;
        for auction in 0..10_000 {
            match b.answer(auction, 7, 3_800) {
                Answer::Bid(price) => {
                    assert!((3_800..=4_500).contains(&price), "{price}");
                    seen_low |= price < 3_900;
                    seen_high |= price > 4_400;
                }
                Answer::NoBid => panic!("no no-bid share was asked for"),
            }
        }
        assert!(seen_low && seen_high, "the bids spread over the range");
        // A floor above the campaign's max cannot be met.
        assert_eq!(b.answer(1, 8, 1_001), Answer::NoBid);
        // An unknown campaign bids the floor.
        assert_eq!(b.answer(1, 99, 2_000), Answer::Bid(2_000));
    }

    #[test]
    fn shares_and_latencies_follow_the_behavior() {
        let b = behavior("10%", "25%");
        let no_bids = (0..20_000)
            .filter(|&a| b.answer(a, 7, 3_000) == Answer::NoBid)
            .count();
        assert!((1_800..=2_200).contains(&no_bids), "{no_bids}");
        let rejects = (0..20_000).filter(|&lead| b.rejects(5, lead)).count();
        assert!((4_600..=5_400).contains(&rejects), "{rejects}");
        for auction in 0..1_000 {
            let latency = b.answer_latency(auction, 7);
            assert!(
                (Duration::from_millis(2)..=Duration::from_millis(9)).contains(&latency),
                "{latency:?}"
            );
        }
        assert_eq!(b.answer(5, 7, 3_000), b.answer(5, 7, 3_000));
    }
}
