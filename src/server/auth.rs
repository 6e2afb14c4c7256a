//! Login secrets: stored only as salted SHA-256 hashes, checked in constant time.
//!
//! Secrets are machine credentials (long random tokens handed to a seller's or buyer's
//! integration), not passwords people choose, so a fast salted hash is the right cost: a login
//! must not take milliseconds of a core that also runs auctions. The stored form is
//! `sha256$<salt hex>$<hash hex>` where hash = SHA-256(salt ‖ secret); it fits the protocol's
//! `str(128)` secret field, so the book and its journal hold it in place of the secret.

use std::sync::Arc;

use dashmap::DashMap;
use sha2::{Digest, Sha256};

use crate::engine::book::{AdminChange, BookDefs};
use crate::protocol::{Role, Status};

/// The prefix of a stored secret hash.
const HASH_SCHEME: &str = "sha256$";
/// Salt length in bytes: 16 random bytes, so equal secrets hash differently.
const SALT_LEN: usize = 16;

/// Hashes `secret` with a fresh random salt into its stored form.
pub fn hash_secret(secret: &str) -> String {
    let mut salt = [0_u8; SALT_LEN];
    // The OS random source failing is an operating fault the daemon cannot work around: a
    // predictable salt would be worse than stopping.
    getrandom::fill(&mut salt).unwrap_or_else(|error| panic!("no OS randomness: {error}"));
    hash_with_salt(secret, &salt)
}

fn hash_with_salt(secret: &str, salt: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(secret.as_bytes());
    format!(
        "{HASH_SCHEME}{}${}",
        hex_lower(salt),
        hex_lower(&hasher.finalize())
    )
}

/// Whether `stored` is already a hash this module made (so it is not hashed twice).
pub fn is_hashed(stored: &str) -> bool {
    parse(stored).is_some()
}

fn parse(stored: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let rest = stored.strip_prefix(HASH_SCHEME)?;
    let (salt, hash) = rest.split_once('$')?;
    let salt = hex_decode(salt)?;
    let hash = hex_decode(hash)?;
    (salt.len() == SALT_LEN && hash.len() == 32).then_some((salt, hash))
}

/// Whether `secret` matches the stored hash. Comparison time does not depend on where the
/// bytes differ.
pub fn verify_secret(stored: &str, secret: &str) -> bool {
    let Some((salt, expected)) = parse(stored) else {
        return false;
    };
    let mut hasher = Sha256::new();
    hasher.update(&salt);
    hasher.update(secret.as_bytes());
    let actual = hasher.finalize();
    let difference = expected
        .iter()
        .zip(actual.iter())
        .fold(0_u8, |acc, (a, b)| acc | (a ^ b));
    difference == 0
}

/// Replaces a plain secret in a seller or buyer definition by its hash, so that neither the
/// book nor the journal ever holds it.
pub fn hash_secrets_in(change: &mut AdminChange) {
    let secret = match change {
        AdminChange::SellerPut(put) => &mut put.seller.secret,
        AdminChange::BuyerPut(put) => &mut put.buyer.secret,
        _ => return,
    };
    if let Some(plain) = secret.as_ref().filter(|s| !is_hashed(s)) {
        *secret = Some(hash_secret(plain).into());
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut out, byte| {
        let _ = write!(out, "{byte:02x}");
        out
    })
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// One principal's login record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub secret_hash: String,
    pub active: bool,
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefusal {
    /// Unknown principal or wrong secret: the same answer for both, so that ids cannot be
    /// probed.
    BadCredentials,
    Paused,
}

/// Every principal that may log in, read by sessions at login and rewritten by the exchange
/// thread after each book change. A concurrent map, so that logins never wait for auctions.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    map: Arc<DashMap<(u8, u64), Credential>>,
}

fn role_key(role: Role) -> u8 {
    match role {
        Role::Seller => 1,
        Role::Buyer => 2,
        Role::Admin => 3,
    }
}

impl Credentials {
    pub fn set(&self, role: Role, id: u64, credential: Credential) {
        self.map.insert((role_key(role), id), credential);
    }

    pub fn check(&self, role: Role, id: u64, secret: &str) -> Result<(), LoginRefusal> {
        let Some(credential) = self.map.get(&(role_key(role), id)) else {
            return Err(LoginRefusal::BadCredentials);
        };
        if !verify_secret(&credential.secret_hash, secret) {
            return Err(LoginRefusal::BadCredentials);
        }
        if !credential.active {
            return Err(LoginRefusal::Paused);
        }
        Ok(())
    }

    /// Rewrites the seller and buyer entries from the book's definitions; admins, which live
    /// in the configuration, stay.
    pub fn sync_book(&self, defs: &BookDefs) {
        let admin = role_key(Role::Admin);
        self.map.retain(|(role, _), _| *role == admin);
        for (id, seller) in &defs.sellers {
            if let Some(hash) = &seller.secret {
                self.set(
                    Role::Seller,
                    *id,
                    Credential {
                        secret_hash: hash.to_string(),
                        active: seller.status == Status::Active,
                    },
                );
            }
        }
        for (id, buyer) in &defs.buyers {
            if let Some(hash) = &buyer.secret {
                self.set(
                    Role::Buyer,
                    *id,
                    Credential {
                        secret_hash: hash.to_string(),
                        active: buyer.status == Status::Active,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_secret_only() {
        let stored = hash_secret("correct horse");
        assert!(stored.len() <= crate::limits::SECRET_LEN_MAX, "{stored}");
        assert!(is_hashed(&stored));
        assert!(verify_secret(&stored, "correct horse"));
        assert!(!verify_secret(&stored, "correct hors"));
        assert!(!verify_secret(&stored, ""));
        assert!(
            !verify_secret("correct horse", "correct horse"),
            "plain text never verifies"
        );
    }

    #[test]
    fn equal_secrets_get_different_salts() {
        assert_ne!(hash_secret("same"), hash_secret("same"));
    }

    #[test]
    fn known_answer() {
        // SHA-256 of 16 zero bytes followed by "abc", computed independently.
        let stored = hash_with_salt("abc", &[0; SALT_LEN]);
        assert!(verify_secret(&stored, "abc"));
        assert!(stored.starts_with("sha256$00000000000000000000000000000000$"));
    }

    #[test]
    fn credentials_refuse_unknown_wrong_and_paused() {
        let credentials = Credentials::default();
        credentials.set(
            Role::Seller,
            1,
            Credential {
                secret_hash: hash_secret("s1"),
                active: true,
            },
        );
        credentials.set(
            Role::Buyer,
            2,
            Credential {
                secret_hash: hash_secret("b2"),
                active: false,
            },
        );
        assert_eq!(credentials.check(Role::Seller, 1, "s1"), Ok(()));
        assert_eq!(
            credentials.check(Role::Buyer, 1, "s1"),
            Err(LoginRefusal::BadCredentials),
            "a seller's id is not a buyer's"
        );
        assert_eq!(
            credentials.check(Role::Seller, 1, "nope"),
            Err(LoginRefusal::BadCredentials)
        );
        assert_eq!(
            credentials.check(Role::Buyer, 2, "b2"),
            Err(LoginRefusal::Paused)
        );
    }
}
