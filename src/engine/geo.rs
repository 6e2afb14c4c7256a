//! The embedded US ZIP table (state and centroid of every ZIP) and great-circle distance.
//!
//! The table is `data/us-zips.bin`, built by `data/make_us_zips.py` from the shared
//! `us-zips.csv` (see `data/README.md` for its format and attribution). It is compiled into the
//! binary with `include_bytes!`, so the engine reads no file at run time, and parsed once on
//! first use ([`ZipTable::us`], about 1 ms in release).
//!
//! Coordinates are kept as the table's exact fixed-point values (1e-4 degrees) and handed out as
//! `f64`; geography is the one place the engine uses floating point (never for money).
//!
//! 306 military ZIPs (states `AA`, `AE`, `AP`) have the placeholder centroid 0°, 0° in the source
//! data. They keep it here, so the table equals the CSV, but [`ZipInfo::has_centroid`] is false
//! for them and radius rules ignore them: a point in the Gulf of Guinea is not where they are.

use std::fmt;
use std::sync::{Arc, OnceLock};

/// Earth's mean radius in miles, the one the haversine formula uses here.
pub const EARTH_RADIUS_MILES: f64 = 3_958.8;

/// The embedded table; see the module documentation and `data/README.md`.
static US_ZIPS_BIN: &[u8] =
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/data/us-zips.bin"));

/// The first bytes of `data/us-zips.bin`: the format's name and version.
const MAGIC: &[u8; 8] = b"PPZIPUS1";
/// Bytes of one row: zip (u24), state index (u8), latitude and longitude (i24 each).
const ROW_LEN: usize = 10;
/// ZIP codes are five decimal digits, so a dense slot array of this length covers them all.
const ZIP_SLOTS: usize = 100_000;
/// Marks an empty slot of the dense array (the table has 42,555 rows, far below it).
const NO_ROW: u16 = u16::MAX;
/// Fixed-point scale of the stored coordinates: 1e-4 degrees, the source's precision.
const DEGREES_E4: f64 = 10_000.0;

/// A five-digit ZIP code from the table.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ZipCode([u8; 5]);

impl ZipCode {
    fn from_number(number: u32) -> Self {
        let mut digits = [b'0'; 5];
        let mut rest = number;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        Self(digits)
    }

    /// The code as text, e.g. `"80202"`.
    pub fn as_str(&self) -> &str {
        // Always five ASCII digits by construction; the fallback only keeps this panic-free.
        std::str::from_utf8(&self.0).unwrap_or("00000")
    }

    /// The code as a number, e.g. 501 for `"00501"`.
    pub fn number(self) -> u32 {
        self.0
            .iter()
            .fold(0, |number, digit| number * 10 + u32::from(digit - b'0'))
    }
}

impl fmt::Debug for ZipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ZipCode({})", self.as_str())
    }
}

impl fmt::Display for ZipCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the table knows about a ZIP: its state and its centroid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZipInfo {
    /// Two upper-case ASCII letters: a state, `DC`, a territory (`PR`, `GU`, ...) or a military
    /// mail region (`AA`, `AE`, `AP`).
    pub state: [u8; 2],
    /// Centroid latitude in degrees.
    pub lat: f64,
    /// Centroid longitude in degrees.
    pub lon: f64,
}

impl ZipInfo {
    /// The state as text, e.g. `"CO"`.
    pub fn state_str(&self) -> &str {
        std::str::from_utf8(&self.state).unwrap_or("??")
    }

    /// False for the military ZIPs whose source centroid is the 0°, 0° placeholder.
    pub fn has_centroid(&self) -> bool {
        !(self.lat == 0.0 && self.lon == 0.0)
    }
}

/// One row as stored: 16 bytes, coordinates in exact fixed point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ZipRow {
    pub(crate) zip: u32,
    pub(crate) lat_e4: i32,
    pub(crate) lon_e4: i32,
    /// Index into the table's sorted state list.
    pub(crate) state_ix: u8,
}

impl ZipRow {
    pub(crate) fn lat(&self) -> f64 {
        f64::from(self.lat_e4) / DEGREES_E4
    }

    pub(crate) fn lon(&self) -> f64 {
        f64::from(self.lon_e4) / DEGREES_E4
    }

    pub(crate) fn has_centroid(&self) -> bool {
        !(self.lat_e4 == 0 && self.lon_e4 == 0)
    }
}

