//! Pre-ping checks: what a lead must pass before any buyer sees it (the lead view's postal code,
//! required attributes and absence of contact data, codes 301-303 and 309), the post's contact
//! record and consent (503, 504), and the contact hashes the duplicate checks key on.
//!
//! # Order of the checks in [`check_view`]
//!
//! 1. `PII_IN_PING` (309): an attribute key names contact data. First, because it is a breach
//!    the seller must hear about even when the lead has other faults: answering 301 instead
//!    would let the seller fix the postal code and keep leaking contact data.
//! 2. `UNKNOWN_POSTAL_CODE` (301).
//! 3. `MISSING_REQUIRED_ATTRIBUTE` (302), then `ATTRIBUTE_KIND_MISMATCH` (303).
//!
//! The order is fixed, so the same lead always gets the same code. Checks that need the book
//! (unknown vertical 300, vertical not allowed 305, seller paused 306, deadline 307) and the
//! duplicate check (304, in `dedupe`) are the engine's, around this one.
//!
//! # Postal codes
//!
//! A US code is a five-digit ZIP or a ZIP+4 (`NNNNN-NNNN`), normalized to its five digits (the
//! territory index and the ZIP table know ZIPs, not ZIP+4 delivery routes), and must be in the
//! ZIP table. Any other form (`80331 1234`, `803311234`, four digits) is `UNKNOWN_POSTAL_CODE`:
//! guessing what a malformed code meant would put leads in the wrong territory. US territories
//! with their own ISO codes (`PR`, `GU`, `VI`, ...) count as other countries.
//!
//! Codes of other countries are accepted as given: we have no tables for them. The key is the
//! code byte for byte; the codec has already restricted it to upper-case letters, digits, space
//! and `-`, so there is no case to fold. Nothing is trimmed or respaced either, so `SW1A 1AA`
//! and `SW1A1AA` are different keys: a buyer's territory rules must spell codes the way sellers
//! send them.
//!
//! # Contact hashes
//!
//! SHA-256 of the phone as given (checked E.164, leading `+` included) and of the email trimmed
//! of surrounding white space and lower-cased, as the spec's "Contact hashes" says, so that a
//! seller's `PING` hashes and the hashes the exchange computes from the `POST` agree. SHA-256
//! is implemented here from FIPS 180-4 (the private `sha256` module) until the crate depends
//! on `sha2`.

#![deny(
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::arithmetic_side_effects
)]

use std::cmp::Ordering;
use std::fmt;
use std::hash::Hasher;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::filters::{DefinitionError, RawAttributes, wire_kind};
use super::types::TimeUs;
pub use crate::limits::CONSENT_CLOCK_SKEW_MAX_US;
use crate::limits::{ATTRIBUTES_MAX, POSTAL_CODE_LEN_MAX};
use crate::protocol::wire::is_postal_code;
use crate::protocol::{
    AttributeKind, Consent, Contact, ErrorCode, Hash32, LeadView, RequiredAttribute, Symbol,
};

/// Digits after the `+` of an E.164 number. 15 is E.164's own maximum (country code
/// included). 8 is below every full number of the markets lead generation serves (US and
/// Canada 11 digits, the UK 12, Germany 10 to 13, the smallest European countries 10 or more);
/// only a few island numbering plans (Niue, Saint Helena) have shorter ones, and a shorter
/// string is far more often a number missing its country code.
pub const E164_DIGITS_MIN: usize = 8;
/// See [`E164_DIGITS_MIN`].
pub const E164_DIGITS_MAX: usize = 15;

/// Attribute keys that name contact data (`PII_IN_PING`, 309): the spec's list (`name`,
/// `first_name`, `last_name`, `phone`, `email`, `street`, `address`) and the common spellings
/// sellers' forms use for the same fields. A key also matches with a number at the end
/// (`phone2`, `address_1`): numbered fields hold the same data.
pub const CONTACT_DATA_KEYS: [&str; 16] = [
    "name",
    "first_name",
    "last_name",
    "full_name",
    "contact_name",
    "customer_name",
    "phone",
    "phone_number",
    "email",
    "email_address",
    "street",
    "street_address",
    "address",
    "address1",
    "address2",
    "address_line",
];

/// Words that name contact data at the end of a longer key too, after a `_`: `home_phone`,
/// `contact_email`, `mailing_address`. `name` is not among them: `utility_name` and
/// `insurer_name` are ordinary attributes. This rule is ours, not the spec's, so a bool value
/// is exempt from it: a bool cannot hold contact data, and `has_email` or `valid_phone` are
/// flags buyers price on.
pub const CONTACT_DATA_SUFFIXES: [&str; 9] = [
    "first_name",
    "last_name",
    "full_name",
    "phone",
    "phone_number",
    "email",
    "street",
    "address",
    "address_line",
];

