//! A campaign's weekly open hours, compiled from the wire's `window`s, evaluated in the buyer's
//! local time.
//!
//! # Semantics
//!
//! A window is `weekday` (1 Monday … 7 Sunday), `open_minute` and `close_minute`, minutes after
//! local midnight. It is open from `open_minute` **inclusive** to `close_minute` **exclusive**:
//! `{weekday: 1, open_minute: 540, close_minute: 1020}` is open Monday from 09:00:00 through
//! 16:59:59 and closed at 17:00. `close_minute` may be 1440, the end of the day.
//!
//! A window lives within one day (`open_minute < close_minute <= 1440`), so hours that span
//! midnight take two windows: Monday 22:00 to Tuesday 02:00 is `{1, 1320, 1440}` and
//! `{2, 0, 120}`. Compilation merges them into one span, so there is no gap at midnight.
//! Windows may overlap; an empty list means always open.
//!
//! Windows are read in local wall-clock time, so DST needs no special case: on a spring-forward
//! day the skipped local hour never occurs (a window of only 02:00–03:00 does not open that
//! Sunday in America/New_York), and on a fall-back day a window covering the repeated hour is
//! open during both passes of it (one more real hour than usual).
//!
//! # Size
//!
//! A book may hold 100k campaigns, so a schedule is a boxed slice of merged, sorted spans of
//! minutes of the week (4 bytes each): two words plus one span per open stretch, typically five
//! to seven. An always-open schedule allocates nothing. `is_open` is a binary search over at most
//! [`SCHEDULE_WINDOWS_MAX`] spans.

use crate::limits::{MINUTES_PER_DAY, SCHEDULE_WINDOWS_MAX};
use crate::protocol::book::Window;

use super::clock::LocalTime;
// One type for every refused definition (`INVALID_DEFINITION`, 702), shared with the filter and
// pre-ping compilers; re-exported so that `Schedule::compile`'s signature reads on its own.
pub use super::filters::DefinitionError;

/// Minutes in a week: the end of the last span a schedule can hold.
const MINUTES_PER_WEEK: u16 = 7 * MINUTES_PER_DAY;

/// Open from `open` (inclusive) to `close` (exclusive), minutes after Monday 00:00 local.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Span {
    open: u16,
    close: u16,
}

/// Compiled weekly open hours. See the module documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Schedule {
    /// Sorted, disjoint and not touching (touching spans are merged); empty: always open.
    spans: Box<[Span]>,
}

impl Schedule {
    /// Checks and compiles a campaign's windows; an empty list is always open.
    pub fn compile(windows: &[Window]) -> Result<Self, DefinitionError> {
        if windows.len() > SCHEDULE_WINDOWS_MAX {
            return Err(DefinitionError::invalid(format!(
                "schedule has {} windows, at most {SCHEDULE_WINDOWS_MAX}",
                windows.len()
            )));
        }
        let mut spans = Vec::with_capacity(windows.len());
        for (i, w) in windows.iter().enumerate() {
            let problem = if !(1..=7).contains(&w.weekday) {
                Some("weekday must be 1 (Monday) to 7 (Sunday)")
            } else if w.open_minute >= w.close_minute {
                Some(
                    "open_minute must be below close_minute (a window that spans midnight takes two windows)",
                )
            } else if w.close_minute > MINUTES_PER_DAY {
                Some("close_minute must be at most 1440")
            } else {
                None
            };
            if let Some(problem) = problem {
                return Err(DefinitionError::invalid(format!(
                    "schedule window {i} (weekday {}, {}..{}): {problem}",
                    w.weekday, w.open_minute, w.close_minute
                )));
            }
            // Checked above: weekday 1..=7 and close <= 1440, so at most 6 * 1440 + 1440.
            let day_start = u16::from(w.weekday - 1) * MINUTES_PER_DAY;
            spans.push(Span {
                open: day_start + w.open_minute,
                close: day_start + w.close_minute,
            });
        }
        spans.sort_unstable_by_key(|s| s.open);
        let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
        for span in spans {
            match merged.last_mut() {
                // Overlapping or touching (Monday's 1440 is Tuesday's 0): one span.
                Some(last) if span.open <= last.close => last.close = last.close.max(span.close),
                _ => merged.push(span),
            }
        }
        // Open all week is the same as no windows; keep one representation of it.
        if let [only] = merged.as_slice()
            && only.open == 0
            && only.close == MINUTES_PER_WEEK
        {
            merged.clear();
        }
        Ok(Self {
            spans: merged.into_boxed_slice(),
        })
    }

    /// Open at every instant.
    pub fn always() -> Self {
        Self::default()
    }

    /// Whether it is open all week.
    pub fn is_always_open(&self) -> bool {
        self.spans.is_empty()
    }

