//! A buyer's local time: from `now` (microseconds since the Unix epoch, UTC) and an IANA time
//! zone to the local weekday, minute of the day, and the keys of the local hour, day, ISO week
//! and calendar month that schedules and caps follow.
//!
//! # Why a cache
//!
//! An auction asks for the local time of tens of buyers within a microsecond budget. A zone's
//! UTC offset only changes at its transitions (twice a year for DST zones, never for most
//! others), so a [`ZoneClock`] keeps the offset together with the UTC interval over which it
//! holds, bounded by the zone's previous and next transitions. A call whose `now` falls inside
//! that interval is integer arithmetic only; a call outside it asks the time zone database once
//! and caches the new interval. The calendar fields of the local day (weekday, week, month) are
//! cached too, so a call on the same local day does no calendar arithmetic. [`ZoneClock::local_in`] does the same with a [`ZoneCache`] the
//! caller keeps (for zones in a shared, immutable book), and [`ZoneClock::local_uncached`]
//! answers without any cache (tests compare them across transitions). An engine may also
//! compute one [`LocalTime`] per buyer per auction; either way the common case is a few
//! nanoseconds.
//!
//! # Keys
//!
//! The keys count local hours, days, weeks and months from a fixed origin, so a newer local
//! period always has a larger key, and a key changes exactly at the local boundary:
//!
//! - `day_key`: local days since Monday 1969-12-29 (the Monday before the epoch, so that the
//!   key is never negative whatever the offset and `day_key / 7` starts weeks on Mondays). It
//!   changes at local midnight, whatever the day's length: a spring-forward day lasts 23 hours,
//!   a fall-back day 25.
//! - `hour_key`: local hours since that origin (`day_key * 24 + hour`). In the repeated hour of
//!   a fall-back (01:00–02:00 twice in America/New_York) both passes read the same local hour,
//!   so **both share one hour key**: an hourly cap counts them as one hour. The hour skipped at
//!   spring-forward (02:00–03:00) does not exist: local time jumps from 01:59:59 to 03:00:00,
//!   and the key jumps by two.
//! - `week_key`: `day_key / 7`, ISO weeks, changing at Monday 00:00 local.
//! - `month_key`: `year * 12 + month - 1`, changing on the 1st at 00:00 local.
//!
//! Local time goes backwards at a fall-back transition, and a key goes back with it when the
//! repeated stretch crosses one of its boundaries. Most rules fall back within one local hour
//! (US 02:00 to 01:00, EU 03:00 to 02:00, Lord Howe 02:00 to 01:30), and no key goes back. In
//! today's database two zones do otherwise: Pacific/Chatham falls back from 03:45 to 02:45 (the
//! hour key goes back by one) and Antarctica/Troll from 03:00 to 01:00 (by two); America/St_Johns
//! fell back from 00:01 to 23:01 of the previous day until 2011 (the day key went back). The keys
//! still name the local period truthfully; the cap counters treat an older key as belonging to
//! their current period (see `caps`), so nothing resets and nothing overruns.
//!
//! # Time zone names
//!
//! A name comes from a buyer's definition, so it is user input: an unknown or malformed name is
//! a [`ClockError`] (`UNKNOWN_TIME_ZONE`, 704), never a panic. The IANA database is compiled
//! into the binary (jiff's `tzdb-bundle-always`), so every machine and every replay of the
//! journal sees the same rules. Lookups ignore ASCII case, as jiff's database does;
//! [`ZoneClock::name`] gives the canonical spelling.

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::limits::TIME_ZONE_LEN_MAX;
use crate::protocol::ErrorCode;

use super::types::TimeUs;
pub use crate::limits::LOCAL_TIME_US_MAX;

const MICROS_PER_SECOND: u64 = 1_000_000;
const SECONDS_PER_MINUTE: u64 = 60;
const SECONDS_PER_HOUR: u64 = 3_600;
const SECONDS_PER_DAY: u64 = 86_400;
/// Seconds from the keys' origin, Monday 1969-12-29 00:00 local, to the epoch. Any offset is
/// smaller than a day (jiff bounds them to ±25:59:59), so three days keep local seconds
/// non-negative for every `now >= 0`.
const ORIGIN_TO_EPOCH_S: u64 = 3 * SECONDS_PER_DAY;
/// Days from 0000-03-01 (the origin of `civil_from_days`) to the keys' origin, 1969-12-29.
const CIVIL_TO_ORIGIN_DAYS: u32 = 719_465;
/// The name jiff gives a zone it does not know; a database lookup of it succeeds, so it is
/// refused by name.
const UNKNOWN_ZONE_NAME: &str = "Etc/Unknown";

