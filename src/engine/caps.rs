//! Lead and spend caps per local period — hour, day, week, month and total — with reservations:
//! a won ping reserves, a post commits, a rejection or expiry releases. A campaign's caps and a
//! buyer's budgets share this machinery.
//!
//! # The invariant
//!
//! For every period and every limit, `committed + reserved <= limit`, whatever the interleaving
//! of reserve, commit, release and time, with any number of auctions in flight. It holds by
//! construction, not by the callers' discipline:
//!
//! - [`CapCounters::reserve`] is the only operation that adds to `committed + reserved`, and it
//!   adds exactly what [`CapCounters::check`] has just found room for, in every period at once,
//!   or nothing (all-or-nothing).
//! - [`CapCounters::commit`] moves at most what is reserved from `reserved` to `committed`; the
//!   sum does not grow, even for a reservation committed twice or one that never was made here.
//! - [`CapCounters::release`] removes at most what is reserved; the sum only shrinks, and never
//!   below zero.
//! - A period rolling over resets its counters to zero.
//!
//! Limits are those in force at reservation time. An admin who lowers a cap below what a period
//! has already used blocks new reservations until the period rolls over; nothing already
//! reserved is taken back.
//!
//! # Periods
//!
//! Each period counts for one key of the owner's local time ([`LocalTime`]: buyer's time zone,
//! DST-correct). A period rolls over lazily: when `reserve` sees a newer key than the one its
//! counters are for, they reset and count for the new key. An older key (a late event, or a
//! fall-back that crosses a boundary, as Pacific/Chatham's 03:45 to 02:45 does for the hour)
//! never resets anything: the operation counts against the current period, the conservative
//! choice.
//!
//! A [`CapReservation`] records the keys it counted against. Commit and release act on a period
//! only if its counters still count for that key. A reservation taken before a boundary and
//! committed after it therefore counts in neither the old period (reset) nor the new one (which
//! never reserved it): a lead reserved at 23:59 and posted at 00:01 does not use the new day's
//! cap. That can under-count across a boundary, but it can never overrun either period — the
//! old period admitted it within its limit, the new one admits only what fits beside its own.
//!
//! # Money
//!
//! Money is `u64` minor units. Prices come from validated pricing, at most
//! [`MONEY_MAX`](crate::limits::MONEY_MAX); the arithmetic is saturating or checked anyway, so a
//! larger price is refused by any spend limit (and only saturates uncapped statistics), never a
//! panic or a wrap.

#![deny(
    clippy::arithmetic_side_effects,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::protocol::book::Caps;
use crate::protocol::types::Money;

use super::clock::LocalTime;

/// A counting period, in the owner's local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Period {
    Hour,
    Day,
    Week,
    Month,
    /// Never rolls over.
    Total,
}

impl Period {
    /// Every period, in the order limits are checked and reported.
    pub const ALL: [Self; 5] = [Self::Hour, Self::Day, Self::Week, Self::Month, Self::Total];

    /// The key this period counts for at `local`.
    #[inline]
    pub const fn key(self, local: &LocalTime) -> u32 {
        match self {
            Self::Hour => local.hour_key,
            Self::Day => local.day_key,
            Self::Week => local.week_key,
            Self::Month => local.month_key,
            Self::Total => 0,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hour => "hour",
            Self::Day => "day",
            Self::Week => "week",
            Self::Month => "month",
            Self::Total => "total",
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Measure {
    /// Leads.
    Leads,
    /// Money, in minor units.
    Spend,
}

/// The limits of one campaign (its `caps`) or one buyer (its budgets); 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct CapLimits {
    /// Leads per period, in [`Period::ALL`] order.
    leads_max: [u32; 5],
    /// Money per period, in [`Period::ALL`] order. The wire only sets day and month.
    spend_max: [Money; 5],
}

impl CapLimits {
    /// No limit at all.
    pub const NONE: Self = Self {
        leads_max: [0; 5],
        spend_max: [0; 5],
    };

    /// A campaign's caps as the wire gives them.
    pub const fn from_caps(caps: &Caps) -> Self {
        Self {
            leads_max: [
                caps.leads_hour,
                caps.leads_day,
                caps.leads_week,
                caps.leads_month,
                caps.leads_total,
            ],
            spend_max: [0, caps.spend_day, 0, caps.spend_month, 0],
        }
    }

    /// A buyer's budgets (`budget_day`, `budget_month`): money only.
    pub const fn budget(day: Money, month: Money) -> Self {
        Self {
            leads_max: [0; 5],
            spend_max: [0, day, 0, month, 0],
        }
    }

    /// The lead limit of a period; 0: none.
    pub const fn leads_max(&self, period: Period) -> u32 {
        match period {
            Period::Hour => self.leads_max[0],
            Period::Day => self.leads_max[1],
            Period::Week => self.leads_max[2],
            Period::Month => self.leads_max[3],
            Period::Total => self.leads_max[4],
        }
    }

    /// The spend limit of a period; 0: none.
    pub const fn spend_max(&self, period: Period) -> Money {
        match period {
            Period::Hour => self.spend_max[0],
            Period::Day => self.spend_max[1],
            Period::Week => self.spend_max[2],
            Period::Month => self.spend_max[3],
            Period::Total => self.spend_max[4],
        }
    }

    /// True when nothing is limited: the engine may skip the counters' check (it still reserves,
    /// so that usage is counted should a limit be added later in the period).
    pub fn is_unlimited(&self) -> bool {
        *self == Self::NONE
    }
}

impl From<&Caps> for CapLimits {
    fn from(caps: &Caps) -> Self {
        Self::from_caps(caps)
    }
}

/// Why one more lead does not fit: the first limit, in [`Period::ALL`] order and leads before
/// spend, that it would exceed. For the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapExceeded {
    pub period: Period,
    pub measure: Measure,
    /// The limit (leads or minor units).
    pub limit: u64,
    /// Committed + reserved in the period before this lead (saturating).
    pub used: u64,
    /// What this lead asked for: 1 lead, or its price.
    pub asked: u64,
}

impl CapExceeded {
    /// The limit's name as the wire spells it for a campaign (`leads_day`, `spend_month`); a
    /// buyer's budget reports `spend_day` / `spend_month` for `budget_day` / `budget_month`.
    pub const fn field(&self) -> &'static str {
        match (self.measure, self.period) {
            (Measure::Leads, Period::Hour) => "leads_hour",
            (Measure::Leads, Period::Day) => "leads_day",
            (Measure::Leads, Period::Week) => "leads_week",
            (Measure::Leads, Period::Month) => "leads_month",
            (Measure::Leads, Period::Total) => "leads_total",
            (Measure::Spend, Period::Hour) => "spend_hour",
            (Measure::Spend, Period::Day) => "spend_day",
            (Measure::Spend, Period::Week) => "spend_week",
            (Measure::Spend, Period::Month) => "spend_month",
            (Measure::Spend, Period::Total) => "spend_total",
        }
    }
}