#[derive(Debug)]
struct ZipData {
    /// Sorted by zip.
    rows: Vec<ZipRow>,
    /// Row index by ZIP number, [`NO_ROW`] where the ZIP is unknown: a lookup is one load.
    slot_by_zip: Box<[u16]>,
    /// State codes, sorted; `ZipRow::state_ix` points here.
    states: Vec<[u8; 2]>,
    /// Row indexes grouped by state (each group in zip order); group `s` is
    /// `by_state[state_start[s]..state_start[s + 1]]`.
    by_state: Vec<u16>,
    state_start: Vec<u32>,
    /// Each row's centroid on the unit sphere, for radius tests without trigonometry per
    /// lookup. Computed on first use (about 1 ms of sines and cosines, 1 MB) rather than in
    /// [`ZipTable::us`], since only an index with radius rules needs it.
    units: OnceLock<Box<[[f64; 3]]>>,
}

/// The US ZIP table: state and centroid by five-digit ZIP.
///
/// Cloning is cheap (the data is shared), so an index built over the table can keep it.
#[derive(Clone)]
pub struct ZipTable(Arc<ZipData>);

impl fmt::Debug for ZipTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ZipTable")
            .field("zips", &self.0.rows.len())
            .field("states", &self.0.states.len())
            .finish()
    }
}

/// Reads `bytes` as an unsigned little-endian integer of up to four bytes.
fn le_u32(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |number, &byte| (number << 8) | u32::from(byte))
}

/// Reads three bytes as a two's-complement little-endian i24.
fn le_i24(bytes: &[u8]) -> i32 {
    // Shift the 24 bits to the top of an i32 and back, so the sign bit extends.
    ((le_u32(bytes) << 8) as i32) >> 8
}

/// The number of a five-digit ZIP, or `None` for anything else (wrong length, non-digits).
pub(crate) fn zip_number(zip5: &[u8]) -> Option<u32> {
    if zip5.len() != 5 {
        return None;
    }
    zip5.iter().try_fold(0u32, |number, &byte| {
        byte.is_ascii_digit()
            .then(|| number * 10 + u32::from(byte - b'0'))
    })
}