/// The local calendar position of an instant in one time zone. See the module documentation for
/// what the keys count and how DST days behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LocalTime {
    /// 1 Monday … 7 Sunday, as in the protocol's `window.weekday`.
    pub weekday: u8,
    /// Minutes after local midnight, 0..1440.
    pub minute_of_day: u16,
    /// The local hour: changes at every local hh:00, shared by both passes of a repeated hour.
    pub hour_key: u32,
    /// The local day: changes at local midnight.
    pub day_key: u32,
    /// The local ISO week: changes at Monday 00:00 local.
    pub week_key: u32,
    /// The local calendar month, `year * 12 + month - 1`: changes on the 1st at 00:00 local.
    pub month_key: u32,
}

impl LocalTime {
    /// Minutes after Monday 00:00 local, 0..10,080 (what a weekly schedule compares). A value
    /// built by hand with a weekday outside 1..=7 gives a number outside that range instead of a
    /// panic.
    pub const fn minute_of_week(&self) -> u32 {
        // u8 * 1440 + u16 cannot overflow a u32.
        (self.weekday.wrapping_sub(1) as u32) * 1_440 + self.minute_of_day as u32
    }

    /// The local time `offset_s` seconds east of UTC at `now_us`. Pure integer arithmetic,
    /// without a cache: the reference the cached paths must equal.
    pub fn from_offset(now_us: TimeUs, offset_s: i32) -> Self {
        let mut day = DayCache::EMPTY;
        Self::from_offset_in(now_us, offset_s, &mut day)
    }

    /// As [`from_offset`](Self::from_offset), reusing the calendar fields of the local day in
    /// `day` when `now_us` falls on the same local day (then no calendar arithmetic is done).
    #[inline]
    fn from_offset_in(now_us: TimeUs, offset_s: i32, day: &mut DayCache) -> Self {
        let now_s = now_us.min(LOCAL_TIME_US_MAX) / MICROS_PER_SECOND;
        // Saturating, though it cannot saturate: now_s is bounded by the clamp, and the origin is
        // further back than any offset reaches.
        let local_s = now_s
            .saturating_add(ORIGIN_TO_EPOCH_S)
            .saturating_add_signed(i64::from(offset_s));
        let day_key = narrow(local_s / SECONDS_PER_DAY);
        if day_key != day.day_key {
            *day = DayCache::new(day_key);
        }
        let second_of_day = local_s % SECONDS_PER_DAY;
        Self {
            weekday: day.weekday,
            minute_of_day: (second_of_day / SECONDS_PER_MINUTE) as u16,
            hour_key: narrow(local_s / SECONDS_PER_HOUR),
            day_key,
            week_key: day.week_key,
            month_key: day.month_key,
        }
    }
}

/// The calendar fields of one local day, which do not change within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct DayCache {
    day_key: u32,
    weekday: u8,
    week_key: u32,
    month_key: u32,
}

impl DayCache {
    /// Matches no day: `day_key` never reaches u32::MAX (about 2.94 million at most).
    const EMPTY: Self = Self {
        day_key: u32::MAX,
        weekday: 0,
        week_key: 0,
        month_key: 0,
    };

    fn new(day_key: u32) -> Self {
        Self {
            day_key,
            // Day 0 is a Monday.
            weekday: (day_key % 7) as u8 + 1,
            week_key: day_key / 7,
            month_key: month_key(day_key),
        }
    }
}

/// `u64` to `u32`; every value narrowed here is bounded by [`LOCAL_TIME_US_MAX`] far below
/// `u32::MAX` (hours up to year 9999: about 70 million).
fn narrow(x: u64) -> u32 {
    u32::try_from(x).unwrap_or(u32::MAX)
}

/// `year * 12 + month - 1` of the day `day_key` days after 1969-12-29: Howard Hinnant's
/// `civil_from_days`, in unsigned arithmetic because our days are all after 0000-03-01.
fn month_key(day_key: u32) -> u32 {
    // Bounded: day_key <= about 2.94 million, so every intermediate below fits a u32.
    let z = day_key.saturating_add(CIVIL_TO_ORIGIN_DAYS);
    let era = z / 146_097;
    let day_of_era = z - era * 146_097; // 0..=146_096
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // 0..=399
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // 0..=365
    let mp = (5 * day_of_year + 2) / 153; // 0..=11, March-based
    let month = if mp < 10 { mp + 3 } else { mp - 9 }; // 1..=12
    let year = year_of_era + era * 400 + u32::from(month <= 2);
    year * 12 + month - 1
}

/// Why a time zone name was refused. Every variant is `UNKNOWN_TIME_ZONE` (704) on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockError {
    /// Not a zone of the compiled-in IANA database (includes the empty name and `Etc/Unknown`).
    Unknown {
        /// The name as given (at most [`TIME_ZONE_LEN_MAX`] bytes).
        name: String,
    },
    /// Longer than any IANA name can be ([`TIME_ZONE_LEN_MAX`] bytes); not looked up.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
}

