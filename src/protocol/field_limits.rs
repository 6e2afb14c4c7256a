//! Per-field maxima and domains the spec gives in its message tables but `src/limits.rs` does not
//! name yet.
//!
//! They live here, not in `limits.rs`, only because the codec was written while `limits.rs` had
//! another owner; each should move there. Every value is the one the spec's table states, so the
//! reason for each is the spec's; where the number is a convention of the outside world, the
//! comment says which.

/// `contact.first_name`, `contact.last_name`: `str(64)`.
pub const PERSON_NAME_LEN_MAX: usize = 64;
/// `contact.phone`: `str(20)`; E.164 numbers have at most 15 digits plus `+`, 20 leaves room.
pub const PHONE_LEN_MAX: usize = 20;
/// `contact.email`: `str(254)`, the longest address SMTP paths allow (RFC 5321).
pub const EMAIL_LEN_MAX: usize = 254;
/// `contact.street`: `str(128)`.
pub const STREET_LEN_MAX: usize = 128;
/// `contact.city`: `str(64)`.
pub const CITY_LEN_MAX: usize = 64;
/// `contact.region`: `str(64)`.
pub const CONTACT_REGION_LEN_MAX: usize = 64;
/// `consent.certificate_id`: `str(256)`.
pub const CERTIFICATE_ID_LEN_MAX: usize = 256;
/// `consent.text_version`: `str(64)`.
pub const TEXT_VERSION_LEN_MAX: usize = 64;
/// `consent.user_agent`: `str(512)`; real user agents stay under 300 bytes.
pub const USER_AGENT_LEN_MAX: usize = 512;
/// `consent.page_url`: `str(512)`.
pub const PAGE_URL_LEN_MAX: usize = 512;
/// `buyer.time_zone`: `str(64)`; the longest IANA zone name is about 30 bytes.
pub const TIME_ZONE_LEN_MAX: usize = 64;
/// A territory rule's `region`: `str(8)` (state or region codes such as `CO`, `NSW`).
pub const TERRITORY_REGION_LEN_MAX: usize = 8;
/// One value of a `one_of` filter: `str(256)`, as long as a string attribute value can be.
pub const FILTER_VALUE_LEN_MAX: usize = 256;
/// The `name` of a `STATS` counter or latency series: `str(64)`.
pub const STATS_NAME_LEN_MAX: usize = 64;
/// The `detail` of a `TRACE` event: `str(256)`.
pub const TRACE_DETAIL_LEN_MAX: usize = 256;

/// The largest `margin_bps` (100 %), and the largest magnitude of a campaign's `adjust_bps`.
pub const BASIS_POINTS_MAX: u16 = 10_000;
/// `window.close_minute` is at most this many minutes after local midnight.
pub const MINUTES_PER_DAY: u16 = 1_440;
