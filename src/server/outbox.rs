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

use rustc_hash::FxHashMap;

use crate::engine::events::{Event, LeadId, PingId, Resolution};
use crate::engine::types::{BuyerId, CampaignId};
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
#[derive(Debug, Default)]
pub struct Outbox {
    buyers: FxHashMap<BuyerId, BTreeMap<u64, PendingDelivery>>,
}

impl Outbox {
    pub fn insert(&mut self, buyer: BuyerId, pending: PendingDelivery) {
        self.buyers
            .entry(buyer)
            .or_default()
            .insert(pending.delivery.delivery_seq, pending);
    }

    /// Marks a delivery sendable (its journal record is durable) and returns it.
    pub fn release(&mut self, buyer: BuyerId, seq: u64) -> Option<&LeadDelivery<'static>> {
        let pending = self.buyers.get_mut(&buyer)?.get_mut(&seq)?;
        pending.released = true;
        Some(&pending.delivery)
    }

    /// A buyer logged in having processed everything up to `last_seq`: stored deliveries up to
    /// it are confirmed and dropped. Returns the released deliveries after it, oldest first,
    /// to send again.
    pub fn reattach(&mut self, buyer: BuyerId, last_seq: u64) -> Vec<LeadDelivery<'static>> {
        let Some(queue) = self.buyers.get_mut(&buyer) else {
            return Vec::new();
        };
        queue.retain(|&seq, pending| seq > last_seq || pending.live);
        let resend = queue
            .range(last_seq.saturating_add(1)..)
            .filter(|(_, pending)| pending.released)
            .map(|(_, pending)| pending.delivery.clone())
            .collect();
        if queue.is_empty() {
            self.buyers.remove(&buyer);
        }
        resend
    }

    /// The buyer answered a delivery: it is settled either way.
    pub fn acknowledged(&mut self, buyer: BuyerId, seq: u64) {
        if let Some(queue) = self.buyers.get_mut(&buyer) {
            queue.remove(&seq);
            if queue.is_empty() {
                self.buyers.remove(&buyer);
            }
        }
    }

    /// The engine settled a live delivery's slot (sold, or failed and cascaded).
    pub fn slot_settled(&mut self, buyer: BuyerId, ping: PingId, campaign: CampaignId) {
        if let Some(queue) = self.buyers.get_mut(&buyer) {
            queue.retain(|_, pending| {
                !(pending.live
                    && pending.delivery.auction_id == ping
                    && pending.delivery.campaign_id == campaign)
            });
            if queue.is_empty() {
                self.buyers.remove(&buyer);
            }
        }
    }

    /// How many deliveries wait in all.
    pub fn len(&self) -> usize {
        self.buyers.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.buyers.is_empty()
    }

    /// Applies the settling effect of one engine event.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::SaleCommitted {
                ping_id,
                campaign,
                buyer,
                ..
            } => self.slot_settled(*buyer, *ping_id, *campaign),
            Event::SaleFailed {
                ping_id, campaign, ..
            } => {
                // The event does not name the buyer: look it up among live deliveries.
                let owner = self.buyers.iter().find_map(|(buyer, queue)| {
                    queue
                        .values()
                        .any(|p| {
                            p.live
                                && p.delivery.auction_id == *ping_id
                                && p.delivery.campaign_id == *campaign
                        })
                        .then_some(*buyer)
                });
                if let Some(buyer) = owner {
                    self.slot_settled(buyer, *ping_id, *campaign);
                }
            }
            _ => {}
        }
    }
}

/// What the builder keeps of a ping until its lead settles.
#[derive(Debug)]
struct PingFacts {
    lead: LeadView<'static>,
    sale_mode: SaleMode,
    prices: FxHashMap<CampaignId, Money>,
    posted: Option<(LeadId, Contact<'static>, Consent<'static>)>,
}

/// Rebuilds the outbox from the journal's events, oldest first.
#[derive(Debug, Default)]
pub struct OutboxBuilder {
    pings: FxHashMap<PingId, PingFacts>,
    outbox: Outbox,
}

impl OutboxBuilder {
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::PingOpened { ping_id, lead, .. } => {
                self.pings.insert(
                    *ping_id,
                    PingFacts {
                        lead: lead.clone(),
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
                let Some(facts) = self.pings.get(ping_id) else {
                    return;
                };
                let Some((lead_id, contact, consent)) = &facts.posted else {
                    return;
                };
                let accept_within_ms = ack_deadline.map_or(0, |deadline| {
                    u32::try_from(deadline.saturating_sub(*at) / 1_000).unwrap_or(u32::MAX)
                });
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
                            lead: facts.lead.clone(),
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