impl ClockError {
    /// The protocol code an admin answer carries.
    pub const fn code(&self) -> ErrorCode {
        ErrorCode::UNKNOWN_TIME_ZONE
    }
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name } => write!(f, "time zone {name:?} is not an IANA time zone name"),
            Self::TooLong { len } => write!(
                f,
                "time zone name of {len} bytes is longer than {TIME_ZONE_LEN_MAX}"
            ),
        }
    }
}

impl std::error::Error for ClockError {}

/// A zone's UTC offset over one UTC interval `[start_us, end_us)` between two of its
/// transitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ZoneSpan {
    start_us: TimeUs,
    end_us: TimeUs,
    /// Seconds east of UTC.
    offset_s: i32,
}

impl ZoneSpan {
    /// Contains no instant, so the first lookup fills it.
    const EMPTY: Self = Self {
        start_us: 1,
        end_us: 0,
        offset_s: 0,
    };

    #[inline]
    const fn contains(&self, now_us: TimeUs) -> bool {
        self.start_us <= now_us && now_us < self.end_us
    }
}

/// What a [`ZoneClock`] caches: the offset and the UTC interval it holds over, and the calendar
/// fields of the last local day asked for. A [`ZoneClock`] keeps one; an engine whose zones live
/// in a shared, immutable book can keep one per zone in its own mutable state and pass it to
/// [`ZoneClock::local_in`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoneCache {
    span: ZoneSpan,
    day: DayCache,
}

impl ZoneCache {
    /// Holds nothing: the first call fills it.
    pub const EMPTY: Self = Self {
        span: ZoneSpan::EMPTY,
        day: DayCache::EMPTY,
    };
}

impl Default for ZoneCache {
    fn default() -> Self {
        Self::EMPTY
    }
}

/// A buyer's time zone with a cached offset interval. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneClock {
    tz: TimeZone,
    cache: ZoneCache,
}

impl ZoneClock {
    /// Looks up an IANA name (`America/Denver`) in the compiled-in database.
    pub fn new(name: &str) -> Result<Self, ClockError> {
        if name.len() > TIME_ZONE_LEN_MAX {
            return Err(ClockError::TooLong { len: name.len() });
        }
        let unknown = || ClockError::Unknown {
            name: name.to_owned(),
        };
        // jiff answers "Etc/Unknown" with its placeholder zone (UTC under another name); a buyer
        // naming it has not told us a zone.
        if name.eq_ignore_ascii_case(UNKNOWN_ZONE_NAME) {
            return Err(unknown());
        }
        let tz = TimeZone::get(name).map_err(|_| unknown())?;
        if tz.is_unknown() {
            return Err(unknown());
        }
        Ok(Self {
            tz,
            cache: ZoneCache::EMPTY,
        })
    }

    /// The zone's canonical IANA name (the database's spelling; lookups ignore ASCII case).
    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// The local time at `now_us`: integer arithmetic while `now_us` stays between the same two
    /// transitions of the zone as the previous call (and no calendar arithmetic while it stays
    /// on the same local day), one database lookup when it leaves them.
    #[inline]
    pub fn local(&mut self, now_us: TimeUs) -> LocalTime {
        let mut cache = self.cache;
        let local = self.local_in(&mut cache, now_us);
        self.cache = cache;
        local
    }

    /// As [`local`](Self::local), with the cache kept by the caller: for zones held in a shared,
    /// immutable book. Start from [`ZoneCache::EMPTY`] and keep one cache per zone: a cache
    /// filled by another zone gives that zone's offset until its interval runs out.
    #[inline]
    pub fn local_in(&self, cache: &mut ZoneCache, now_us: TimeUs) -> LocalTime {
        if !cache.span.contains(now_us) {
            cache.span = self.span_cold(now_us);
        }
        LocalTime::from_offset_in(now_us, cache.span.offset_s, &mut cache.day)
    }

    /// The miss path, kept out of line so that the hit path inlines small.
    #[cold]
    #[inline(never)]
    fn span_cold(&self, now_us: TimeUs) -> ZoneSpan {
        self.span(now_us)
    }

    /// The local time at `now_us` without reading or filling the cache: one database lookup.
    pub fn local_uncached(&self, now_us: TimeUs) -> LocalTime {
        LocalTime::from_offset(now_us, self.offset_s(now_us))
    }

    /// The UTC offset in seconds at `now_us`, from the database.
    pub fn offset_s(&self, now_us: TimeUs) -> i32 {
        self.tz.to_offset(timestamp(now_us)).seconds()
    }