/// Whether an attribute key (with its value's kind) names contact data: the key, less a
/// trailing number (`phone2`, `address_1`), is one of [`CONTACT_DATA_KEYS`], or, unless the
/// value is a bool, ends with `_` and one of [`CONTACT_DATA_SUFFIXES`].
pub fn names_contact_data(key: &str, kind: AttributeKind) -> bool {
    key_names_contact_data(key.as_bytes(), kind == AttributeKind::Bool)
}

/// Which bytes end a word of [`CONTACT_DATA_KEYS`] or [`CONTACT_DATA_SUFFIXES`], built from
/// the lists at compile time: most keys end in another byte (`roof`, `credit_score` does not,
/// `utility`) and are cleared by one table load instead of 25 comparisons. Indexing and
/// arithmetic here run in the compiler: a mistake fails the build, never a request.
#[allow(clippy::indexing_slicing, clippy::arithmetic_side_effects)]
const CONTACT_WORD_LAST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < CONTACT_DATA_KEYS.len() {
        if let Some(&last) = CONTACT_DATA_KEYS[i].as_bytes().last() {
            table[last as usize] = true;
        }
        i += 1;
    }
    let mut i = 0;
    while i < CONTACT_DATA_SUFFIXES.len() {
        if let Some(&last) = CONTACT_DATA_SUFFIXES[i].as_bytes().last() {
            table[last as usize] = true;
        }
        i += 1;
    }
    table
};

/// [`names_contact_data`] on key bytes, as the attribute walk has them.
#[inline]
fn key_names_contact_data(key: &[u8], is_bool: bool) -> bool {
    let mut stem = key;
    while let [rest @ .., b'0'..=b'9'] = stem {
        stem = rest;
    }
    while let [rest @ .., b'_'] = stem {
        stem = rest;
    }
    let Some(&last) = stem.last() else {
        return false;
    };
    if !CONTACT_WORD_LAST_BYTES
        .get(usize::from(last))
        .copied()
        .unwrap_or(true)
    {
        return false;
    }
    if CONTACT_DATA_KEYS
        .iter()
        .any(|word| stem.len() == word.len() && ends_with(stem, word.as_bytes()))
    {
        return true;
    }
    !is_bool
        && CONTACT_DATA_SUFFIXES.iter().any(|word| {
            let word = word.as_bytes();
            stem.len() > word.len()
                && ends_with(stem, word)
                && stem
                    .len()
                    .checked_sub(word.len())
                    .and_then(|head| head.checked_sub(1))
                    .and_then(|at| stem.get(at))
                    == Some(&b'_')
        })
}

/// Whether `text` ends with `word`, compared from the end: inline, and most words differ in
/// their last byte, so a mismatch costs one comparison rather than a call to `memcmp`.
#[inline]
fn ends_with(text: &[u8], word: &[u8]) -> bool {
    text.len() >= word.len()
        && text
            .iter()
            .rev()
            .zip(word.iter().rev())
            .all(|(a, b)| a == b)
}

/// A normalized postal code, inline: up to [`POSTAL_CODE_LEN_MAX`] (16) bytes, padded with
/// zeros. Postal codes never contain a zero byte (the codec allows `A`-`Z`, `0`-`9`, space and
/// `-`), so the padding marks the end and the key needs no length field: 16 bytes, `Copy`,
/// compared and hashed as one array.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PostalCodeKey([u8; POSTAL_CODE_LEN_MAX]);

const _: () = assert!(std::mem::size_of::<PostalCodeKey>() <= 16);

impl PostalCodeKey {
    /// The key of `code` as given, if it is a valid `postal_code` (non-empty, at most 16 bytes
    /// of `A`-`Z`, `0`-`9`, space and `-`).
    pub fn new(code: &str) -> Option<Self> {
        let bytes = code.as_bytes();
        if bytes.len() > POSTAL_CODE_LEN_MAX || !is_postal_code(bytes) {
            return None;
        }
        let mut key = [0u8; POSTAL_CODE_LEN_MAX];
        for (slot, byte) in key.iter_mut().zip(bytes) {
            *slot = *byte;
        }
        Some(Self(key))
    }

    pub fn len(&self) -> usize {
        self.0
            .iter()
            .position(|&byte| byte == 0)
            .unwrap_or(POSTAL_CODE_LEN_MAX)
    }

    /// Never true for a constructed key; here because `len` is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.get(..self.len()).unwrap_or(&[])
    }

    pub fn as_str(&self) -> &str {
        // ASCII by construction; the fallback only keeps this panic-free.
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl fmt::Debug for PostalCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostalCodeKey({})", self.as_str())
    }
}

impl fmt::Display for PostalCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for PostalCodeKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for PostalCodeKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Self::new(&text).ok_or_else(|| de::Error::custom("not a postal code"))
    }
}