    /// Whether the campaign buys at this local time (open minute inclusive, close exclusive).
    #[inline]
    pub fn is_open(&self, local: &LocalTime) -> bool {
        if self.spans.is_empty() {
            return true;
        }
        let minute = local.minute_of_week();
        // The first span that closes after this minute is the only one that can contain it.
        let i = self.spans.partition_point(|s| u32::from(s.close) <= minute);
        self.spans
            .get(i)
            .is_some_and(|s| u32::from(s.open) <= minute)
    }

    /// Heap bytes this schedule holds, for the book's memory report.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val::<[Span]>(&self.spans)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::engine::clock::ZoneClock;
    use crate::protocol::ErrorCode;
    use proptest::prelude::*;

    fn w(weekday: u8, open_minute: u16, close_minute: u16) -> Window {
        Window {
            weekday,
            open_minute,
            close_minute,
        }
    }

    fn local(weekday: u8, minute_of_day: u16) -> LocalTime {
        LocalTime {
            weekday,
            minute_of_day,
            hour_key: 0,
            day_key: 0,
            week_key: 0,
            month_key: 0,
        }
    }

    #[test]
    fn empty_is_always_open() {
        let s = Schedule::compile(&[]).unwrap();
        assert!(s.is_always_open());
        assert_eq!(s, Schedule::always());
        for day in 1..=7 {
            for minute in [0, 719, 1439] {
                assert!(s.is_open(&local(day, minute)));
            }
        }
        assert_eq!(s.heap_bytes(), 0);
    }

    #[test]
    fn open_inclusive_close_exclusive() {
        // Monday 09:00–17:00.
        let s = Schedule::compile(&[w(1, 540, 1020)]).unwrap();
        assert!(!s.is_open(&local(1, 539)));
        assert!(s.is_open(&local(1, 540)));
        assert!(s.is_open(&local(1, 1019)));
        assert!(!s.is_open(&local(1, 1020)));
        // Other days are closed.
        for day in 2..=7 {
            assert!(!s.is_open(&local(day, 600)));
        }
    }

    #[test]
    fn whole_days_and_the_end_of_the_week() {
        let s = Schedule::compile(&[w(7, 0, 1440)]).unwrap();
        assert!(!s.is_open(&local(6, 1439)));
        assert!(s.is_open(&local(7, 0)));
        assert!(s.is_open(&local(7, 1439)));
        assert!(!s.is_open(&local(1, 0)));
        // Seven whole days is always open, and says so.
        let all: Vec<Window> = (1..=7).map(|d| w(d, 0, 1440)).collect();
        assert!(Schedule::compile(&all).unwrap().is_always_open());
    }

    #[test]
    fn midnight_spanning_takes_two_windows_and_has_no_gap() {
        // Monday 22:00 to Tuesday 02:00.
        let s = Schedule::compile(&[w(2, 0, 120), w(1, 1320, 1440)]).unwrap();
        assert_eq!(s.spans.len(), 1, "touching windows merge");
        assert!(!s.is_open(&local(1, 1319)));
        assert!(s.is_open(&local(1, 1320)));
        assert!(s.is_open(&local(1, 1439)));
        assert!(s.is_open(&local(2, 0)));
        assert!(s.is_open(&local(2, 119)));
        assert!(!s.is_open(&local(2, 120)));
        // Sunday night to Monday morning: the week wraps, two spans.
        let s = Schedule::compile(&[w(7, 1320, 1440), w(1, 0, 120)]).unwrap();
        assert!(s.is_open(&local(7, 1439)));
        assert!(s.is_open(&local(1, 0)));
        assert!(!s.is_open(&local(1, 120)));
        assert!(!s.is_open(&local(7, 1319)));
    }

    #[test]
    fn overlapping_windows() {
        let s = Schedule::compile(&[
            w(3, 600, 900),
            w(3, 540, 700),
            w(3, 800, 960),
            w(3, 1000, 1100),
        ])
        .unwrap();
        assert_eq!(s.spans.len(), 2);
        assert!(!s.is_open(&local(3, 539)));
        assert!(s.is_open(&local(3, 540)));
        assert!(s.is_open(&local(3, 959)));
        assert!(!s.is_open(&local(3, 960)));
        assert!(!s.is_open(&local(3, 999)));
        assert!(s.is_open(&local(3, 1000)));
        // Duplicates are harmless.
        let s = Schedule::compile(&[w(3, 600, 900), w(3, 600, 900)]).unwrap();
        assert_eq!(s.spans.len(), 1);
    }