impl fmt::Display for CapExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} reached: {} used, {} asked",
            self.field(),
            self.limit,
            self.used,
            self.asked
        )
    }
}

impl std::error::Error for CapExceeded {}

/// The key of each period at `local`, in [`Period::ALL`] order.
#[inline]
fn keys(local: &LocalTime) -> [u32; 5] {
    [
        local.hour_key,
        local.day_key,
        local.week_key,
        local.month_key,
        0,
    ]
}

/// One period's counters: the key they count for, and leads and money committed and reserved.
/// Also the shape [`CapCounters::usage`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct PeriodUsage {
    /// The period key these counts are for (0 for the total).
    pub key: u32,
    pub leads_committed: u32,
    pub leads_reserved: u32,
    pub spend_committed: Money,
    pub spend_reserved: Money,
}

impl PeriodUsage {
    /// The counters as an operation at `key` sees them: zero for a newer key (the period has
    /// rolled over), the current ones for the same or an older key (nothing resets backwards).
    #[inline]
    fn seen_at(&self, key: u32) -> Self {
        if key > self.key {
            Self {
                key,
                ..Self::default()
            }
        } else {
            *self
        }
    }

    /// Committed + reserved leads; a u64 so that the sum cannot overflow.
    pub fn leads_used(&self) -> u64 {
        u64::from(self.leads_committed).saturating_add(u64::from(self.leads_reserved))
    }

    /// Committed + reserved money.
    pub fn spend_used(&self) -> Money {
        self.spend_committed.saturating_add(self.spend_reserved)
    }
}

/// Usage per period as of one local time, for stats and traces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct CapUsage {
    pub hour: PeriodUsage,
    pub day: PeriodUsage,
    pub week: PeriodUsage,
    pub month: PeriodUsage,
    pub total: PeriodUsage,
}

/// What one reservation counted against: the period keys (the total has none) and the price.
/// Commit or release it exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapReservation {
    pub hour_key: u32,
    pub day_key: u32,
    pub week_key: u32,
    pub month_key: u32,
    pub price: Money,
}

impl CapReservation {
    /// The key it counted against in `period`.
    pub const fn key(&self, period: Period) -> u32 {
        match period {
            Period::Hour => self.hour_key,
            Period::Day => self.day_key,
            Period::Week => self.week_key,
            Period::Month => self.month_key,
            Period::Total => 0,
        }
    }
}

/// The mutable counters of one campaign's caps or one buyer's budgets. See the module
/// documentation for the invariant and the period rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct CapCounters {
    /// One per period, in [`Period::ALL`] order.
    periods: [PeriodUsage; 5],
}

impl CapCounters {
    /// Nothing counted yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Would one more lead at `price` fit every limit at `local`? Changes nothing.
    #[inline]
    pub fn check(
        &self,
        limits: &CapLimits,
        local: &LocalTime,
        price: Money,
    ) -> Result<(), CapExceeded> {
        let limits_by_period = limits.leads_max.iter().zip(limits.spend_max.iter());
        for (((period, counters), key), (&leads_max, &spend_max)) in Period::ALL
            .iter()
            .zip(&self.periods)
            .zip(keys(local))
            .zip(limits_by_period)
        {
            if leads_max == 0 && spend_max == 0 {
                continue;
            }
            // A newer key: the period has rolled over and nothing is used in it yet.
            let fresh = key > counters.key;
            if leads_max != 0 {
                let used = if fresh { 0 } else { counters.leads_used() };
                // used + 1 > max, without the addition.
                if used >= u64::from(leads_max) {
                    return Err(CapExceeded {
                        period: *period,
                        measure: Measure::Leads,
                        limit: u64::from(leads_max),
                        used,
                        asked: 1,
                    });
                }
            }
            if spend_max != 0 {
                let used = if fresh { 0 } else { counters.spend_used() };
                // Saturating: a sum past u64::MAX is past any limit too.
                if used.saturating_add(price) > spend_max {
                    return Err(CapExceeded {
                        period: *period,
                        measure: Measure::Spend,
                        limit: spend_max,
                        used,
                        asked: price,
                    });
                }
            }
        }
        Ok(())
    }