    /// The offset at `now_us` and the interval between the zone's transitions that holds it:
    /// three database lookups.
    fn span(&self, now_us: TimeUs) -> ZoneSpan {
        // Past LOCAL_TIME_US_MAX every instant reads as that one; no transition follows it, so
        // the span found for it runs to TimeUs::MAX and covers them all.
        let clamped_us = now_us.min(LOCAL_TIME_US_MAX);
        let now = timestamp(clamped_us);
        // Transitions fall on whole seconds, and `preceding` yields those strictly before its
        // argument: asking from one microsecond later includes a transition exactly at `now`.
        let start_us = self
            .tz
            .preceding(timestamp(clamped_us.saturating_add(1)))
            .next()
            .map_or(0, |t| micros(t.timestamp()));
        let end_us = self
            .tz
            .following(now)
            .next()
            .map_or(TimeUs::MAX, |t| micros(t.timestamp()));
        let offset_s = self.tz.to_offset(now).seconds();
        let span = ZoneSpan {
            start_us,
            end_us,
            offset_s,
        };
        if span.contains(now_us) {
            span
        } else {
            // Not expected from the database; should it happen, the offset is still right and
            // only the cache's reach is lost.
            ZoneSpan {
                start_us: now_us,
                end_us: now_us.saturating_add(1),
                offset_s,
            }
        }
    }
}

/// `now_us` as a jiff timestamp, clamped to [`LOCAL_TIME_US_MAX`].
fn timestamp(now_us: TimeUs) -> Timestamp {
    i64::try_from(now_us.min(LOCAL_TIME_US_MAX))
        .ok()
        .and_then(|us| Timestamp::from_microsecond(us).ok())
        .unwrap_or(Timestamp::MAX)
}