    #[test]
    fn invalid_windows_are_named() {
        let cases = [
            (w(1, 600, 600), "open_minute must be below close_minute"),
            (w(1, 601, 600), "open_minute must be below close_minute"),
            (w(1, 0, 1441), "close_minute must be at most 1440"),
            (w(1, 1500, 1600), "close_minute must be at most 1440"),
            (w(0, 0, 60), "weekday"),
            (w(8, 0, 60), "weekday"),
            (w(255, u16::MAX, u16::MAX), "weekday"),
        ];
        for (bad, what) in cases {
            let err = Schedule::compile(&[w(2, 0, 60), bad]).unwrap_err();
            assert_eq!(err.code, ErrorCode::INVALID_DEFINITION);
            assert!(err.message.contains(what), "{err}");
            assert!(err.message.starts_with("schedule window 1 "), "{err}");
        }
        let too_many = vec![w(1, 0, 60); SCHEDULE_WINDOWS_MAX + 1];
        let err = Schedule::compile(&too_many).unwrap_err();
        assert_eq!(err.code, ErrorCode::INVALID_DEFINITION);
        assert!(Schedule::compile(&too_many[..SCHEDULE_WINDOWS_MAX]).is_ok());
    }

    #[test]
    fn hand_built_local_time_out_of_range_is_closed_not_a_panic() {
        let s = Schedule::compile(&[w(1, 0, 1440)]).unwrap();
        assert!(!s.is_open(&local(0, 0)));
        assert!(!s.is_open(&local(8, 0)));
        assert!(!s.is_open(&local(255, u16::MAX)));
    }

    #[test]
    fn dst_days_are_read_in_local_time() {
        const MINUTE: u64 = 60_000_000;
        let mut clock = ZoneClock::new("America/New_York").unwrap();
        // Sunday 2026-03-08: 02:00–03:00 local does not exist.
        let skipped = Schedule::compile(&[w(7, 120, 180)]).unwrap();
        let day_start = 1_772_946_000_000_000; // 2026-03-08 00:00 EST
        let day_end = day_start + 23 * 60 * MINUTE;
        let mut t = day_start;
        while t < day_end {
            assert!(!skipped.is_open(&clock.local(t)));
            t += MINUTE;
        }
        // A week earlier the same window is open for an hour.
        let open: u64 = (0..24 * 60)
            .filter(|m| {
                skipped.is_open(&clock.local(day_start - 7 * 24 * 60 * MINUTE + m * MINUTE))
            })
            .count() as u64;
        assert_eq!(open, 60);
        // Sunday 2026-11-01: 01:00–02:00 local happens twice, so the window is open two hours.
        let repeated = Schedule::compile(&[w(7, 60, 120)]).unwrap();
        let day_start = 1_793_505_600_000_000; // 2026-11-01 00:00 EDT
        let open = (0..25 * 60)
            .filter(|m| repeated.is_open(&clock.local(day_start + m * MINUTE)))
            .count();
        assert_eq!(open, 120);
        // Business hours 09:00–17:00 are eight local hours on both days.
        let business = Schedule::compile(&[w(7, 540, 1020)]).unwrap();
        for day_start in [1_772_946_000_000_000u64, 1_793_505_600_000_000] {
            let open = (0..25 * 60)
                .filter(|m| business.is_open(&clock.local(day_start + m * MINUTE)))
                .count();
            assert_eq!(open, 8 * 60);
            assert!(business.is_open(&clock.local(day_start + 15 * 60 * MINUTE)));
        }
    }

    #[test]
    fn small_in_memory() {
        assert_eq!(
            std::mem::size_of::<Schedule>(),
            2 * std::mem::size_of::<usize>()
        );
        let weekdays: Vec<Window> = (1..=5).map(|d| w(d, 540, 1020)).collect();
        assert_eq!(Schedule::compile(&weekdays).unwrap().heap_bytes(), 20);
    }

    fn window() -> impl Strategy<Value = Window> {
        (1u8..=7, 0u16..1440)
            .prop_flat_map(|(d, open)| (Just(d), Just(open), open + 1..=1440))
            .prop_map(|(d, open, close)| w(d, open, close))
    }

    proptest! {
        #[test]
        fn agrees_with_the_windows(
            windows in prop::collection::vec(window(), 0..12),
            probes in prop::collection::vec((1u8..=7, 0u16..1440), 1..64),
        ) {
            let s = Schedule::compile(&windows).unwrap();
            for (day, minute) in probes {
                let naive = windows.is_empty() || windows.iter().any(|w| {
                    w.weekday == day && w.open_minute <= minute && minute < w.close_minute
                });
                prop_assert_eq!(s.is_open(&local(day, minute)), naive);
            }
        }

        #[test]
        fn any_window_is_an_answer_not_a_panic(
            raw in prop::collection::vec((any::<u8>(), any::<u16>(), any::<u16>()), 0..70),
            probe in (any::<u8>(), any::<u16>()),
        ) {
            let windows: Vec<Window> = raw.into_iter().map(|(d, o, c)| w(d, o, c)).collect();
            if let Ok(s) = Schedule::compile(&windows) {
                let _ = s.is_open(&local(probe.0, probe.1));
            }
        }
    }
}