/// The five-digit ZIP of a US postal code written `NNNNN` or `NNNNN-NNNN`, or `None` for any
/// other form. Whether the ZIP exists is the caller's check (the ZIP table).
pub fn normalize_us_zip(code: &str) -> Option<PostalCodeKey> {
    let zip = match code.as_bytes() {
        zip @ [_, _, _, _, _] => zip,
        [zip @ .., b'-', _, _, _, _] if zip.len() == 5 => {
            let plus4 = code.as_bytes().get(6..)?;
            if !plus4.iter().all(u8::is_ascii_digit) {
                return None;
            }
            zip
        }
        _ => return None,
    };
    if !zip.iter().all(u8::is_ascii_digit) {
        return None;
    }
    PostalCodeKey::new(std::str::from_utf8(zip).ok()?)
}

/// A vertical's required attributes, sorted by key for one merge walk with the lead's map.
///
/// Serde writes and reads the spec's `required` list; reading compiles it again, so a
/// snapshot cannot hold rules that `compile` refuses.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(
    into = "Vec<RequiredAttribute<'static>>",
    try_from = "Vec<RequiredAttribute<'static>>"
)]
pub struct VerticalRules {
    required: Box<[(Symbol<'static>, AttributeKind)]>,
}

impl VerticalRules {
    /// Checks and compiles `VERTICAL_PUT.required`. `INVALID_DEFINITION` (702) for a key listed
    /// twice, a key that names contact data (every lead would then be refused with 309), or
    /// more keys than a lead can carry (`ATTRIBUTES_MAX`).
    pub fn compile(required: &[RequiredAttribute<'_>]) -> Result<Self, DefinitionError> {
        if required.len() > ATTRIBUTES_MAX {
            return Err(DefinitionError::invalid(format!(
                "{} required attributes, more than the {ATTRIBUTES_MAX} a lead can carry",
                required.len()
            )));
        }
        let mut rules: Vec<(Symbol<'static>, AttributeKind)> = Vec::with_capacity(required.len());
        for attribute in required {
            if names_contact_data(attribute.key.as_str(), attribute.kind) {
                return Err(DefinitionError::invalid(format!(
                    "required attribute {} names contact data, which a ping may not carry",
                    attribute.key
                )));
            }
            rules.push((attribute.key.clone().into_owned(), attribute.kind));
        }
        rules.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let repeated = rules.windows(2).find_map(|pair| match pair {
            [a, b] if a.0 == b.0 => Some(&a.0),
            _ => None,
        });
        if let Some(key) = repeated {
            return Err(DefinitionError::invalid(format!(
                "required attribute {key} is listed twice"
            )));
        }
        Ok(Self {
            required: rules.into_boxed_slice(),
        })
    }

    /// The required keys and kinds, sorted by key.
    pub fn required(&self) -> impl Iterator<Item = (&str, AttributeKind)> + '_ {
        self.required
            .iter()
            .map(|(key, kind)| (key.as_str(), *kind))
    }

    /// Feeds the rules to `hasher` in key order, with fixed-width lengths and the spec's kind
    /// numbers, so equal rules digest equally whatever order the definition listed them in.
    pub fn digest_into(&self, hasher: &mut impl Hasher) {
        hasher.write_u64(self.required.len() as u64);
        for (key, kind) in self.required.iter() {
            hasher.write_u64(key.len() as u64);
            hasher.write(key.as_bytes());
            hasher.write_u8(kind_number(*kind));
        }
    }
}

/// The spec's number of an attribute kind.
fn kind_number(kind: AttributeKind) -> u8 {
    match kind {
        AttributeKind::Integer => 1,
        AttributeKind::Decimal => 2,
        AttributeKind::String => 3,
        AttributeKind::Bool => 4,
        AttributeKind::Enum => 5,
    }
}

impl From<VerticalRules> for Vec<RequiredAttribute<'static>> {
    fn from(rules: VerticalRules) -> Self {
        rules
            .required
            .into_vec()
            .into_iter()
            .map(|(key, kind)| RequiredAttribute { key, kind })
            .collect()
    }
}

impl TryFrom<Vec<RequiredAttribute<'static>>> for VerticalRules {
    type Error = DefinitionError;

    fn try_from(required: Vec<RequiredAttribute<'static>>) -> Result<Self, DefinitionError> {
        Self::compile(&required)
    }
}

/// Checks a lead view against its vertical's rules and returns the postal code key the
/// territory index should use. `known_us_zip` says whether a five-digit ZIP is in the table.
///
/// Codes, in this order (see the module docs for why): `PII_IN_PING` (309),
/// `UNKNOWN_POSTAL_CODE` (301), `MISSING_REQUIRED_ATTRIBUTE` (302), `ATTRIBUTE_KIND_MISMATCH`
/// (303). One walk over the attributes and the sorted rules; no allocation.
pub fn check_view(
    rules: &VerticalRules,
    view: &LeadView<'_>,
    known_us_zip: impl Fn(&str) -> bool,
) -> Result<PostalCodeKey, ErrorCode> {
    let mut required = rules.required.iter().peekable();
    let mut missing = false;
    let mut mismatch = false;
    // The raw walk (see `filters::RawAttributes`): keys and kinds only, no value decoded.
    for attribute in RawAttributes::new(&view.attributes) {
        if key_names_contact_data(attribute.key, attribute.kind == wire_kind::BOOL) {
            return Err(ErrorCode::PII_IN_PING);
        }
        while let Some((key, required_kind)) = required.peek() {
            match key.as_bytes().cmp(attribute.key) {
                // A required key sorts before this attribute: the lead skipped it.
                Ordering::Less => {
                    missing = true;
                    required.next();
                }
                Ordering::Equal => {
                    mismatch |= kind_number(*required_kind) != attribute.kind;
                    required.next();
                    break;
                }
                Ordering::Greater => break,
            }
        }
    }
    missing |= required.peek().is_some();

    let postal = if view.country.as_bytes() == b"US" {
        normalize_us_zip(view.postal_code.as_str())
            .filter(|zip| known_us_zip(zip.as_str()))
            .ok_or(ErrorCode::UNKNOWN_POSTAL_CODE)?
    } else {
        PostalCodeKey::new(view.postal_code.as_str()).ok_or(ErrorCode::UNKNOWN_POSTAL_CODE)?
    };
    if missing {
        return Err(ErrorCode::MISSING_REQUIRED_ATTRIBUTE);
    }
    if mismatch {
        return Err(ErrorCode::ATTRIBUTE_KIND_MISMATCH);
    }
    Ok(postal)
}

/// Checks a post's contact record: `INVALID_CONTACT` (503) unless the phone is E.164
/// ([`is_e164`]), the email is plausible ([`is_email`]) and both names are non-empty after
/// trimming. Street, city and region are not checked: buyers of some verticals do not need
/// them, and a street is not something we can validate.
pub fn check_contact(contact: &Contact<'_>) -> Result<(), ErrorCode> {
    let valid = !contact.first_name.trim().is_empty()
        && !contact.last_name.trim().is_empty()
        && is_e164(&contact.phone)
        && is_email(&contact.email);
    if valid {
        Ok(())
    } else {
        Err(ErrorCode::INVALID_CONTACT)
    }
}

/// E.164 as the spec writes it: `+`, then [`E164_DIGITS_MIN`]..=[`E164_DIGITS_MAX`] ASCII
/// digits, the first (the country code's) not 0. No spaces, dashes or white space: the hash of
/// the phone is taken from these exact bytes, so a lenient check here would let two spellings
/// of one number hash apart.
pub fn is_e164(phone: &str) -> bool {
    let Some(digits) = phone.as_bytes().strip_prefix(b"+") else {
        return false;
    };
    (E164_DIGITS_MIN..=E164_DIGITS_MAX).contains(&digits.len())
        && digits.iter().all(u8::is_ascii_digit)
        && digits.first() != Some(&b'0')
}

/// A plausible email, after trimming surrounding white space (the hash ignores it too): exactly
/// one `@`, a non-empty local part, a domain with a dot and no empty label (`a@.com`,
/// `a@example.`, `a@example..com` cannot be delivered to), and no white space inside. Not RFC
/// 5322: a stricter check would refuse addresses that work, and the buyer's own validation
/// answers `REJECT_INVALID_CONTACT` (621) for the rest.
pub fn is_email(email: &str) -> bool {
    let email = email.trim();
    if email.chars().any(char::is_whitespace) {
        return false;
    }
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

/// Checks a post's consent evidence: `MISSING_CONSENT` (504) for an empty (or all white space)
/// certificate id, a `consented_at` of 0, or a `consented_at` more than
/// [`CONSENT_CLOCK_SKEW_MAX_US`] after `now`. An old consent is not refused here: how long
/// consent lasts is a matter of law and of each buyer's policy, not of the exchange's format.
pub fn check_consent(consent: &Consent<'_>, now: TimeUs) -> Result<(), ErrorCode> {
    let valid = !consent.certificate_id.trim().is_empty()
        && consent.consented_at != 0
        && consent.consented_at <= now.saturating_add(CONSENT_CLOCK_SKEW_MAX_US);
    if valid {
        Ok(())
    } else {
        Err(ErrorCode::MISSING_CONSENT)
    }
}

/// The contact hashes of a checked contact record: `(phone_hash, email_hash)`, computed as the
/// spec's "Contact hashes" says (see [`phone_hash`] and [`email_hash`]). Call it after
/// [`check_contact`]: it hashes whatever it is given.
pub fn contact_hashes(contact: &Contact<'_>) -> (Hash32, Hash32) {
    (phone_hash(&contact.phone), email_hash(&contact.email))
}

/// SHA-256 of the phone's bytes as given: E.164 with its leading `+`, e.g. `+13035550142`.
/// Nothing is normalized: [`check_contact`] accepts only the one spelling.
pub fn phone_hash(phone: &str) -> Hash32 {
    Hash32(sha256::digest(phone.as_bytes()))
}

/// SHA-256 of the email with surrounding white space removed and lower-cased, e.g.
/// `jane.doe@example.com`. An ASCII address (nearly all) is lower-cased while it streams into
/// the hash, without allocating. An address with non-ASCII characters is lower-cased with
/// Unicode's default case mapping (`str::to_lowercase`, the same as JavaScript's
/// `toLowerCase` and Python's `lower`), which allocates once.
pub fn email_hash(email: &str) -> Hash32 {
    let email = email.trim();
    if !email.is_ascii() {
        return Hash32(sha256::digest(email.to_lowercase().as_bytes()));
    }
    let mut hasher = sha256::Sha256::new();
    let mut buffer = [0u8; 64];
    for chunk in email.as_bytes().chunks(buffer.len()) {
        for (out, byte) in buffer.iter_mut().zip(chunk) {
            *out = byte.to_ascii_lowercase();
        }
        hasher.update(buffer.get(..chunk.len()).unwrap_or(&[]));
    }
    Hash32(hasher.finish())
}

/// SHA-256 for the contact hashes, from the `sha2` crate (audited, and using the CPU's SHA
/// instructions where it has them), behind the two calls the hashing above needs.
mod sha256 {
    use sha2::Digest;

    /// SHA-256 of one message.
    pub fn digest(message: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(message).into()
    }

    /// SHA-256 fed in pieces.
    pub struct Sha256(sha2::Sha256);

    impl Sha256 {
        pub fn new() -> Self {
            Self(sha2::Sha256::new())
        }

        pub fn update(&mut self, piece: &[u8]) {
            self.0.update(piece);
        }

        pub fn finish(self) -> [u8; 32] {
            self.0.finalize().into()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn fips_180_vectors_and_streaming_agree() {
            let abc = digest(b"abc");
            assert_eq!(
                abc[..4],
                [0xba, 0x78, 0x16, 0xbf],
                "SHA-256(\"abc\") starts ba7816bf"
            );
            let message: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
            let mut hasher = Sha256::new();
            for piece in message.chunks(63) {
                hasher.update(piece);
            }
            assert_eq!(hasher.finish(), digest(&message));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::borrow::Cow;
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::protocol::{Attributes, Country, PostalCode};

    /// A tiny ZIP table: downtown Denver and Boulder.
    fn known(zip: &str) -> bool {
        matches!(zip, "80202" | "80301" | "80302")
    }

    fn rules(required: &[(&str, AttributeKind)]) -> VerticalRules {
        let required: Vec<RequiredAttribute<'static>> = required
            .iter()
            .map(|(key, kind)| RequiredAttribute {
                key: Symbol::new((*key).to_owned()).unwrap(),
                kind: *kind,
            })
            .collect();
        VerticalRules::compile(&required).unwrap()
    }

    fn solar_rules() -> VerticalRules {
        rules(&[
            ("monthly_bill", AttributeKind::Integer),
            ("homeowner", AttributeKind::Bool),
        ])
    }

    fn view(
        country: &str,
        postal_code: &str,
        attributes: Attributes<'static>,
    ) -> LeadView<'static> {
        LeadView {
            vertical: Symbol::new("solar").unwrap(),
            country: Country::new(country).unwrap(),
            postal_code: PostalCode::new(postal_code.to_owned()).unwrap(),
            attributes,
        }
    }

    fn solar_attributes() -> Attributes<'static> {
        Attributes::builder()
            .integer("monthly_bill", 180)
            .bool("homeowner", true)
            .enum_value("roof", "asphalt")
            .string("utility_name", "Xcel Energy")
            .build()
            .unwrap()
    }

    fn check(country: &str, postal_code: &str) -> Result<PostalCodeKey, ErrorCode> {
        check_view(
            &solar_rules(),
            &view(country, postal_code, solar_attributes()),
            known,
        )
    }

    #[test]
    fn us_zip_and_zip_plus_4() {
        assert_eq!(check("US", "80202").unwrap().as_str(), "80202");
        assert_eq!(check("US", "80202-1234").unwrap().as_str(), "80202");
        for bad in [
            "8020",
            "802021",
            "80202-123",
            "80202-12345",
            "802021234",
            "80202 1234",
        ] {
            assert_eq!(
                check("US", bad),
                Err(ErrorCode::UNKNOWN_POSTAL_CODE),
                "{bad}"
            );
        }
        assert_eq!(check("US", "8020A"), Err(ErrorCode::UNKNOWN_POSTAL_CODE));
        assert_eq!(
            check("US", "80202-12A4"),
            Err(ErrorCode::UNKNOWN_POSTAL_CODE)
        );
        // Well formed but not in the table.
        assert_eq!(check("US", "99999"), Err(ErrorCode::UNKNOWN_POSTAL_CODE));
        assert_eq!(
            check("US", "99999-0000"),
            Err(ErrorCode::UNKNOWN_POSTAL_CODE)
        );
    }

    #[test]
    fn other_countries_are_taken_as_given() {
        // Munich: the same digits as a ZIP but no US table applies.
        assert_eq!(check("DE", "80331").unwrap().as_str(), "80331");
        assert_eq!(check("GB", "SW1A 1AA").unwrap().as_str(), "SW1A 1AA");
        assert_eq!(check("CA", "K1A 0B1").unwrap().as_str(), "K1A 0B1");
        assert_eq!(check("PR", "00901").unwrap().as_str(), "00901");
        assert_eq!(check("NL", "1234 AB").unwrap().as_str(), "1234 AB");
    }

    #[test]
    fn postal_code_key_is_inline() {
        assert_eq!(std::mem::size_of::<PostalCodeKey>(), 16);
        let key = PostalCodeKey::new("ABCDEFGHIJKLMNOP").unwrap();
        assert_eq!(key.len(), 16);
        assert_eq!(key.as_str(), "ABCDEFGHIJKLMNOP");
        assert!(PostalCodeKey::new("").is_none());
        assert!(PostalCodeKey::new("sw1a").is_none());
        assert!(PostalCodeKey::new("ABCDEFGHIJKLMNOPQ").is_none());
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, r#""ABCDEFGHIJKLMNOP""#);
        assert_eq!(serde_json::from_str::<PostalCodeKey>(&json).unwrap(), key);
        assert!(serde_json::from_str::<PostalCodeKey>(r#""a""#).is_err());
    }

    #[test]
    fn required_attributes() {
        let lead = |attributes| view("US", "80202", attributes);
        let rules = solar_rules();
        let missing_bill = Attributes::builder()
            .bool("homeowner", true)
            .build()
            .unwrap();
        assert_eq!(
            check_view(&rules, &lead(missing_bill), known),
            Err(ErrorCode::MISSING_REQUIRED_ATTRIBUTE)
        );
        let missing_last = Attributes::builder()
            .integer("monthly_bill", 180)
            .build()
            .unwrap();
        assert_eq!(
            check_view(&rules, &lead(missing_last), known),
            Err(ErrorCode::MISSING_REQUIRED_ATTRIBUTE)
        );
        assert_eq!(
            check_view(&rules, &lead(Attributes::new()), known),
            Err(ErrorCode::MISSING_REQUIRED_ATTRIBUTE)
        );
        // $180.50 sent as a decimal where the vertical wants an integer.
        let decimal_bill = Attributes::builder()
            .decimal("monthly_bill", 18050, 2)
            .bool("homeowner", true)
            .build()
            .unwrap();
        assert_eq!(
            check_view(&rules, &lead(decimal_bill), known),
            Err(ErrorCode::ATTRIBUTE_KIND_MISMATCH)
        );
        // Missing wins over mismatch; both lose to the postal code.
        let both = Attributes::builder()
            .string("monthly_bill", "180")
            .build()
            .unwrap();
        assert_eq!(
            check_view(&rules, &lead(both.clone()), known),
            Err(ErrorCode::MISSING_REQUIRED_ATTRIBUTE)
        );
        assert_eq!(
            check_view(&rules, &view("US", "99999", both), known),
            Err(ErrorCode::UNKNOWN_POSTAL_CODE)
        );
        // Extra attributes are fine, and no rules accept anything.
        assert!(check_view(&rules, &lead(solar_attributes()), known).is_ok());
        assert!(check_view(&VerticalRules::default(), &lead(Attributes::new()), known).is_ok());
    }

    #[test]
    fn contact_data_in_a_ping() {
        let with = |key: &str, value: &str| {
            let attributes = Attributes::builder()
                .integer("monthly_bill", 180)
                .bool("homeowner", true)
                .string(key, value)
                .build()
                .unwrap();
            check_view(&solar_rules(), &view("US", "80202", attributes), known)
        };
        for key in [
            "name",
            "first_name",
            "last_name",
            "phone",
            "email",
            "street",
            "address",
            "address1",
            "address2",
            "address_2",
            "phone2",
            "home_phone",
            "cell_phone_number",
            "contact_email",
            "mailing_address",
            "street_address",
            "owner_first_name",
        ] {
            assert_eq!(with(key, "x"), Err(ErrorCode::PII_IN_PING), "{key}");
        }
        for key in [
            "utility_name",
            "phone_type",
            "emailed",
            "streetlight",
            "named",
            "nickname",
        ] {
            assert!(with(key, "x").is_ok(), "{key}");
        }
        // PII is reported before a bad postal code.
        let leaky = Attributes::builder()
            .string("email", "jane@example.com")
            .build()
            .unwrap();
        assert_eq!(
            check_view(&solar_rules(), &view("US", "99999", leaky), known),
            Err(ErrorCode::PII_IN_PING)
        );
    }

    #[test]
    fn bool_flags_are_not_contact_data_but_spec_keys_always_are() {
        assert!(!names_contact_data("has_email", AttributeKind::Bool));
        assert!(!names_contact_data("valid_phone", AttributeKind::Bool));
        assert!(names_contact_data("has_email", AttributeKind::String));
        assert!(names_contact_data("valid_phone", AttributeKind::Integer));
        assert!(names_contact_data("phone", AttributeKind::Bool));
        assert!(names_contact_data("home_phone", AttributeKind::Enum));
        assert!(!names_contact_data("123", AttributeKind::Integer));
        assert!(names_contact_data("_phone", AttributeKind::String));
        assert!(names_contact_data("email_", AttributeKind::String));
    }

    #[test]
    fn vertical_rules_definition_errors() {
        let required = |pairs: &[(&str, AttributeKind)]| -> Vec<RequiredAttribute<'static>> {
            pairs
                .iter()
                .map(|(key, kind)| RequiredAttribute {
                    key: Symbol::new((*key).to_owned()).unwrap(),
                    kind: *kind,
                })
                .collect()
        };
        let twice = required(&[
            ("monthly_bill", AttributeKind::Integer),
            ("homeowner", AttributeKind::Bool),
            ("monthly_bill", AttributeKind::Decimal),
        ]);
        let error = VerticalRules::compile(&twice).unwrap_err();
        assert_eq!(error.code, ErrorCode::INVALID_DEFINITION);
        assert!(error.message.contains("monthly_bill"), "{error}");
        let pii = required(&[("email", AttributeKind::String)]);
        assert_eq!(
            VerticalRules::compile(&pii).unwrap_err().code,
            ErrorCode::INVALID_DEFINITION
        );
        // Sorted, whatever the listed order; serde round-trips through compile.
        let rules = VerticalRules::compile(&required(&[
            ("roof", AttributeKind::Enum),
            ("credit_score", AttributeKind::Integer),
        ]))
        .unwrap();
        let keys: Vec<&str> = rules.required().map(|(key, _)| key).collect();
        assert_eq!(keys, ["credit_score", "roof"]);
        let digest = |rules: &VerticalRules| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            rules.digest_into(&mut hasher);
            hasher.finish()
        };
        let reordered = VerticalRules::compile(&required(&[
            ("credit_score", AttributeKind::Integer),
            ("roof", AttributeKind::Enum),
        ]))
        .unwrap();
        assert_eq!(reordered, rules);
        assert_eq!(digest(&reordered), digest(&rules));
        let other_kind = VerticalRules::compile(&required(&[
            ("credit_score", AttributeKind::Decimal),
            ("roof", AttributeKind::Enum),
        ]))
        .unwrap();
        assert_ne!(digest(&other_kind), digest(&rules));
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(serde_json::from_str::<VerticalRules>(&json).unwrap(), rules);
        let twice_json = r#"[{"key":"a","kind":"integer"},{"key":"a","kind":"bool"}]"#;
        assert!(serde_json::from_str::<VerticalRules>(twice_json).is_err());
    }

    /// Nanoseconds per `check_view` of a 20-attribute lead and per contact-hash pair. Run:
    /// `cargo test --release --lib engine::preping::tests::measure_checks -- --ignored
    /// --nocapture`.
    #[test]
    #[ignore = "a measurement; run it in release mode"]
    fn measure_checks() {
        use std::hint::black_box;
        use std::time::Instant;
        let attributes = (0..18)
            .fold(Attributes::builder(), |b, i| {
                b.integer(format!("extra_{i:02}"), i)
            })
            .integer("monthly_bill", 180)
            .bool("homeowner", true)
            .build()
            .unwrap();
        let lead = view("US", "80202-1234", attributes);
        let rules = solar_rules();
        let rounds = 1_000_000u32;
        let start = Instant::now();
        for _ in 0..rounds {
            assert!(check_view(black_box(&rules), black_box(&lead), known).is_ok());
        }
        let ns = start.elapsed().as_nanos() / u128::from(rounds);
        eprintln!("check_view, 20 attributes, 2 required: {ns} ns");
        let contact = jane();
        let rounds = 100_000u32;
        let start = Instant::now();
        for _ in 0..rounds {
            black_box(contact_hashes(black_box(&contact)));
        }
        let ns = start.elapsed().as_nanos() / u128::from(rounds);
        eprintln!("contact_hashes (software SHA-256, two messages): {ns} ns");
    }

    fn jane() -> Contact<'static> {
        Contact {
            first_name: Cow::Borrowed("Jane"),
            last_name: Cow::Borrowed("Doe"),
            phone: Cow::Borrowed("+13035550142"),
            email: Cow::Borrowed("jane.doe@example.com"),
            street: Cow::Borrowed("1600 Glenarm Pl"),
            city: Cow::Borrowed("Denver"),
            region: Cow::Borrowed("CO"),
        }
    }

    #[test]
    fn contact_records() {
        assert_eq!(check_contact(&jane()), Ok(()));
        // A German mobile and a surrounding-space email are fine too.
        let mut contact = jane();
        contact.phone = Cow::Borrowed("+4915112345678");
        contact.email = Cow::Borrowed("  Jane.Doe@Example.com ");
        assert_eq!(check_contact(&contact), Ok(()));

        let invalid = |edit: &dyn Fn(&mut Contact<'static>)| {
            let mut contact = jane();
            edit(&mut contact);
            check_contact(&contact)
        };
        for phone in [
            "3035550142",
            "+03035550142",
            "+1234567",
            "+1234567890123456",
            "+1 303 555 0142",
            "+1-303-555-0142",
            "+1303555014a",
            "+",
            "",
        ] {
            assert_eq!(
                invalid(&|c| c.phone = Cow::Owned(phone.to_owned())),
                Err(ErrorCode::INVALID_CONTACT),
                "{phone}"
            );
        }
        assert_eq!(invalid(&|c| c.phone = Cow::Borrowed("+12345678")), Ok(()));
        assert_eq!(
            invalid(&|c| c.phone = Cow::Borrowed("+123456789012345")),
            Ok(())
        );
        for email in [
            "jane.doe.example.com",
            "jane@doe@example.com",
            "@example.com",
            "jane@localhost",
            "jane doe@example.com",
            "jane@.example.com",
            "jane@example.",
            "jane@example..com",
            "",
        ] {
            assert_eq!(
                invalid(&|c| c.email = Cow::Owned(email.to_owned())),
                Err(ErrorCode::INVALID_CONTACT),
                "{email}"
            );
        }
        assert_eq!(
            invalid(&|c| c.first_name = Cow::Borrowed(" \t")),
            Err(ErrorCode::INVALID_CONTACT)
        );
        assert_eq!(
            invalid(&|c| c.last_name = Cow::Borrowed("")),
            Err(ErrorCode::INVALID_CONTACT)
        );
        // Street, city and region are not checked.
        assert_eq!(invalid(&|c| c.street = Cow::Borrowed("")), Ok(()));
    }

    #[test]
    fn consent_evidence() {
        let now: TimeUs = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z
        let consent = |certificate_id: &'static str, consented_at: TimeUs| Consent {
            certificate_id: Cow::Borrowed(certificate_id),
            text_version: Cow::Borrowed("tcpa-2025-03"),
            consented_at,
            ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            user_agent: Cow::Borrowed("Mozilla/5.0"),
            page_url: Cow::Borrowed("https://solar.example.com/quote"),
        };
        let certificate = "https://cert.trustedform.com/2f8a1c3e9b7d";
        let minute = 60_000_000;
        assert_eq!(
            check_consent(&consent(certificate, now - 3 * minute), now),
            Ok(())
        );
        assert_eq!(
            check_consent(&consent(certificate, now + 4 * minute), now),
            Ok(())
        );
        assert_eq!(
            check_consent(&consent(certificate, now + CONSENT_CLOCK_SKEW_MAX_US), now),
            Ok(())
        );
        for (id, at) in [
            ("", now),
            ("   ", now),
            (certificate, 0),
            (certificate, now + CONSENT_CLOCK_SKEW_MAX_US + 1),
            (certificate, now + 10 * minute),
        ] {
            assert_eq!(
                check_consent(&consent(id, at), now),
                Err(ErrorCode::MISSING_CONSENT)
            );
        }
        // A clock near the end of time does not overflow.
        assert_eq!(
            check_consent(&consent(certificate, u64::MAX), u64::MAX),
            Ok(())
        );
    }

    #[test]
    fn contact_hashes_follow_the_spec() {
        let (phone, email) = contact_hashes(&jane());
        assert_eq!(
            phone.to_string(),
            "079b138000d8e662dc5bd99fab3ffe5dc4f44763f9bf55baa522d29f8c784f1f"
        );
        assert_eq!(
            email.to_string(),
            "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d"
        );
        // Surrounding white space and case do not change the email hash.
        assert_eq!(email_hash("  Jane.DOE@Example.COM\t"), email);
        // Non-ASCII addresses are lower-cased with Unicode's mapping.
        assert_eq!(
            email_hash("Jürgen.MÜLLER@Example.de").to_string(),
            "2d5c8cc4f4fda3df36ec0b8f5075a3b3ae0b1c1005e78213f53b330f6caeca35"
        );
        // Longer than one block of the streaming buffer.
        let long = format!("{}@example.com", "A".repeat(100));
        assert_eq!(
            email_hash(&long),
            Hash32(sha256::digest(long.to_lowercase().as_bytes()))
        );
    }
}