/// A transition's instant in our microseconds (transitions before the epoch read as 0).
fn micros(t: Timestamp) -> TimeUs {
    TimeUs::try_from(t.as_microsecond()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use jiff::civil::{Date, date};
    use proptest::prelude::*;

    /// Microseconds of a civil time in a zone.
    fn at(zone: &str, y: i16, mo: i8, d: i8, h: i8, mi: i8) -> TimeUs {
        let tz = TimeZone::get(zone).unwrap();
        let zoned = date(y, mo, d).at(h, mi, 0, 0).to_zoned(tz).unwrap();
        TimeUs::try_from(zoned.timestamp().as_microsecond()).unwrap()
    }

    /// Microseconds of a UTC instant.
    fn utc(y: i16, mo: i8, d: i8, h: i8, mi: i8) -> TimeUs {
        at("UTC", y, mo, d, h, mi)
    }

    fn days_since_origin(d: Date) -> u32 {
        let days = d.since(date(1969, 12, 29)).unwrap().get_days();
        u32::try_from(days).unwrap()
    }

    /// The expected answer, derived independently through jiff's civil calendar.
    fn expected(zone: &str, now_us: TimeUs) -> LocalTime {
        let tz = TimeZone::get(zone).unwrap();
        let ts = Timestamp::from_microsecond(i64::try_from(now_us).unwrap()).unwrap();
        let dt = ts.to_zoned(tz).datetime();
        let day_key = days_since_origin(dt.date());
        LocalTime {
            weekday: u8::try_from(dt.weekday().to_monday_one_offset()).unwrap(),
            minute_of_day: u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute()))
                .unwrap(),
            hour_key: day_key * 24 + u32::try_from(dt.hour()).unwrap(),
            day_key,
            week_key: day_key / 7,
            month_key: u32::try_from(i32::from(dt.year()) * 12 + i32::from(dt.month()) - 1)
                .unwrap(),
        }
    }

    const MINUTE: TimeUs = 60 * MICROS_PER_SECOND;
    const HOUR: TimeUs = 60 * MINUTE;
    const DAY: TimeUs = 24 * HOUR;

    #[test]
    fn new_york_spring_forward() {
        let mut clock = ZoneClock::new("America/New_York").unwrap();
        // 2026-03-08: 01:59 EST (UTC-5) is followed by 03:00 EDT (UTC-4).
        let before = utc(2026, 3, 8, 6, 59);
        let after = before + MINUTE;
        let a = clock.local(before);
        let b = clock.local(after);
        assert_eq!((a.weekday, a.minute_of_day), (7, 60 + 59));
        assert_eq!((b.weekday, b.minute_of_day), (7, 3 * 60));
        assert_eq!(a.day_key, b.day_key);
        assert_eq!(a.week_key, b.week_key);
        // The 02:00 hour does not exist: the key jumps by two.
        assert_eq!(b.hour_key, a.hour_key + 2);
        assert_eq!(a, expected("America/New_York", before));
        assert_eq!(b, expected("America/New_York", after));
        // The day lasts 23 hours: midnight to midnight.
        let start = at("America/New_York", 2026, 3, 8, 0, 0);
        let end = at("America/New_York", 2026, 3, 9, 0, 0);
        assert_eq!(end - start, 23 * HOUR);
        assert_eq!(clock.local(end - 1).day_key, a.day_key);
        assert_eq!(clock.local(end).day_key, a.day_key + 1);
        // Monday: a new week.
        assert_eq!(clock.local(end).week_key, a.week_key + 1);
        assert_eq!(clock.local(end).weekday, 1);
    }

    #[test]
    fn new_york_fall_back_repeated_hour_shares_its_key() {
        let mut clock = ZoneClock::new("America/New_York").unwrap();
        // 2026-11-01: 01:00–02:00 EDT (05:00–06:00 UTC), then 01:00–02:00 EST (06:00–07:00 UTC).
        let first = clock.local(utc(2026, 11, 1, 5, 30));
        let second = clock.local(utc(2026, 11, 1, 6, 30));
        assert_eq!(first.minute_of_day, 90);
        assert_eq!(second.minute_of_day, 90);
        assert_eq!(first, second, "both passes of 01:30 read the same");
        let last_edt = clock.local(utc(2026, 11, 1, 6, 0) - 1);
        let first_est = clock.local(utc(2026, 11, 1, 6, 0));
        assert_eq!(last_edt.minute_of_day, 119);
        assert_eq!(first_est.minute_of_day, 60);
        assert_eq!(
            last_edt.hour_key, first_est.hour_key,
            "no key goes backwards"
        );
        let two_am = clock.local(utc(2026, 11, 1, 7, 0));
        assert_eq!(two_am.minute_of_day, 120);
        assert_eq!(two_am.hour_key, first_est.hour_key + 1);
        // The day lasts 25 hours.
        let start = at("America/New_York", 2026, 11, 1, 0, 0);
        let end = at("America/New_York", 2026, 11, 2, 0, 0);
        assert_eq!(end - start, 25 * HOUR);
        assert_eq!(clock.local(end - 1).day_key, first.day_key);
        assert_eq!(clock.local(end).day_key, first.day_key + 1);
        for t in [
            start,
            end - 1,
            end,
            utc(2026, 11, 1, 5, 59),
            utc(2026, 11, 1, 6, 59),
        ] {
            assert_eq!(clock.local(t), expected("America/New_York", t));
        }
    }

    #[test]
    fn day_rolls_at_local_midnight_not_utc() {
        let mut clock = ZoneClock::new("America/Denver").unwrap();
        // 2026-01-15 is a Thursday; Denver is UTC-7 in winter.
        let late = at("America/Denver", 2026, 1, 15, 23, 59);
        let midnight = late + MINUTE;
        assert_eq!(midnight, utc(2026, 1, 16, 7, 0));
        let a = clock.local(late);
        let b = clock.local(midnight);
        assert_eq!((a.weekday, a.minute_of_day), (4, 1439));
        assert_eq!((b.weekday, b.minute_of_day), (5, 0));
        assert_eq!(b.day_key, a.day_key + 1);
        assert_eq!(b.hour_key, a.hour_key + 1);
        // UTC midnight (17:00 the day before in Denver) changes nothing.
        let utc_midnight = utc(2026, 1, 16, 0, 0);
        let c = clock.local(utc_midnight - 1);
        let d = clock.local(utc_midnight);
        assert_eq!(c.day_key, d.day_key);
        assert_eq!(d.day_key, a.day_key);
        assert_eq!(d.minute_of_day, 17 * 60);
    }

    #[test]
    fn week_rolls_monday_midnight_local() {
        let mut clock = ZoneClock::new("America/Denver").unwrap();
        // 2026-01-18 is a Sunday.
        let sunday = clock.local(at("America/Denver", 2026, 1, 18, 23, 59));
        let monday = clock.local(at("America/Denver", 2026, 1, 19, 0, 0));
        assert_eq!((sunday.weekday, monday.weekday), (7, 1));
        assert_eq!(monday.week_key, sunday.week_key + 1);
        // Monday 00:00 UTC is still Sunday evening in Denver.
        let utc_monday = clock.local(utc(2026, 1, 19, 0, 0));
        assert_eq!(utc_monday.weekday, 7);
        assert_eq!(utc_monday.week_key, sunday.week_key);
        // The rest of the week keeps the key.
        let saturday = clock.local(at("America/Denver", 2026, 1, 24, 12, 0));
        assert_eq!(saturday.week_key, monday.week_key);
    }

    #[test]
    fn month_rolls_on_the_first_local() {
        let mut clock = ZoneClock::new("America/Denver").unwrap();
        let jan = clock.local(at("America/Denver", 2026, 1, 31, 23, 59));
        let feb = clock.local(at("America/Denver", 2026, 2, 1, 0, 0));
        assert_eq!(jan.month_key, 2026 * 12);
        assert_eq!(feb.month_key, 2026 * 12 + 1);
        // 2026-02-01 00:00 UTC is still January in Denver.
        assert_eq!(clock.local(utc(2026, 2, 1, 0, 0)).month_key, 2026 * 12);
        // Year end.
        let dec = clock.local(at("America/Denver", 2026, 12, 31, 23, 59));
        let jan27 = clock.local(at("America/Denver", 2027, 1, 1, 0, 0));
        assert_eq!(dec.month_key, 2026 * 12 + 11);
        assert_eq!(jan27.month_key, 2027 * 12);
        // Leap day.
        let leap = clock.local(at("America/Denver", 2028, 2, 29, 12, 0));
        assert_eq!(leap.month_key, 2028 * 12 + 1);
        let march = clock.local(at("America/Denver", 2028, 3, 1, 0, 0));
        assert_eq!(march.month_key, 2028 * 12 + 2);
        assert_eq!(march.day_key, leap.day_key + 1);
    }

    #[test]
    fn half_hour_zone() {
        let mut clock = ZoneClock::new("Asia/Kolkata").unwrap();
        // UTC+05:30, no DST.
        let t = utc(2026, 6, 30, 18, 29);
        let a = clock.local(t);
        assert_eq!(a.minute_of_day, 23 * 60 + 59);
        let b = clock.local(t + MINUTE);
        assert_eq!(b.minute_of_day, 0);
        assert_eq!(b.day_key, a.day_key + 1);
        assert_eq!(b.month_key, 2026 * 12 + 6);
        assert_eq!(a.month_key, 2026 * 12 + 5);
        // The local hour starts at hh:30 UTC.
        let h = clock.local(utc(2026, 6, 30, 10, 30));
        assert_eq!(h.minute_of_day, 16 * 60);
        assert_eq!(
            clock.local(utc(2026, 6, 30, 10, 30) - 1).hour_key,
            h.hour_key - 1
        );
        assert_eq!(a, expected("Asia/Kolkata", t));
    }

    #[test]
    fn lord_howe_half_hour_dst() {
        let mut clock = ZoneClock::new("Australia/Lord_Howe").unwrap();
        // 2026-04-05 02:00 (UTC+11) falls back to 01:30 (UTC+10:30): 01:30–02:00 repeats.
        let before = at("Australia/Lord_Howe", 2026, 4, 5, 1, 59);
        assert_eq!(clock.offset_s(before), 11 * 3600);
        let after = before + MINUTE;
        assert_eq!(clock.offset_s(after), 10 * 3600 + 1800);
        let a = clock.local(before);
        let b = clock.local(after);
        assert_eq!(a.minute_of_day, 119);
        assert_eq!(b.minute_of_day, 90);
        assert_eq!(a.hour_key, b.hour_key);
        assert_eq!(a.day_key, b.day_key);
        // 2026-10-04 02:00 (UTC+10:30) springs forward to 02:30 (UTC+11).
        let before = at("Australia/Lord_Howe", 2026, 10, 4, 1, 59);
        let c = clock.local(before);
        let d = clock.local(before + MINUTE);
        assert_eq!((c.minute_of_day, d.minute_of_day), (119, 150));
        assert_eq!(d.hour_key, c.hour_key + 1);
        for t in [before, before + MINUTE, after, after - MINUTE] {
            assert_eq!(clock.local(t), expected("Australia/Lord_Howe", t));
        }
    }

    #[test]
    fn chatham_hour_key_goes_back_once_a_year() {
        let mut clock = ZoneClock::new("Pacific/Chatham").unwrap();
        // 2026-04-05 03:45 (UTC+13:45) falls back to 02:45 (UTC+12:45).
        let edge = utc(2026, 4, 4, 14, 0);
        let a = clock.local(edge - 1);
        let b = clock.local(edge);
        assert_eq!(
            (a.minute_of_day, b.minute_of_day),
            (3 * 60 + 44, 2 * 60 + 45)
        );
        assert_eq!(b.hour_key, a.hour_key - 1);
        assert_eq!(b.day_key, a.day_key);
        assert_eq!(a, expected("Pacific/Chatham", edge - 1));
        assert_eq!(b, expected("Pacific/Chatham", edge));
    }

    #[test]
    fn utc_and_origin() {
        let mut clock = ZoneClock::new("UTC").unwrap();
        assert_eq!(clock.name(), "UTC");
        let epoch = clock.local(0);
        // 1970-01-01 was a Thursday, three days after the origin Monday.
        assert_eq!(epoch.weekday, 4);
        assert_eq!(epoch.day_key, 3);
        assert_eq!(epoch.week_key, 0);
        assert_eq!(epoch.hour_key, 72);
        assert_eq!(epoch.month_key, 1970 * 12);
        assert_eq!(epoch, expected("UTC", 0));
        // West of UTC at the epoch: still 1969, keys non-negative.
        let mut honolulu = ZoneClock::new("Pacific/Honolulu").unwrap();
        let t = honolulu.local(0);
        assert_eq!(t.month_key, 1969 * 12 + 11);
        assert_eq!(t.weekday, 3);
        assert_eq!(t, expected("Pacific/Honolulu", 0));
        // The far future clamps instead of overflowing.
        let end = clock.local(TimeUs::MAX);
        assert_eq!(end, clock.local(LOCAL_TIME_US_MAX));
        assert_eq!(end, clock.local_uncached(TimeUs::MAX));
        assert_eq!(end, expected("UTC", LOCAL_TIME_US_MAX));
        let mut kiritimati = ZoneClock::new("Pacific/Kiritimati").unwrap();
        assert_eq!(kiritimati.local(TimeUs::MAX).month_key, 9999 * 12 + 11);
        assert_eq!(
            kiritimati.local(TimeUs::MAX - 1),
            kiritimati.local(TimeUs::MAX)
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            ZoneClock::new("america/denver").unwrap().name(),
            "America/Denver"
        );
        assert_eq!(ZoneClock::new("Etc/GMT+5").unwrap().offset_s(0), -5 * 3600);
        for bad in [
            "",
            "Mars/Olympus_Mons",
            "America/Denve",
            "America/Denver ",
            "America/Denver\0",
            "../../../etc/passwd",
            "/usr/share/zoneinfo/UTC",
            "EST5EDT,M3.2.0,M11.1.0",
            "UTC+5",
            "+05:00",
            "Etc/Unknown",
            "etc/unknown",
            "Europe/Berlin/",
            "Ωμέγα",
        ] {
            let err = ZoneClock::new(bad).unwrap_err();
            assert_eq!(err.code(), ErrorCode::UNKNOWN_TIME_ZONE, "{bad:?}");
            assert!(matches!(err, ClockError::Unknown { .. }), "{bad:?}");
        }
        let long = "A".repeat(TIME_ZONE_LEN_MAX + 1);
        assert_eq!(
            ZoneClock::new(&long).unwrap_err(),
            ClockError::TooLong {
                len: TIME_ZONE_LEN_MAX + 1
            }
        );
        assert!(
            ZoneClock::new("Nope/Nope")
                .unwrap_err()
                .to_string()
                .contains("Nope/Nope")
        );
    }

    #[test]
    fn cache_spans_transitions() {
        let mut clock = ZoneClock::new("America/Denver").unwrap();
        let t = utc(2026, 6, 1, 0, 0);
        clock.local(t);
        // The summer span runs from the March transition to the November one.
        assert_eq!(clock.cache.span.start_us, utc(2026, 3, 8, 9, 0));
        assert_eq!(clock.cache.span.end_us, utc(2026, 11, 1, 8, 0));
        assert_eq!(clock.cache.span.offset_s, -6 * 3600);
        // Exactly at a transition: the new offset, and the span starts there.
        clock.local(utc(2026, 11, 1, 8, 0));
        assert_eq!(clock.cache.span.start_us, utc(2026, 11, 1, 8, 0));
        assert_eq!(clock.cache.span.offset_s, -7 * 3600);
        clock.local(utc(2026, 11, 1, 8, 0) - 1);
        assert_eq!(clock.cache.span.end_us, utc(2026, 11, 1, 8, 0));
        // A cache kept outside the clock answers the same.
        let mut cache = ZoneCache::EMPTY;
        let outside = clock.local_in(&mut cache, t);
        assert_eq!(outside, clock.local(t));
        assert_eq!(cache.span, clock.span(t));
        assert_eq!(
            clock.local_in(&mut cache, t + DAY),
            clock.local_uncached(t + DAY)
        );
        // A zone without transitions caches everything at once.
        let mut kolkata = ZoneClock::new("Asia/Kolkata").unwrap();
        kolkata.local(t);
        assert!(kolkata.cache.span.contains(utc(2035, 1, 1, 0, 0)));
        assert!(kolkata.cache.span.contains(utc(2020, 1, 1, 0, 0)));
    }

    const ZONES: [&str; 10] = [
        "America/New_York",
        "America/Denver",
        "Europe/London",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Sao_Paulo",
        "Asia/Beirut",
        "Pacific/Chatham",
        "Antarctica/Troll",
        "UTC",
    ];

    /// An instant in 2020–2035, half of them within two hours of one of the zone's transitions.
    fn instant(zone: usize) -> impl Strategy<Value = TimeUs> {
        let lo = utc(2020, 1, 1, 0, 0);
        let hi = utc(2035, 12, 31, 23, 59);
        let tz = TimeZone::get(ZONES[zone]).unwrap();
        let transitions: Vec<TimeUs> = tz
            .following(Timestamp::from_microsecond(i64::try_from(lo).unwrap()).unwrap())
            .map(|t| micros(t.timestamp()))
            .take_while(|&t| t < hi)
            .collect();
        let uniform = (lo..hi).boxed();
        if transitions.is_empty() {
            uniform
        } else {
            prop_oneof![
                uniform,
                (prop::sample::select(transitions), 0..4 * HOUR)
                    .prop_map(|(t, d)| t + d - 2 * HOUR),
            ]
            .boxed()
        }
    }

    fn zone_and_instants() -> impl Strategy<Value = (usize, Vec<TimeUs>)> {
        (0..ZONES.len()).prop_flat_map(|z| (Just(z), prop::collection::vec(instant(z), 1..64)))
    }

    proptest! {
        #[test]
        fn cached_equals_uncached_equals_civil((zone, instants) in zone_and_instants()) {
            let mut clock = ZoneClock::new(ZONES[zone]).unwrap();
            for &t in &instants {
                let cached = clock.local(t);
                prop_assert_eq!(cached, clock.local_uncached(t));
                prop_assert_eq!(cached, expected(ZONES[zone], t));
                // The cache answers again from its span, also for a neighbour.
                prop_assert_eq!(clock.local(t), cached);
                prop_assert_eq!(clock.local(t + 1), clock.local_uncached(t + 1));
            }
        }

        #[test]
        fn any_name_is_an_answer_not_a_panic(name in ".{0,80}") {
            if let Err(err) = ZoneClock::new(&name) {
                prop_assert_eq!(err.code(), ErrorCode::UNKNOWN_TIME_ZONE);
            }
        }

        #[test]
        fn any_instant_is_an_answer_not_a_panic(t: u64, offset in -93_599i32..=93_599) {
            let lt = LocalTime::from_offset(t, offset);
            prop_assert!((1..=7).contains(&lt.weekday));
            prop_assert!(lt.minute_of_day < 1440);
            let mut clock = ZoneClock::new("America/Denver").unwrap();
            prop_assert_eq!(clock.local(t), clock.local_uncached(t));
        }
    }

    /// Cost per call, cached and uncached:
    /// `cargo test --release --lib engine::clock -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, not a test"]
    fn measure_local() {
        use std::hint::black_box;
        use std::time::Instant;
        // Every field feeds the sum, so that none of the work is optimized away.
        fn fold(acc: u64, lt: LocalTime) -> u64 {
            acc.wrapping_add(
                u64::from(lt.hour_key)
                    ^ u64::from(lt.day_key)
                    ^ u64::from(lt.week_key)
                    ^ u64::from(lt.month_key)
                    ^ u64::from(lt.minute_of_day)
                    ^ u64::from(lt.weekday),
            )
        }
        fn per_call(n: u64, mut f: impl FnMut(u64)) -> f64 {
            let t0 = Instant::now();
            for i in 0..n {
                f(i);
            }
            t0.elapsed().as_nanos() as f64 / n as f64
        }
        const N: u64 = 10_000_000;
        const M: u64 = 1_000_000;
        let start_us = utc(2026, 6, 1, 0, 0);
        let mut clock = ZoneClock::new("America/New_York").unwrap();
        let mut acc = 0u64;
        // A new instant every call, 1 ms apart (one local day per 86.4 million calls): the hit
        // path of both caches.
        let cached = per_call(N, |i| {
            acc = fold(acc, clock.local(black_box(start_us + i * 1_000)))
        });
        // 10 minutes apart: a new local day every 144 calls.
        let new_days = per_call(N, |i| {
            acc = fold(
                acc,
                clock.local(black_box(start_us + i * 600 * MICROS_PER_SECOND)),
            )
        });
        // The arithmetic alone, no cache at all.
        let arithmetic = per_call(N, |i| {
            acc = fold(
                acc,
                LocalTime::from_offset(black_box(start_us + i * 1_000), -4 * 3600),
            )
        });
        let uncached = per_call(M, |i| {
            acc = fold(acc, clock.local_uncached(black_box(start_us + i * 1_000)))
        });
        // Alternating across a transition: every call misses the cache and refills it.
        let edge = utc(2026, 11, 1, 6, 0);
        let miss = per_call(M, |i| {
            acc = fold(
                acc,
                clock.local(black_box(if i % 2 == 0 { edge - 1 } else { edge })),
            )
        });
        eprintln!(
            "ZoneClock::local cached {cached:.1} ns, cached with a new day every 144 calls \
             {new_days:.1} ns, LocalTime::from_offset {arithmetic:.1} ns, local_uncached \
             {uncached:.1} ns, local missing the cache every call {miss:.1} ns ({acc})"
        );
    }
}