    /// The highest price at which one more lead fits every limit at `local`, or `None` when
    /// one more lead fits at no price: [`check`](Self::check) at `price` succeeds exactly when
    /// `headroom` is `Some(h)` with `price <= h`. One pass answers the check for every price an
    /// auction may ask about (an exclusive and a shared price, then the same at resolution).
    /// Changes nothing.
    #[inline]
    pub fn headroom(&self, limits: &CapLimits, local: &LocalTime) -> Option<Money> {
        let mut room = Money::MAX;
        let limits_by_period = limits.leads_max.iter().zip(limits.spend_max.iter());
        for ((counters, key), (&leads_max, &spend_max)) in
            self.periods.iter().zip(keys(local)).zip(limits_by_period)
        {
            if leads_max == 0 && spend_max == 0 {
                continue;
            }
            let fresh = key > counters.key;
            if leads_max != 0 {
                let used = if fresh { 0 } else { counters.leads_used() };
                if used >= u64::from(leads_max) {
                    return None;
                }
            }
            if spend_max != 0 {
                let used = if fresh { 0 } else { counters.spend_used() };
                // `check` refuses `used + price > spend_max` with a saturating sum: nothing fits
                // when `used` alone is over; under a limit of `Money::MAX` everything else does.
                let left = spend_max.checked_sub(used)?;
                if spend_max != Money::MAX {
                    room = room.min(left);
                }
            }
        }
        Some(room)
    }

    /// Reserves one lead at `price` in every period, or nothing: the periods `local` has moved
    /// past roll over first (only when the reservation succeeds).
    #[inline]
    pub fn reserve(
        &mut self,
        limits: &CapLimits,
        local: &LocalTime,
        price: Money,
    ) -> Result<CapReservation, CapExceeded> {
        self.check(limits, local, price)?;
        for (counters, key) in self.periods.iter_mut().zip(keys(local)) {
            if key > counters.key {
                *counters = PeriodUsage {
                    key,
                    ..PeriodUsage::default()
                };
            }
            // Cannot saturate under a limit: check found room. Without one, saturation only
            // flattens statistics.
            counters.leads_reserved = counters.leads_reserved.saturating_add(1);
            counters.spend_reserved = counters.spend_reserved.saturating_add(price);
        }
        let [hour, day, week, month, _total] = &self.periods;
        Ok(CapReservation {
            hour_key: hour.key,
            day_key: day.key,
            week_key: week.key,
            month_key: month.key,
            price,
        })
    }

    /// The post came: the reservation's lead and price move from reserved to committed, in each
    /// period whose counters still count for the key it was taken in (see the module
    /// documentation on boundaries). Never moves more than is reserved.
    pub fn commit(&mut self, reservation: &CapReservation) {
        self.settle(reservation, true);
    }

    /// The reservation expired or the lead was rejected: its lead and price stop counting, in
    /// each period whose counters still count for its key. Never goes below zero.
    pub fn release(&mut self, reservation: &CapReservation) {
        self.settle(reservation, false);
    }

    fn settle(&mut self, reservation: &CapReservation, commit: bool) {
        for (period, counters) in Period::ALL.iter().zip(self.periods.iter_mut()) {
            if counters.key != reservation.key(*period) {
                // The period rolled over since: its counters were reset without this lead.
                continue;
            }
            let leads = counters.leads_reserved.min(1);
            let spend = counters.spend_reserved.min(reservation.price);
            counters.leads_reserved = counters.leads_reserved.saturating_sub(leads);
            counters.spend_reserved = counters.spend_reserved.saturating_sub(spend);
            if commit {
                counters.leads_committed = counters.leads_committed.saturating_add(leads);
                counters.spend_committed = counters.spend_committed.saturating_add(spend);
            }
        }
    }

    /// Usage per period as an operation at `local` would see it: a period `local` has moved
    /// past reads as zero. Changes nothing.
    pub fn usage(&self, local: &LocalTime) -> CapUsage {
        let [hour, day, week, month, total] = &self.periods;
        CapUsage {
            hour: hour.seen_at(local.hour_key),
            day: day.seen_at(local.day_key),
            week: week.seen_at(local.week_key),
            month: month.seen_at(local.month_key),
            total: *total,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::panic
    )]

    use super::*;
    use crate::engine::clock::ZoneClock;
    use crate::limits::MONEY_MAX;
    use jiff::civil::date;
    use jiff::tz::TimeZone;
    use proptest::prelude::*;

    const SECOND: u64 = 1_000_000;
    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    const DAY: u64 = 24 * HOUR;

