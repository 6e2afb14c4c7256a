//! Deliveries waiting for their buyer: what survives a disconnect and a restart.
//!
//! Every `LEAD_DELIVERY` the engine makes is kept here, under the buyer's delivery sequence
//! number, until it is settled:
//!
//! - a **live** delivery (the buyer must accept or reject it in time) is kept until the engine
//!   settles its slot (accepted, rejected, or timed out and cascaded); a buyer that reconnects
//!   before then receives it again with its original number;
//! - a **stored** delivery (a rule-only buyer that takes leads when it connects) is final when
//!   made, and kept until the buyer confirms it: a `DELIVERY_ACK` for it, or a `LOGIN` whose
//!   `last_delivery_seq` is at or above it.
//!
//! After a restart the outbox is rebuilt from the journal's events by [`OutboxBuilder`]: the
//! ping's view, the award's price, the post's contact record and the delivery's number are all
//! in the events, so nothing is lost and nothing gets a new number.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::engine::events::{Event, LeadId, PingId, Resolution};
use crate::engine::machine::Engine;
use crate::engine::types::{BuyerId, CampaignId};
use crate::limits::OUTBOX_STORED_PER_BUYER_MAX;
use crate::protocol::{Consent, Contact, LeadDelivery, LeadView, Money, SaleMode};

/// One delivery not yet settled.
#[derive(Debug, Clone)]
pub struct PendingDelivery {
    pub delivery: LeadDelivery<'static>,
    /// The buyer must answer it (live); otherwise it is final and waits to be picked up.
    pub live: bool,
    /// Its record is durable and it may be sent.
    pub released: bool,
}

/// Every buyer's unsettled deliveries, by sequence number.
#[derive(Debug)]
pub struct Outbox {
    buyers: FxHashMap<BuyerId, BTreeMap<u64, PendingDelivery>>,
    /// Stored deliveries kept in memory per buyer; older ones are read back from the journal.
    stored_per_buyer_max: usize,
    /// Per buyer, the highest sequence number dropped from memory (it is in the journal).
    evicted_through: FxHashMap<BuyerId, u64>,
    /// Live deliveries by auction and campaign, to settle them from events that do not name
    /// the buyer.
    live: FxHashMap<(PingId, CampaignId), (BuyerId, u64)>,
}

impl Default for Outbox {
    fn default() -> Self {
        Self::new(OUTBOX_STORED_PER_BUYER_MAX)
    }
}

/// What a buyer that logs in must be sent again, oldest first.
#[derive(Debug, Default)]
pub struct Resend {
    /// Deliveries no longer in memory, to read back from the journal: sequence numbers
    /// `after + 1 ..= through`.
    pub from_journal: Option<(u64, u64)>,
    /// Deliveries still in memory, after those.
    pub from_memory: Vec<LeadDelivery<'static>>,
}

impl Outbox {
    pub fn new(stored_per_buyer_max: usize) -> Self {
        Self {
            buyers: FxHashMap::default(),
            stored_per_buyer_max,
            evicted_through: FxHashMap::default(),
            live: FxHashMap::default(),
        }
    }

    pub fn insert(&mut self, buyer: BuyerId, pending: PendingDelivery) {
        if pending.live {
            let delivery = &pending.delivery;
            self.live.insert(
                (delivery.auction_id, delivery.campaign_id),
                (buyer, delivery.delivery_seq),
            );
        }
        let queue = self.buyers.entry(buyer).or_default();
        queue.insert(pending.delivery.delivery_seq, pending);
        // Over the bound, the oldest stored deliveries whose records are durable leave memory;
        // the journal has them.
        while queue.len() > self.stored_per_buyer_max {
            let Some((&seq, oldest)) = queue.iter().next() else {
                break;
            };
            if oldest.live || !oldest.released {
                break;
            }
            queue.remove(&seq);
            let through = self.evicted_through.entry(buyer).or_default();
            *through = (*through).max(seq);
        }
    }

    /// Marks a delivery sendable (its journal record is durable); `false` if it is no longer
    /// waiting (settled meanwhile), and so must not be sent.
    pub fn release(&mut self, buyer: BuyerId, seq: u64) -> bool {
        let Some(pending) = self.buyers.get_mut(&buyer).and_then(|q| q.get_mut(&seq)) else {
            return false;
        };
        pending.released = true;
        true
    }

    /// A buyer logged in having processed everything up to `last_seq`: stored deliveries up to
    /// it are confirmed and dropped. Returns what to send again, oldest first.
    pub fn reattach(&mut self, buyer: BuyerId, last_seq: u64) -> Resend {
        let evicted_through = self.evicted_through.get(&buyer).copied().unwrap_or(0);
        let from_journal = (last_seq < evicted_through).then_some((last_seq, evicted_through));
        if last_seq >= evicted_through {
            self.evicted_through.remove(&buyer);
        }
        let Some(queue) = self.buyers.get_mut(&buyer) else {
            return Resend {
                from_journal,
                from_memory: Vec::new(),
            };
        };
        // Live deliveries stay until the engine settles them; stored ones up to `last_seq` are
        // confirmed.
        queue.retain(|&seq, pending| seq > last_seq || pending.live);
        let from_memory = queue
            .range(last_seq.saturating_add(1)..)
            .filter(|(_, pending)| pending.released)
            .map(|(_, pending)| pending.delivery.clone())
            .collect();
        if queue.is_empty() {
            self.buyers.remove(&buyer);
        }
        Resend {
            from_journal,
            from_memory,
        }
    }