impl ZipTable {
    /// The embedded US table, parsed on first use.
    pub fn us() -> &'static ZipTable {
        static TABLE: OnceLock<ZipTable> = OnceLock::new();
        TABLE.get_or_init(|| match ZipTable::parse(US_ZIPS_BIN) {
            Ok(table) => table,
            // The bytes are compiled in and checked by the tests, so this is a build defect,
            // not an operating error.
            Err(message) => panic!("the embedded data/us-zips.bin is corrupt: {message}"),
        })
    }

    /// Parses the format `data/make_us_zips.py` writes (see there). Checks every length, index
    /// and ordering, so a damaged file is an error rather than a wrong table.
    pub(crate) fn parse(bytes: &[u8]) -> Result<ZipTable, String> {
        let rest = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or("the magic is not PPZIPUS1")?;
        let (count, rest) = rest.split_at_checked(4).ok_or("truncated row count")?;
        let row_count = le_u32(count) as usize;
        let (&state_count, rest) = rest.split_first().ok_or("truncated state count")?;
        let (state_bytes, rows_bytes) = rest
            .split_at_checked(usize::from(state_count) * 2)
            .ok_or("truncated state list")?;
        let states: Vec<[u8; 2]> = state_bytes
            .chunks_exact(2)
            .map(|pair| [pair[0], pair[1]])
            .collect();
        if !states.is_sorted_by(|a, b| a < b)
            || !states.iter().flatten().all(u8::is_ascii_uppercase)
        {
            return Err("the state list is not sorted upper-case codes".into());
        }
        if rows_bytes.len() != row_count.saturating_mul(ROW_LEN) || row_count >= usize::from(NO_ROW)
        {
            return Err(format!(
                "{} row bytes do not hold {row_count} rows of {ROW_LEN} bytes",
                rows_bytes.len()
            ));
        }

        let mut rows = Vec::with_capacity(row_count);
        let mut slot_by_zip = vec![NO_ROW; ZIP_SLOTS].into_boxed_slice();
        let mut state_sizes = vec![0u32; states.len()];
        for (ix, row) in rows_bytes.chunks_exact(ROW_LEN).enumerate() {
            let zip = le_u32(&row[0..3]);
            let state_ix = row[3];
            let lat_e4 = le_i24(&row[4..7]);
            let lon_e4 = le_i24(&row[7..10]);
            let previous = rows.last().map(|row: &ZipRow| row.zip);
            if zip as usize >= ZIP_SLOTS || previous.is_some_and(|previous| previous >= zip) {
                return Err(format!(
                    "row {ix}: zip {zip} is out of range or out of order"
                ));
            }
            let Some(size) = state_sizes.get_mut(usize::from(state_ix)) else {
                return Err(format!("row {ix}: state index {state_ix} is out of range"));
            };
            if lat_e4.abs() > 900_000 || lon_e4.abs() > 1_800_000 {
                return Err(format!("row {ix}: the centroid is not on Earth"));
            }
            *size += 1;
            slot_by_zip[zip as usize] = u16::try_from(ix).map_err(|_| "too many rows")?;
            rows.push(ZipRow {
                zip,
                lat_e4,
                lon_e4,
                state_ix,
            });
        }

        // A counting sort of row indexes by state: zip order within each state for free.
        let mut state_start = Vec::with_capacity(states.len() + 1);
        let mut total = 0u32;
        state_start.push(0);
        for size in &state_sizes {
            total += size;
            state_start.push(total);
        }
        let mut next: Vec<u32> = state_start[..states.len()].to_vec();
        let mut by_state = vec![0u16; rows.len()];
        // `rows.len() < NO_ROW` (checked above), so the u16 row numbers do not wrap.
        for (ix, row) in (0u16..).zip(&rows) {
            let cursor = &mut next[usize::from(row.state_ix)];
            by_state[*cursor as usize] = ix;
            *cursor += 1;
        }

        Ok(ZipTable(Arc::new(ZipData {
            rows,
            slot_by_zip,
            states,
            by_state,
            state_start,
            units: OnceLock::new(),
        })))
    }

    /// Number of ZIPs in the table.
    pub fn len(&self) -> usize {
        self.0.rows.len()
    }

    /// True if the table has no ZIP (never for the embedded one).
    pub fn is_empty(&self) -> bool {
        self.0.rows.is_empty()
    }

    /// State and centroid of a five-digit ZIP; `None` for an unknown ZIP or anything that is not
    /// exactly five ASCII digits.
    #[inline]
    pub fn get(&self, zip5: &str) -> Option<ZipInfo> {
        self.row(zip5.as_bytes()).map(|row| self.info(row))
    }

    /// Every ZIP in ascending order, with its state and centroid.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ZipCode, ZipInfo)> + '_ {
        self.0
            .rows
            .iter()
            .map(|row| (ZipCode::from_number(row.zip), self.info(row)))
    }

    /// The ZIPs of one state (e.g. `"CO"`) in ascending order; empty for an unknown state.
    pub fn zips_in_state(&self, state: &str) -> impl Iterator<Item = (ZipCode, ZipInfo)> + '_ {
        let group = self
            .state_ix(state)
            .map(|ix| {
                let start = self.0.state_start[usize::from(ix)] as usize;
                let end = self.0.state_start[usize::from(ix) + 1] as usize;
                &self.0.by_state[start..end]
            })
            .unwrap_or_default();
        group.iter().map(|&ix| {
            let row = &self.0.rows[usize::from(ix)];
            (ZipCode::from_number(row.zip), self.info(row))
        })
    }

    /// The state codes the table knows, sorted.
    pub fn states(&self) -> impl ExactSizeIterator<Item = [u8; 2]> + '_ {
        self.0.states.iter().copied()
    }

    fn info(&self, row: &ZipRow) -> ZipInfo {
        ZipInfo {
            state: self.state_code(row.state_ix),
            lat: row.lat(),
            lon: row.lon(),
        }
    }

    /// The stored row of a five-digit ZIP.
    #[inline]
    pub(crate) fn row(&self, zip5: &[u8]) -> Option<&ZipRow> {
        self.row_ix(zip5).map(|ix| &self.0.rows[ix])
    }

    /// The position of a five-digit ZIP's row, for [`ZipTable::units`].
    #[inline]
    pub(crate) fn row_ix(&self, zip5: &[u8]) -> Option<usize> {
        let number = zip_number(zip5)?;
        let slot = *self.0.slot_by_zip.get(number as usize)?;
        (usize::from(slot) < self.0.rows.len()).then_some(usize::from(slot))
    }

    /// Every row's centroid on the unit sphere, by row position (see [`unit_vector`]).
    pub(crate) fn units(&self) -> &[[f64; 3]] {
        self.0.units.get_or_init(|| {
            self.0
                .rows
                .iter()
                .map(|row| unit_vector(row.lat(), row.lon()))
                .collect()
        })
    }

    /// The index of a state code in the sorted state list.
    pub(crate) fn state_ix(&self, state: &str) -> Option<u8> {
        let code: [u8; 2] = state.as_bytes().try_into().ok()?;
        let ix = self.0.states.binary_search(&code).ok()?;
        u8::try_from(ix).ok()
    }

    pub(crate) fn state_code(&self, state_ix: u8) -> [u8; 2] {
        self.0
            .states
            .get(usize::from(state_ix))
            .copied()
            .unwrap_or(*b"??")
    }

    pub(crate) fn rows(&self) -> &[ZipRow] {
        &self.0.rows
    }

    /// Heap bytes the parsed table holds (shared by every clone).
    pub fn memory_bytes(&self) -> usize {
        let data = &self.0;
        data.rows.capacity() * size_of::<ZipRow>()
            + data.slot_by_zip.len() * size_of::<u16>()
            + data.states.capacity() * 2
            + data.by_state.capacity() * size_of::<u16>()
            + data.state_start.capacity() * size_of::<u32>()
            + data
                .units
                .get()
                .map_or(0, |units| units.len() * size_of::<[f64; 3]>())
    }
}