    /// Microseconds of a civil time in Denver.
    fn denver(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> u64 {
        let tz = TimeZone::get("America/Denver").unwrap();
        let z = date(y, mo, d).at(h, mi, 0, 0).to_zoned(tz).unwrap();
        u64::try_from(z.timestamp().as_microsecond()).unwrap()
    }

    fn clock() -> ZoneClock {
        ZoneClock::new("America/Denver").unwrap()
    }

    fn caps(f: impl FnOnce(&mut Caps)) -> CapLimits {
        let mut c = Caps::default();
        f(&mut c);
        CapLimits::from_caps(&c)
    }

    /// Reserves and commits `n` leads at `price`; panics if one does not fit.
    fn fill(c: &mut CapCounters, limits: &CapLimits, local: &LocalTime, n: u32, price: Money) {
        for _ in 0..n {
            let r = c.reserve(limits, local, price).unwrap();
            c.commit(&r);
        }
    }

    proptest! {
        #[test]
        fn headroom_answers_check_for_every_price(
            leads in proptest::array::uniform5(0..4_u32),
            spend in proptest::array::uniform5(prop_oneof![Just(0), 1..2_000_u64, Just(Money::MAX)]),
            fills in proptest::collection::vec((0..3_u64, 0..900_u64), 0..6),
            price in prop_oneof![0..2_500_u64, Just(Money::MAX)],
        ) {
            let limits = CapLimits { leads_max: leads, spend_max: spend };
            let mut clock = clock();
            let start = denver(2026, 5, 5, 10, 0);
            let mut c = CapCounters::new();
            for &(hours, fill_price) in &fills {
                let local = clock.local(start + hours * HOUR);
                if let Ok(r) = c.reserve(&limits, &local, fill_price) {
                    c.commit(&r);
                }
            }
            let local = clock.local(start + 2 * HOUR);
            let fits = c.check(&limits, &local, price).is_ok();
            prop_assert_eq!(fits, c.headroom(&limits, &local).is_some_and(|h| price <= h));
        }
    }

    #[test]
    fn no_limits_never_refuse() {
        let mut c = CapCounters::new();
        let local = clock().local(denver(2026, 5, 5, 12, 0));
        assert!(CapLimits::NONE.is_unlimited());
        assert_eq!(CapLimits::from_caps(&Caps::default()), CapLimits::NONE);
        fill(&mut c, &CapLimits::NONE, &local, 1000, MONEY_MAX);
        let usage = c.usage(&local);
        assert_eq!(usage.day.leads_committed, 1000);
        assert_eq!(usage.total.spend_committed, 1000 * MONEY_MAX);
    }

    #[test]
    fn leads_hour_resets_at_the_local_hour() {
        let limits = caps(|c| c.leads_hour = 2);
        let mut clock = clock();
        let mut c = CapCounters::new();
        let t = denver(2026, 5, 5, 10, 0);
        fill(&mut c, &limits, &clock.local(t), 2, 100);
        let err = c
            .reserve(&limits, &clock.local(t + 59 * MINUTE), 100)
            .unwrap_err();
        assert_eq!(
            err,
            CapExceeded {
                period: Period::Hour,
                measure: Measure::Leads,
                limit: 2,
                used: 2,
                asked: 1
            }
        );
        assert_eq!(err.field(), "leads_hour");
        assert!(c.reserve(&limits, &clock.local(t + HOUR), 100).is_ok());
    }

    #[test]
    fn leads_day_resets_at_local_midnight() {
        let limits = caps(|c| c.leads_day = 3);
        let mut clock = clock();
        let mut c = CapCounters::new();
        fill(
            &mut c,
            &limits,
            &clock.local(denver(2026, 5, 5, 0, 0)),
            3,
            0,
        );
        // 23:59 local, and UTC midnight (18:00 local) in between, still the same day.
        for t in [denver(2026, 5, 5, 18, 0), denver(2026, 5, 5, 23, 59)] {
            let err = c.check(&limits, &clock.local(t), 0).unwrap_err();
            assert_eq!((err.period, err.measure), (Period::Day, Measure::Leads));
        }
        assert!(
            c.reserve(&limits, &clock.local(denver(2026, 5, 6, 0, 0)), 0)
                .is_ok()
        );
    }

    #[test]
    fn leads_week_resets_monday_local() {
        let limits = caps(|c| c.leads_week = 1);
        let mut clock = clock();
        let mut c = CapCounters::new();
        // 2026-05-04 is a Monday.
        fill(
            &mut c,
            &limits,
            &clock.local(denver(2026, 5, 4, 0, 0)),
            1,
            0,
        );
        let sunday = clock.local(denver(2026, 5, 10, 23, 59));
        assert_eq!(
            c.check(&limits, &sunday, 0).unwrap_err().field(),
            "leads_week"
        );
        assert!(
            c.check(&limits, &clock.local(denver(2026, 5, 11, 0, 0)), 0)
                .is_ok()
        );
    }

    #[test]
    fn leads_month_resets_on_the_first_local() {
        let limits = caps(|c| c.leads_month = 1);
        let mut clock = clock();
        let mut c = CapCounters::new();
        fill(
            &mut c,
            &limits,
            &clock.local(denver(2026, 5, 1, 0, 0)),
            1,
            0,
        );
        let last = clock.local(denver(2026, 5, 31, 23, 59));
        assert_eq!(
            c.check(&limits, &last, 0).unwrap_err().field(),
            "leads_month"
        );
        assert!(
            c.check(&limits, &clock.local(denver(2026, 6, 1, 0, 0)), 0)
                .is_ok()
        );
    }

    #[test]
    fn leads_total_never_resets() {
        let limits = caps(|c| c.leads_total = 2);
        let mut clock = clock();
        let mut c = CapCounters::new();
        fill(
            &mut c,
            &limits,
            &clock.local(denver(2026, 5, 1, 0, 0)),
            2,
            0,
        );
        let years_later = clock.local(denver(2031, 1, 1, 0, 0));
        let err = c.check(&limits, &years_later, 0).unwrap_err();
        assert_eq!(err.field(), "leads_total");
        assert_eq!(err.used, 2);
    }

    #[test]
    fn spend_day_and_month() {
        let limits = caps(|c| {
            c.spend_day = 10_000;
            c.spend_month = 25_000;
        });
        let mut clock = clock();
        let mut c = CapCounters::new();
        let day1 = clock.local(denver(2026, 5, 5, 9, 0));
        fill(&mut c, &limits, &day1, 2, 4_000);
        // 8,000 used: 2,000 fits, 2,001 does not.
        assert!(c.check(&limits, &day1, 2_000).is_ok());
        let err = c.check(&limits, &day1, 2_001).unwrap_err();
        assert_eq!(
            err,
            CapExceeded {
                period: Period::Day,
                measure: Measure::Spend,
                limit: 10_000,
                used: 8_000,
                asked: 2_001
            }
        );
        fill(&mut c, &limits, &day1, 1, 2_000);
        let day2 = clock.local(denver(2026, 5, 6, 9, 0));
        fill(&mut c, &limits, &day2, 1, 10_000);
        let day3 = clock.local(denver(2026, 5, 7, 9, 0));
        // Month: 20,000 used; the day is fresh but the month has 5,000 left.
        let err = c.check(&limits, &day3, 5_001).unwrap_err();
        assert_eq!(err.field(), "spend_month");
        assert_eq!(err.used, 20_000);
        assert!(c.check(&limits, &day3, 5_000).is_ok());
        // A zero price always fits money limits.
        fill(&mut c, &limits, &day3, 1, 5_000);
        assert!(c.check(&limits, &day3, 0).is_ok());
        assert!(c.check(&limits, &day3, 1).is_err());
        assert!(
            c.check(&limits, &clock.local(denver(2026, 6, 1, 0, 0)), 10_000)
                .is_ok()
        );
    }

    #[test]
    fn budget_form() {
        let limits = CapLimits::budget(5_000, 0);
        assert_eq!(limits.spend_max(Period::Day), 5_000);
        assert_eq!(limits.spend_max(Period::Month), 0);
        for p in Period::ALL {
            assert_eq!(limits.leads_max(p), 0);
        }
        let mut clock = clock();
        let mut c = CapCounters::new();
        let local = clock.local(denver(2026, 5, 5, 9, 0));
        // Any number of leads, as long as the money fits.
        fill(&mut c, &limits, &local, 100, 50);
        let err = c.reserve(&limits, &local, 1).unwrap_err();
        assert_eq!(
            (err.period, err.measure, err.used),
            (Period::Day, Measure::Spend, 5_000)
        );
        let limits = CapLimits::budget(0, 7_000);
        assert!(c.check(&limits, &local, 2_000).is_ok());
        assert!(c.check(&limits, &local, 2_001).is_err());
        assert_eq!(CapLimits::budget(0, 0), CapLimits::NONE);
    }

    #[test]
    fn reserved_counts_until_released() {
        let limits = caps(|c| c.leads_day = 2);
        let mut clock = clock();
        let mut c = CapCounters::new();
        let local = clock.local(denver(2026, 5, 5, 9, 0));
        let a = c.reserve(&limits, &local, 100).unwrap();
        let b = c.reserve(&limits, &local, 200).unwrap();
        // Two in flight fill the cap.
        assert!(c.reserve(&limits, &local, 100).is_err());
        c.release(&a);
        let usage = c.usage(&local).day;
        assert_eq!((usage.leads_reserved, usage.spend_reserved), (1, 200));
        let a2 = c.reserve(&limits, &local, 100).unwrap();
        c.commit(&b);
        c.commit(&a2);
        let usage = c.usage(&local).day;
        assert_eq!(
            usage,
            PeriodUsage {
                key: local.day_key,
                leads_committed: 2,
                leads_reserved: 0,
                spend_committed: 300,
                spend_reserved: 0
            }
        );
    }

    #[test]
    fn refusal_changes_nothing() {
        let limits = caps(|c| {
            c.leads_hour = 5;
            c.spend_day = 1_000;
        });
        let mut clock = clock();
        let mut c = CapCounters::new();
        fill(
            &mut c,
            &limits,
            &clock.local(denver(2026, 5, 5, 9, 0)),
            1,
            900,
        );
        let before = c.clone();
        // The next hour would roll the hour period, but the day's money refuses: no rollover.
        assert!(
            c.reserve(&limits, &clock.local(denver(2026, 5, 5, 10, 0)), 200)
                .is_err()
        );
        assert_eq!(c, before);
    }

    #[test]
    fn release_after_rollover_does_not_go_negative() {
        let limits = caps(|c| {
            c.leads_day = 10;
            c.spend_day = 10_000;
        });
        let mut clock = clock();
        let mut c = CapCounters::new();
        let old = c
            .reserve(&limits, &clock.local(denver(2026, 5, 5, 23, 59)), 700)
            .unwrap();
        let old2 = c
            .reserve(&limits, &clock.local(denver(2026, 5, 5, 23, 59)), 800)
            .unwrap();
        // Midnight: a new reservation rolls the day over.
        let new_day = clock.local(denver(2026, 5, 6, 0, 0));
        let new = c.reserve(&limits, &new_day, 300).unwrap();
        c.release(&old);
        c.commit(&old2);
        let day = c.usage(&new_day).day;
        assert_eq!((day.leads_reserved, day.spend_reserved), (1, 300));
        assert_eq!(
            (day.leads_committed, day.spend_committed),
            (0, 0),
            "old2 counts in no day"
        );
        // The week and month had not rolled: the old reservations settle there.
        let month = c.usage(&new_day).month;
        assert_eq!((month.leads_reserved, month.leads_committed), (1, 1));
        assert_eq!((month.spend_reserved, month.spend_committed), (300, 800));
        c.release(&new);
        // Releasing again, or releasing a reservation this counter never made, stops at zero.
        c.release(&new);
        c.release(&old);
        let day = c.usage(&new_day).day;
        assert_eq!((day.leads_reserved, day.spend_reserved), (0, 0));
        let month = c.usage(&new_day).month;
        assert_eq!((month.leads_reserved, month.spend_reserved), (0, 0));
        assert_eq!((month.leads_committed, month.spend_committed), (1, 800));
    }

    #[test]
    fn double_commit_cannot_grow_usage() {
        let limits = caps(|c| c.leads_day = 1);
        let mut clock = clock();
        let mut c = CapCounters::new();
        let local = clock.local(denver(2026, 5, 5, 9, 0));
        let r = c.reserve(&limits, &local, 500).unwrap();
        c.commit(&r);
        c.commit(&r);
        let day = c.usage(&local).day;
        assert_eq!((day.leads_committed, day.spend_committed), (1, 500));
    }

    #[test]
    fn a_late_event_never_resets() {
        let limits = caps(|c| c.leads_hour = 2);
        let mut clock = clock();
        let mut c = CapCounters::new();
        let ten = clock.local(denver(2026, 5, 5, 10, 0));
        let eleven = clock.local(denver(2026, 5, 5, 11, 0));
        fill(&mut c, &limits, &eleven, 1, 0);
        // An operation stamped 10:00 arrives after one stamped 11:00: it counts in 11:00's hour.
        let late = c.reserve(&limits, &ten, 0).unwrap();
        assert_eq!(late.hour_key, eleven.hour_key);
        assert_eq!(c.usage(&eleven).hour.leads_used(), 2);
        assert!(c.check(&limits, &ten, 0).is_err());
        assert!(c.check(&limits, &eleven, 0).is_err());
        assert_eq!(c.usage(&ten).hour.key, eleven.hour_key);
    }

    #[test]
    fn dst_days() {
        let limits = caps(|c| {
            c.leads_hour = 1;
            c.leads_day = 100;
        });
        let mut clock = clock();
        let mut c = CapCounters::new();
        // Fall back, 2026-11-01: 01:00–02:00 local happens twice in Denver, one hour key: one
        // lead for both passes.
        let first = denver(2026, 11, 1, 1, 10);
        fill(&mut c, &limits, &clock.local(first), 1, 0);
        assert!(c.check(&limits, &clock.local(first + HOUR), 0).is_err());
        assert_eq!(clock.local(first + HOUR).minute_of_day, 70);
        assert!(c.check(&limits, &clock.local(first + 2 * HOUR), 0).is_ok());
        // The 25-hour day is one day.
        let day_start = denver(2026, 11, 1, 0, 0);
        let mut day = CapCounters::new();
        let per_day = caps(|c| c.leads_day = 25);
        for h in 0..25 {
            fill(&mut day, &per_day, &clock.local(day_start + h * HOUR), 1, 0);
        }
        assert!(
            day.check(&per_day, &clock.local(day_start + 25 * HOUR - 1), 0)
                .is_err()
        );
        assert!(
            day.check(&per_day, &clock.local(day_start + 25 * HOUR), 0)
                .is_ok()
        );
        // Spring forward, 2026-03-08: 01:59 then 03:00, two different hours.
        let mut c = CapCounters::new();
        let before = denver(2026, 3, 8, 1, 59);
        fill(&mut c, &limits, &clock.local(before), 1, 0);
        assert_eq!(clock.local(before + MINUTE).minute_of_day, 180);
        assert!(c.check(&limits, &clock.local(before + MINUTE), 0).is_ok());
    }

    #[test]
    fn a_key_going_back_counts_in_the_current_period() {
        // Pacific/Chatham, 2026-04-05: 03:45 falls back to 02:45, so the hour key goes back.
        let mut clock = ZoneClock::new("Pacific/Chatham").unwrap();
        let edge = u64::try_from(
            date(2026, 4, 4)
                .at(14, 0, 0, 0)
                .to_zoned(TimeZone::UTC)
                .unwrap()
                .timestamp()
                .as_microsecond(),
        )
        .unwrap();
        assert_eq!(clock.offset_s(edge), 12 * 3600 + 45 * 60);
        let limits = caps(|c| c.leads_hour = 1);
        let mut c = CapCounters::new();
        let first = clock.local(edge - 5 * MINUTE); // 03:40, first pass
        fill(&mut c, &limits, &first, 1, 0);
        let back = clock.local(edge + 5 * MINUTE); // 02:50, an hour key older than 03:40's
        assert!(back.hour_key < first.hour_key);
        let err = c.check(&limits, &back, 0).unwrap_err();
        assert_eq!(err.period, Period::Hour);
        // 03:10 of the second pass: the same key as the counters, still full.
        assert!(
            c.check(&limits, &clock.local(edge + 25 * MINUTE), 0)
                .is_err()
        );
        // 04:00: a new hour.
        assert!(
            c.check(&limits, &clock.local(edge + 75 * MINUTE), 0)
                .is_ok()
        );
    }

    #[test]
    fn prices_above_money_max_are_refused_or_saturate() {
        let mut clock = clock();
        let local = clock.local(denver(2026, 5, 5, 9, 0));
        let limits = CapLimits::budget(MONEY_MAX, MONEY_MAX);
        let mut c = CapCounters::new();
        assert!(c.reserve(&limits, &local, MONEY_MAX).is_ok());
        assert!(c.check(&limits, &local, u64::MAX).is_err());
        assert!(c.check(&limits, &local, 1).is_err());
        let mut c = CapCounters::new();
        let r = c.reserve(&CapLimits::NONE, &local, u64::MAX).unwrap();
        let r2 = c.reserve(&CapLimits::NONE, &local, u64::MAX).unwrap();
        assert_eq!(c.usage(&local).day.spend_reserved, u64::MAX);
        c.commit(&r);
        c.commit(&r2);
        assert_eq!(c.usage(&local).day.spend_used(), u64::MAX);
    }

    #[test]
    fn serde_round_trip() {
        let mut clock = clock();
        let local = clock.local(denver(2026, 5, 5, 9, 0));
        let limits = caps(|c| c.leads_day = 9);
        let mut c = CapCounters::new();
        let r = c.reserve(&limits, &local, 1234).unwrap();
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<CapCounters>(&json).unwrap(), c);
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<CapReservation>(&json).unwrap(), r);
        let json = serde_json::to_string(&limits).unwrap();
        assert_eq!(serde_json::from_str::<CapLimits>(&json).unwrap(), limits);
    }

    // The invariant, against an independent model.

    #[derive(Debug, Clone)]
    enum Op {
        Reserve(Money),
        /// Reserve with the local time of `back` microseconds ago: a late event.
        ReserveLate(Money, u64),
        Commit(usize),
        Release(usize),
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        let price = prop_oneof![
            8 => 0..700u64,
            1 => Just(0u64),
            1 => (MONEY_MAX - 10)..=MONEY_MAX,
        ];
        prop_oneof![
            6 => price.clone().prop_map(Op::Reserve),
            1 => (price, 1..3 * HOUR).prop_map(|(p, back)| Op::ReserveLate(p, back)),
            3 => any::<usize>().prop_map(Op::Commit),
            2 => any::<usize>().prop_map(Op::Release),
            4 => prop_oneof![
                SECOND..10 * MINUTE,
                10 * MINUTE..3 * HOUR,
                3 * HOUR..2 * DAY,
                2 * DAY..40 * DAY,
            ]
            .prop_map(Op::Advance),
        ]
    }

    fn limits() -> impl Strategy<Value = CapLimits> {
        let leads = prop_oneof![Just(0u32), 1..6u32];
        let spend = prop_oneof![Just(0u64), 100..2_000u64, Just(MONEY_MAX)];
        (
            [
                leads.clone(),
                leads.clone(),
                leads.clone(),
                leads.clone(),
                leads,
            ],
            spend.clone(),
            spend,
        )
            .prop_map(|(l, day, month)| {
                CapLimits::from_caps(&Caps {
                    leads_hour: l[0],
                    leads_day: l[1],
                    leads_week: l[2],
                    leads_month: l[3],
                    leads_total: l[4],
                    spend_day: day,
                    spend_month: month,
                })
            })
    }

    /// Start instants in Denver: before spring forward, before fall back, before a month end
    /// that is also a week end, and an ordinary Tuesday.
    fn start() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(denver(2026, 3, 7, 22, 0)),
            Just(denver(2026, 10, 31, 22, 0)),
            Just(denver(2026, 5, 31, 21, 0)),
            Just(denver(2026, 5, 5, 9, 0)),
        ]
        .prop_flat_map(|t| (t - 3 * HOUR)..(t + 3 * HOUR))
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum State {
        Reserved,
        Committed,
        Released,
    }

    /// The model: every reservation ever made, with the keys it was counted in, and the newest
    /// key each period has admitted a reservation for. Usage is recomputed from the history, in
    /// u128, for every query: nothing is shared with the implementation's incremental counters.
    #[derive(Default)]
    struct Model {
        current: [u32; 5],
        history: Vec<([u32; 5], u128, State)>,
    }

    impl Model {
        /// (leads used, money used) in period `p` with key `key`, and how much is reserved.
        fn usage(&self, p: usize, key: u32) -> (u128, u128, u128, u128) {
            let mut u = (0, 0, 0, 0);
            for (keys, price, state) in &self.history {
                if keys[p] != key {
                    continue;
                }
                match state {
                    State::Reserved => {
                        u.0 += 1;
                        u.1 += price;
                        u.2 += 1;
                        u.3 += price;
                    }
                    State::Committed => {
                        u.0 += 1;
                        u.1 += price;
                    }
                    State::Released => {}
                }
            }
            u
        }

        /// The model's decision: the first limit (period order, leads before money) that one
        /// more lead would break, at the key each period would count in.
        fn decide(
            &self,
            limits: &CapLimits,
            keys: [u32; 5],
            price: Money,
        ) -> Result<[u32; 5], (Period, Measure)> {
            let mut effective = [0; 5];
            for (p, period) in Period::ALL.iter().enumerate() {
                let key = self.current[p].max(keys[p]);
                effective[p] = key;
                let (leads, money, _, _) = self.usage(p, key);
                let leads_max = u128::from(limits.leads_max(*period));
                if leads_max != 0 && leads + 1 > leads_max {
                    return Err((*period, Measure::Leads));
                }
                let spend_max = u128::from(limits.spend_max(*period));
                if spend_max != 0 && money + u128::from(price) > spend_max {
                    return Err((*period, Measure::Spend));
                }
            }
            Ok(effective)
        }
    }

    fn keys_of(local: &LocalTime) -> [u32; 5] {
        Period::ALL.map(|p| p.key(local))
    }

    fn reservation_keys(r: &CapReservation) -> [u32; 5] {
        Period::ALL.map(|p| r.key(p))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn never_overruns(
            limits in limits(),
            start in start(),
            ops in prop::collection::vec(op(), 1..200),
        ) {
            let mut clock = clock();
            let mut now = start;
            let mut counters = CapCounters::new();
            let mut model = Model::default();
            // Outstanding reservations: (index in the model's history, the reservation).
            let mut outstanding: Vec<(usize, CapReservation)> = Vec::new();
            for op in ops {
                match op {
                    Op::Reserve(price) | Op::ReserveLate(price, _) => {
                        let at = match op {
                            Op::ReserveLate(_, back) => now.saturating_sub(back),
                            _ => now,
                        };
                        let local = clock.local(at);
                        let expected = model.decide(&limits, keys_of(&local), price);
                        let checked = counters.check(&limits, &local, price);
                        let got = counters.reserve(&limits, &local, price);
                        prop_assert_eq!(checked.is_ok(), got.is_ok());
                        match (got, expected) {
                            (Ok(r), Ok(keys)) => {
                                prop_assert_eq!(reservation_keys(&r), keys);
                                prop_assert_eq!(r.price, price);
                                for (p, key) in keys.iter().enumerate() {
                                    model.current[p] = *key;
                                }
                                model.history.push((keys, u128::from(price), State::Reserved));
                                outstanding.push((model.history.len() - 1, r));
                            }
                            (Err(e), Err((period, measure))) => {
                                prop_assert_eq!((e.period, e.measure), (period, measure));
                            }
                            (got, expected) => {
                                prop_assert!(false, "implementation {:?}, model {:?}", got, expected);
                            }
                        }
                    }
                    Op::Commit(i) | Op::Release(i) => {
                        if outstanding.is_empty() {
                            continue;
                        }
                        let (h, r) = outstanding.swap_remove(i % outstanding.len());
                        if matches!(op, Op::Commit(_)) {
                            counters.commit(&r);
                            model.history[h].2 = State::Committed;
                        } else {
                            counters.release(&r);
                            model.history[h].2 = State::Released;
                        }
                    }
                    Op::Advance(dt) => now += dt,
                }
                // The invariant, on the implementation's counters...
                for (p, period) in Period::ALL.iter().enumerate() {
                    let c = counters.periods[p];
                    prop_assert_eq!(c.key, model.current[p]);
                    let leads_max = limits.leads_max(*period);
                    if leads_max != 0 {
                        prop_assert!(c.leads_used() <= u64::from(leads_max), "{:?} {:?}", period, c);
                    }
                    let spend_max = limits.spend_max(*period);
                    if spend_max != 0 {
                        prop_assert!(c.spend_used() <= spend_max, "{:?} {:?}", period, c);
                    }
                    // ...equal to the model's...
                    let (leads, money, leads_reserved, money_reserved) = model.usage(p, c.key);
                    prop_assert_eq!(u128::from(c.leads_used()), leads);
                    prop_assert_eq!(u128::from(c.spend_used()), money);
                    prop_assert_eq!(u128::from(c.leads_reserved), leads_reserved);
                    prop_assert_eq!(u128::from(c.spend_reserved), money_reserved);
                    // ...and in the model for every period key ever used, not only the current.
                    for (keys, _, _) in &model.history {
                        let (leads, money, _, _) = model.usage(p, keys[p]);
                        if leads_max != 0 {
                            prop_assert!(leads <= u128::from(leads_max));
                        }
                        if spend_max != 0 {
                            prop_assert!(money <= u128::from(spend_max));
                        }
                    }
                }
                // usage() at the current time agrees with the counters it summarizes.
                let local = clock.local(now);
                let usage = counters.usage(&local);
                let by_period = [usage.hour, usage.day, usage.week, usage.month, usage.total];
                for (p, u) in by_period.iter().enumerate() {
                    let key = model.current[p].max(keys_of(&local)[p]);
                    prop_assert_eq!(u.key, key);
                    let (leads, money, _, _) = model.usage(p, key);
                    prop_assert_eq!((u128::from(u.leads_used()), u128::from(u.spend_used())), (leads, money));
                }
            }
            // Settling every reservation exactly once leaves nothing reserved.
            for (i, (h, r)) in outstanding.into_iter().enumerate() {
                if i % 2 == 0 {
                    counters.commit(&r);
                    model.history[h].2 = State::Committed;
                } else {
                    counters.release(&r);
                    model.history[h].2 = State::Released;
                }
            }
            for c in &counters.periods {
                prop_assert_eq!((c.leads_reserved, c.spend_reserved), (0, 0));
            }
            prop_assert!(model.history.iter().all(|(_, _, s)| *s != State::Reserved));
        }
    }

    /// Cost of check + reserve (and of commit): `cargo test --release --lib caps -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn measure_check_reserve() {
        use std::hint::black_box;
        use std::time::Instant;
        const N: u32 = 10_000_000;
        let limits = caps(|c| {
            c.leads_hour = u32::MAX;
            c.leads_day = u32::MAX;
            c.leads_week = u32::MAX;
            c.leads_month = u32::MAX;
            c.leads_total = u32::MAX;
            c.spend_day = MONEY_MAX;
            c.spend_month = MONEY_MAX;
        });
        let local = clock().local(denver(2026, 5, 5, 9, 0));
        let price = |i: u32| u64::from(i % 7);
        // check + reserve, the reservation dropped (the limits are far away).
        let mut counters = CapCounters::new();
        let t0 = Instant::now();
        for i in 0..N {
            let c = black_box(&mut counters);
            if c.check(&limits, black_box(&local), price(i)).is_ok() {
                black_box(c.reserve(&limits, black_box(&local), price(i)).ok());
            }
        }
        let reserve_ns = t0.elapsed().as_nanos() as f64 / f64::from(N);
        // reserve alone (it checks itself).
        let mut counters = CapCounters::new();
        let t0 = Instant::now();
        for i in 0..N {
            let c = black_box(&mut counters);
            black_box(c.reserve(&limits, black_box(&local), price(i)).ok());
        }
        let reserve_only_ns = t0.elapsed().as_nanos() as f64 / f64::from(N);
        // check + reserve + commit.
        let mut counters = CapCounters::new();
        let t0 = Instant::now();
        for i in 0..N {
            let c = black_box(&mut counters);
            if c.check(&limits, black_box(&local), price(i)).is_ok()
                && let Ok(r) = c.reserve(&limits, black_box(&local), price(i))
            {
                c.commit(black_box(&r));
            }
        }
        let cycle_ns = t0.elapsed().as_nanos() as f64 / f64::from(N);
        // check alone, passing all seven limits: the eligibility test of every candidate.
        let t0 = Instant::now();
        let mut passed = 0u32;
        for i in 0..N {
            if black_box(&counters)
                .check(&limits, black_box(&local), price(i))
                .is_ok()
            {
                passed += 1;
            }
        }
        let check_ns = t0.elapsed().as_nanos() as f64 / f64::from(N);
        // A capped-out campaign: refused at the first limit.
        let capped = caps(|c| c.leads_hour = 1);
        let t0 = Instant::now();
        let mut refused = 0u32;
        for i in 0..N {
            if black_box(&counters)
                .check(&capped, black_box(&local), price(i))
                .is_err()
            {
                refused += 1;
            }
        }
        let refuse_ns = t0.elapsed().as_nanos() as f64 / f64::from(N);
        eprintln!(
            "check+reserve {reserve_ns:.1} ns, reserve alone {reserve_only_ns:.1} ns, check+reserve+commit {cycle_ns:.1} ns, \
             check alone {check_ns:.1} ns, refused check {refuse_ns:.1} ns \
             ({passed} passed, {refused} refused)"
        );
    }
}