    /// Takes a buyer's deliveries with sequence numbers in `after + 1 ..= through`, oldest
    /// first (for reading them back from the journal).
    pub fn take_range(
        &mut self,
        buyer: BuyerId,
        after: u64,
        through: u64,
    ) -> Vec<LeadDelivery<'static>> {
        let Some(queue) = self.buyers.get_mut(&buyer) else {
            return Vec::new();
        };
        let keys: Vec<u64> = queue
            .range(after.saturating_add(1)..=through)
            .map(|(&seq, _)| seq)
            .collect();
        keys.into_iter()
            .filter_map(|seq| queue.remove(&seq))
            .map(|pending| pending.delivery)
            .collect()
    }

    /// The buyer answered a delivery: it is settled either way.
    pub fn acknowledged(&mut self, buyer: BuyerId, seq: u64) {
        self.remove(buyer, seq);
    }

    fn remove(&mut self, buyer: BuyerId, seq: u64) {
        let Some(queue) = self.buyers.get_mut(&buyer) else {
            return;
        };
        if let Some(pending) = queue.remove(&seq) {
            if pending.live {
                let delivery = &pending.delivery;
                self.live
                    .remove(&(delivery.auction_id, delivery.campaign_id));
            }
        }
        if queue.is_empty() {
            self.buyers.remove(&buyer);
        }
    }

    /// The engine settled a live delivery's slot (sold, or failed and cascaded).
    pub fn slot_settled(&mut self, ping: PingId, campaign: CampaignId) {
        if let Some((buyer, seq)) = self.live.remove(&(ping, campaign)) {
            self.remove(buyer, seq);
        }
    }

    /// How many deliveries wait in all.
    pub fn waiting(&self) -> usize {
        self.buyers.values().map(BTreeMap::len).sum()
    }

    /// A copy of what a snapshot keeps of the outbox: every waiting delivery, in buyer and
    /// sequence order, and the per-buyer marks of deliveries left to the journal.
    pub fn image(&self) -> OutboxImage {
        let mut buyers: Vec<(BuyerId, Vec<(LeadDelivery<'static>, bool)>)> = self
            .buyers
            .iter()
            .map(|(&buyer, queue)| {
                let deliveries = queue
                    .values()
                    .map(|pending| (pending.delivery.clone(), pending.live))
                    .collect();
                (buyer, deliveries)
            })
            .collect();
        buyers.sort_unstable_by_key(|&(buyer, _)| buyer);
        let mut evicted_through: Vec<(BuyerId, u64)> = self
            .evicted_through
            .iter()
            .map(|(&buyer, &seq)| (buyer, seq))
            .collect();
        evicted_through.sort_unstable();
        OutboxImage {
            buyers,
            evicted_through,
        }
    }

    /// The outbox a snapshot kept. Its deliveries' records were durable before the snapshot
    /// was written, so every one may be sent.
    pub fn from_image(image: OutboxImage, stored_per_buyer_max: usize) -> Self {
        let mut outbox = Self::new(stored_per_buyer_max);
        for (buyer, deliveries) in image.buyers {
            for (delivery, live) in deliveries {
                outbox.insert(
                    buyer,
                    PendingDelivery {
                        delivery,
                        live,
                        released: true,
                    },
                );
            }
        }
        for (buyer, seq) in image.evicted_through {
            let through = outbox.evicted_through.entry(buyer).or_default();
            *through = (*through).max(seq);
        }
        outbox
    }

    /// Applies the settling effect of one engine event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::SaleCommitted {
                ping_id, campaign, ..
            }
            | Event::SaleFailed {
                ping_id, campaign, ..
            } => self.slot_settled(*ping_id, *campaign),
            _ => {}
        }
    }
}