/// Great-circle distance in miles between two points given in degrees (haversine, Earth radius
/// [`EARTH_RADIUS_MILES`]). NaN in, NaN out; it never panics.
pub fn distance_miles(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let a = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    // Rounding can push `a` a hair above 1 for antipodal points, where asin would give NaN;
    // `clamp` (unlike `min`) still lets a NaN input through as NaN.
    2.0 * EARTH_RADIUS_MILES * a.sqrt().clamp(0.0, 1.0).asin()
}

/// The point on the unit sphere for a latitude and longitude in degrees. Two points are within
/// `d` miles when the squared chord between them is at most [`chord2_for_miles`]`(d)`: the same
/// test as the haversine formula (chord = 2·sqrt(a)), with no trigonometry per comparison.
pub(crate) fn unit_vector(lat: f64, lon: f64) -> [f64; 3] {
    let (sin_phi, cos_phi) = lat.to_radians().sin_cos();
    let (sin_lambda, cos_lambda) = lon.to_radians().sin_cos();
    [cos_phi * cos_lambda, cos_phi * sin_lambda, sin_phi]
}

/// The squared chord, on the unit sphere, of a great-circle distance of `miles`: within that
/// distance means `|u - v|² <= chord2_for_miles(miles)` for unit vectors `u` and `v`.
pub(crate) fn chord2_for_miles(miles: f64) -> f64 {
    let half_angle = (miles / (2.0 * EARTH_RADIUS_MILES)).min(std::f64::consts::FRAC_PI_2);
    (2.0 * half_angle.sin()).powi(2)
}

/// Squared distance between two unit vectors.
#[inline]
pub(crate) fn chord2(u: &[f64; 3], v: &[f64; 3]) -> f64 {
    let (dx, dy, dz) = (u[0] - v[0], u[1] - v[1], u[2] - v[2]);
    dx * dx + dy * dy + dz * dz
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// The source table, beside the repository as CI and every checkout here have it. Read at
    /// run time, so that a checkout without it still builds; this test then says what is
    /// missing instead of passing.
    fn source_csv() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/us-zips.csv");
        std::fs::read_to_string(path).unwrap_or_else(|error| {
            panic!("the source ZIP table {path} is needed to check data/us-zips.bin: {error}")
        })
    }

    /// Splits a CSV line of this file: the city is the only quoted field and may hold commas.
    fn fields(line: &str) -> (&str, &str, &str, &str) {
        let (zip, rest) = line.split_once(',').unwrap();
        let (state, rest) = rest.split_once(',').unwrap();
        let (_city, coordinates) = rest.rsplit_once("\",").unwrap();
        let (lat, lon) = coordinates.split_once(',').unwrap();
        (zip, state, lat, lon)
    }

    #[test]
    fn embedded_table_equals_the_shared_csv() {
        let table = ZipTable::us();
        let csv = source_csv();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("zip,state,city,latitude,longitude"));
        let rows: Vec<_> = lines.map(fields).collect();
        assert_eq!(rows.len(), 42_555);
        assert_eq!(table.len(), 42_555);
        for ((zip, state, lat, lon), (code, info)) in rows.iter().zip(table.iter()) {
            assert_eq!(code.as_str(), *zip);
            assert_eq!(info.state_str(), *state, "{zip}");
            // The fixed-point value divided by 1e4 is the double nearest the decimal text,
            // exactly what parsing the text gives.
            assert_eq!(info.lat, lat.parse::<f64>().unwrap(), "{zip}");
            assert_eq!(info.lon, lon.parse::<f64>().unwrap(), "{zip}");
            assert_eq!(table.get(zip), Some(info));
        }
    }

    #[test]
    fn lookups() {
        let table = ZipTable::us();
        let denver = table.get("80202").unwrap();
        assert_eq!(&denver.state, b"CO");
        assert!(denver.has_centroid());
        assert_eq!(table.get("00501").unwrap().state_str(), "NY");
        assert_eq!(table.get("99950").unwrap().state_str(), "AK");
        // 00000 and 99999 are not ZIPs.
        assert_eq!(table.get("00000"), None);
        assert_eq!(table.get("99999"), None);
        // A military ZIP with the 0°, 0° placeholder.
        assert!(!table.get("09002").unwrap().has_centroid());
    }

    #[test]
    fn malformed_zips_are_none() {
        let table = ZipTable::us();
        for bad in [
            "8033",
            "80331x",
            "",
            "ABCDE",
            "8033 ",
            " 8033",
            "80-31",
            "８0331",
            "803311",
            "-8033",
            "+8033",
            "\u{0}8033",
            "8\u{0}331",
        ] {
            assert_eq!(table.get(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn iter_and_states() {
        let table = ZipTable::us();
        let codes: Vec<_> = table.iter().map(|(code, _)| code).collect();
        assert!(codes.is_sorted_by(|a, b| a < b));
        assert_eq!(codes[0].as_str(), "00501");
        assert_eq!(codes[0].number(), 501);
        assert_eq!(table.states().len(), 62);

        let colorado: Vec<_> = table.zips_in_state("CO").collect();
        assert_eq!(colorado.len(), 662);
        assert!(colorado.iter().all(|(_, info)| &info.state == b"CO"));
        assert!(colorado.is_sorted_by(|a, b| a.0 < b.0));
        let total: usize = table
            .states()
            .map(|state| {
                table
                    .zips_in_state(std::str::from_utf8(&state).unwrap())
                    .count()
            })
            .sum();
        assert_eq!(total, table.len());
        assert_eq!(table.zips_in_state("XX").count(), 0);
        assert_eq!(table.zips_in_state("").count(), 0);
        assert_eq!(table.zips_in_state("COL").count(), 0);
    }

    #[test]
    fn known_distances() {
        let table = ZipTable::us();
        let miles = |a: &str, b: &str| {
            let (a, b) = (table.get(a).unwrap(), table.get(b).unwrap());
            distance_miles(a.lat, a.lon, b.lat, b.lon)
        };
        let denver_boulder = miles("80202", "80302");
        assert!((24.0..=26.0).contains(&denver_boulder), "{denver_boulder}");
        // Manhattan to downtown Los Angeles: about 2,450 miles.
        let ny_la = miles("10001", "90012");
        assert!((2_400.0..=2_500.0).contains(&ny_la), "{ny_la}");
        assert_eq!(miles("80202", "80202"), 0.0);
        assert_eq!(
            distance_miles(0.0, 0.0, 0.0, 180.0),
            std::f64::consts::PI * EARTH_RADIUS_MILES
        );
        assert!(distance_miles(f64::NAN, 0.0, 0.0, 0.0).is_nan());
    }

    #[test]
    fn chord_test_agrees_with_haversine() {
        let table = ZipTable::us();
        let rows: Vec<_> = table.iter().map(|(_, info)| info).step_by(97).collect();
        let center = table.get("80202").unwrap();
        let u = unit_vector(center.lat, center.lon);
        for info in rows {
            let miles = distance_miles(center.lat, center.lon, info.lat, info.lon);
            let chord = chord2(&u, &unit_vector(info.lat, info.lon));
            for radius in [10.0, 25.0, 100.0, 500.0] {
                // Away from the boundary, both tests must give the same answer.
                if (miles - radius).abs() > 1e-6 {
                    assert_eq!(chord <= chord2_for_miles(radius), miles <= radius);
                }
            }
        }
    }

    #[test]
    fn parse_rejects_damage() {
        assert!(ZipTable::parse(b"").is_err());
        assert!(ZipTable::parse(&US_ZIPS_BIN[..US_ZIPS_BIN.len() - 1]).is_err());
        let mut swapped = US_ZIPS_BIN.to_vec();
        let rows_at = swapped.len() - 2 * ROW_LEN;
        swapped[rows_at..].rotate_left(ROW_LEN);
        assert!(ZipTable::parse(&swapped).is_err());
        let mut bad_state = US_ZIPS_BIN.to_vec();
        bad_state[rows_at + 3] = 200;
        assert!(ZipTable::parse(&bad_state).is_err());
    }
}