/// An outbox as a snapshot holds it (see [`Outbox::image`]).
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxImage {
    /// Per buyer, its waiting deliveries in sequence order, each with whether it is live.
    buyers: Vec<(BuyerId, Vec<(LeadDelivery<'static>, bool)>)>,
    evicted_through: Vec<(BuyerId, u64)>,
}

/// What the builder keeps of a ping until its lead settles.
#[derive(Debug)]
struct PingFacts {
    lead: Arc<LeadView<'static>>,
    sale_mode: SaleMode,
    prices: FxHashMap<CampaignId, Money>,
    posted: Option<(LeadId, Contact<'static>, Consent<'static>)>,
}

/// Rebuilds the outbox from the journal's events, oldest first.
#[derive(Debug, Default)]
pub struct OutboxBuilder {
    pings: FxHashMap<PingId, PingFacts>,
    outbox: Outbox,
    /// Keep only this buyer's deliveries (reading one buyer's back from the journal).
    only_buyer: Option<BuyerId>,
}

impl OutboxBuilder {
    /// A builder whose outbox keeps `stored_per_buyer_max` stored deliveries per buyer.
    pub fn new(stored_per_buyer_max: usize) -> Self {
        Self {
            pings: FxHashMap::default(),
            outbox: Outbox::new(stored_per_buyer_max),
            only_buyer: None,
        }
    }

    /// A builder that keeps one buyer's deliveries only, all of them in memory.
    pub fn for_buyer(buyer: BuyerId) -> Self {
        Self {
            pings: FxHashMap::default(),
            outbox: Outbox::new(usize::MAX),
            only_buyer: Some(buyer),
        }
    }

    /// A builder that goes on from an outbox a snapshot kept: the leads of the deliveries it
    /// meets next come from the engine loaded from the same snapshot (see
    /// [`OutboxBuilder::observe_resumed`]).
    pub fn resume(outbox: Outbox) -> Self {
        Self {
            pings: FxHashMap::default(),
            outbox,
            only_buyer: None,
        }
    }

    /// [`OutboxBuilder::observe`] for a builder resumed from a snapshot, `engine` having
    /// applied `event` already: a delivery of a lead pinged before the snapshot, whose events
    /// this builder never saw, is rebuilt from the engine's auction instead.
    pub fn observe_resumed(&mut self, event: &Event, engine: &Engine) {
        if let Event::Delivered {
            at,
            ping_id,
            campaign,
            buyer,
            delivery_seq,
            ack_deadline,
            ..
        } = event
        {
            if !self.pings.contains_key(ping_id) {
                let accept_within_ms = accept_within_ms(*at, *ack_deadline);
                if let Some(delivery) = engine.delivery_record(
                    *ping_id,
                    *campaign,
                    *delivery_seq,
                    *at,
                    accept_within_ms,
                ) {
                    self.outbox.insert(
                        *buyer,
                        PendingDelivery {
                            delivery,
                            live: ack_deadline.is_some(),
                            released: true,
                        },
                    );
                }
                return;
            }
        }
        self.observe(event);
    }

    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::PingOpened { ping_id, lead, .. } => {
                self.pings.insert(
                    *ping_id,
                    PingFacts {
                        lead: Arc::clone(lead),
                        sale_mode: SaleMode::Exclusive,
                        prices: FxHashMap::default(),
                        posted: None,
                    },
                );
            }
            Event::AuctionResolved {
                ping_id,
                resolution,
                ..
            } => match resolution {
                Resolution::Offer {
                    sale_mode,
                    winners,
                    runners_up,
                    ..
                } => {
                    if let Some(facts) = self.pings.get_mut(ping_id) {
                        facts.sale_mode = *sale_mode;
                        for award in winners.iter().chain(runners_up) {
                            facts.prices.insert(award.campaign, award.price);
                        }
                    }
                }
                Resolution::NoSale { .. } => {
                    self.pings.remove(ping_id);
                }
            },
            Event::CascadeReserved { ping_id, award, .. } => {
                if let Some(facts) = self.pings.get_mut(ping_id) {
                    facts.prices.insert(award.campaign, award.price);
                }
            }
            Event::Posted {
                ping_id,
                lead_id,
                contact,
                consent,
                ..
            } => {
                if let Some(facts) = self.pings.get_mut(ping_id) {
                    facts.posted = Some((*lead_id, contact.clone(), consent.clone()));
                }
            }
            Event::Delivered {
                at,
                ping_id,
                campaign,
                buyer,
                delivery_seq,
                ack_deadline,
                ..
            } => {
                if self.only_buyer.is_some_and(|only| only != *buyer) {
                    return;
                }
                let Some(facts) = self.pings.get(ping_id) else {
                    return;
                };
                let Some((lead_id, contact, consent)) = &facts.posted else {
                    return;
                };
                let accept_within_ms = accept_within_ms(*at, *ack_deadline);
                self.outbox.insert(
                    *buyer,
                    PendingDelivery {
                        delivery: LeadDelivery {
                            delivery_seq: *delivery_seq,
                            lead_id: *lead_id,
                            auction_id: *ping_id,
                            campaign_id: *campaign,
                            price: facts.prices.get(campaign).copied().unwrap_or(0),
                            sale_mode: facts.sale_mode,
                            lead: LeadView::clone(&facts.lead),
                            contact: contact.clone(),
                            consent: consent.clone(),
                            delivered_at: *at,
                            accept_within_ms,
                        },
                        live: ack_deadline.is_some(),
                        // Replayed from the journal: durable by definition.
                        released: true,
                    },
                );
            }
            Event::PingExpired { ping_id, .. } | Event::LeadSettled { ping_id, .. } => {
                self.pings.remove(ping_id);
            }
            _ => {}
        }
        self.outbox.observe(event);
    }

    pub fn finish(self) -> Outbox {
        self.outbox
    }
}

/// A delivery's answer time as `LEAD_DELIVERY` carries it, from its event's times.
fn accept_within_ms(at: u64, ack_deadline: Option<u64>) -> u32 {
    ack_deadline.map_or(0, |deadline| {
        u32::try_from(deadline.saturating_sub(at) / 1_000).unwrap_or(u32::MAX)
    })
}
