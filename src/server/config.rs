//! The daemon's configuration: a TOML file, or the embedded default.
//!
//! ```toml
//! listen = "127.0.0.1:7400"
//! journal_dir = "pingpost-data"
//! fsync = "interval=2"          # always | interval=<ms> | never
//! currency = "USD"
//! connections_max = 4096
//! in_flight_max = 1024
//! snapshot_every_records = 2000000   # 0: only at a clean shutdown
//!
//! [[admins]]
//! id = 1
//! secret = "change-me"          # or secret_hash = "sha256$…" (what `pingpost hash-secret` prints)
//!
//! [[book]]                       # the book loaded into an empty journal, as admin changes
//! [book.vertical_put]
//! mode = "create"
//! vertical = "solar"
//! required = []
//! tiers = [{ tier = 0, strategy = "highest_bid" }]
//! ```
//!
//! The `book` section is read only when the journal is empty (the first start): after that the
//! journal is the book's source of truth, changed at runtime by admin messages.
//! `pingpost serve --print-default-config` prints the embedded default in this form.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::auth;
use crate::engine::book::AdminChange;
use crate::journal::SyncFault;
pub use crate::journal::SyncPolicy as FsyncPolicy;
use crate::limits::{
    CONNECTIONS_MAX, FRAME_LENGTH_MAX, IN_FLIGHT_MAX, LISTEN_ADDR_DEFAULT,
    OUTBOX_STORED_PER_BUYER_MAX, SESSION_QUEUE_LEN, SNAPSHOT_EVERY_RECORDS_DEFAULT,
};
use crate::protocol::Currency;

/// The journal directory used without configuration, relative to the working directory.
pub const JOURNAL_DIR_DEFAULT: &str = "pingpost-data";

/// An admin login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminEntry {
    pub id: u64,
    /// The secret in plain text (hashed at load).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The secret's stored hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
}

/// The configuration file, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default = "default_journal_dir")]
    pub journal_dir: String,
    #[serde(default = "default_fsync")]
    pub fsync: String,
    #[serde(default = "default_currency")]
    pub currency: String,
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    #[serde(default = "default_in_flight_max")]
    pub in_flight_max: u32,
    /// Frames queued per session before a session that does not read is closed.
    #[serde(default = "default_session_queue_len")]
    pub session_queue_len: usize,
    /// Journal records between two snapshots of the daemon's state; 0 takes one only at a
    /// clean shutdown.
    #[serde(default = "default_snapshot_every_records")]
    pub snapshot_every_records: u64,
    #[serde(default)]
    pub admins: Vec<AdminEntry>,
    #[serde(default)]
    pub book: Vec<AdminChange>,
}

fn default_listen() -> String {
    LISTEN_ADDR_DEFAULT.to_owned()
}
fn default_journal_dir() -> String {
    JOURNAL_DIR_DEFAULT.to_owned()
}
fn default_fsync() -> String {
    "interval=2".to_owned()
}
fn default_currency() -> String {
    "USD".to_owned()
}
fn default_connections_max() -> usize {
    CONNECTIONS_MAX
}
fn default_in_flight_max() -> u32 {
    IN_FLIGHT_MAX
}
fn default_session_queue_len() -> usize {
    SESSION_QUEUE_LEN
}
fn default_snapshot_every_records() -> u64 {
    SNAPSHOT_EVERY_RECORDS_DEFAULT
}

/// The configuration, checked.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub journal_dir: PathBuf,
    pub fsync: FsyncPolicy,
    pub currency: Currency,
    pub connections_max: usize,
    pub in_flight_max: u32,
    pub session_queue_len: usize,
    /// Stored deliveries kept in memory per buyer (`OUTBOX_STORED_PER_BUYER_MAX`).
    pub outbox_stored_per_buyer_max: usize,
    pub frame_length_max: u32,
    /// Journal records between two snapshots; 0: only at a clean shutdown.
    pub snapshot_every_records: u64,
    /// Admin ids and their secrets' hashes.
    pub admins: Vec<(u64, String)>,
    /// Loaded into an empty journal.
    pub book: Vec<AdminChange>,
    /// Fault injection for failure tests: makes the journal's syncs fail as a failing disk
    /// would ([`SyncFault`]). Never read from a configuration file; `None` otherwise.
    pub journal_sync_fault: Option<SyncFault>,
}

impl ConfigFile {
    /// Parses a TOML configuration; the error names the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|error| format!("the configuration is not valid: {error}"))
    }

    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|error| format!("cannot write the configuration: {error}"))
    }

    /// Checks every value and hashes plain secrets.
    pub fn check(self) -> Result<ServerConfig, String> {
        let listen = self.listen.parse().map_err(|_| {
            format!(
                "listen {:?} is not an address like 127.0.0.1:7400",
                self.listen
            )
        })?;
        let fsync = self
            .fsync
            .parse()
            .map_err(|error| format!("fsync: {error}"))?;
        let currency = Currency::new(&self.currency).map_err(|_| {
            format!(
                "currency {:?} is not an ISO 4217 code like USD",
                self.currency
            )
        })?;
        if !(1..=CONNECTIONS_MAX).contains(&self.connections_max) {
            return Err(format!(
                "connections_max {} is not in 1..={CONNECTIONS_MAX}",
                self.connections_max
            ));
        }
        if !(1..=IN_FLIGHT_MAX).contains(&self.in_flight_max) {
            return Err(format!(
                "in_flight_max {} is not in 1..={IN_FLIGHT_MAX}",
                self.in_flight_max
            ));
        }
        if !(1..=SESSION_QUEUE_LEN).contains(&self.session_queue_len) {
            return Err(format!(
                "session_queue_len {} is not in 1..={SESSION_QUEUE_LEN}",
                self.session_queue_len
            ));
        }
        let mut admins = Vec::new();
        for admin in self.admins {
            let hash = match (admin.secret, admin.secret_hash) {
                (Some(secret), None) => auth::hash_secret(&secret),
                (None, Some(hash)) if auth::is_hashed(&hash) => hash,
                (None, Some(_)) => {
                    return Err(format!(
                        "admin {}: secret_hash is not a hash `pingpost hash-secret` made",
                        admin.id
                    ));
                }
                _ => {
                    return Err(format!(
                        "admin {}: give exactly one of secret and secret_hash",
                        admin.id
                    ));
                }
            };
            admins.push((admin.id, hash));
        }
        if admins.is_empty() {
            return Err("the configuration has no [[admins]]: nobody could change the book".into());
        }
        let mut book = self.book;
        for change in &mut book {
            auth::hash_secrets_in(change);
        }
        Ok(ServerConfig {
            listen,
            journal_dir: PathBuf::from(self.journal_dir),
            fsync,
            currency,
            connections_max: self.connections_max,
            in_flight_max: self.in_flight_max,
            session_queue_len: self.session_queue_len,
            outbox_stored_per_buyer_max: OUTBOX_STORED_PER_BUYER_MAX,
            frame_length_max: FRAME_LENGTH_MAX,
            snapshot_every_records: self.snapshot_every_records,
            admins,
            book,
            journal_sync_fault: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_policies_parse_and_print() {
        for text in ["always", "never", "interval=2", "interval=250"] {
            let policy: FsyncPolicy = text.parse().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(policy.to_string(), text);
        }
        for bad in ["", "sometimes", "interval=", "interval=0", "interval=-1"] {
            assert!(bad.parse::<FsyncPolicy>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_default_configuration_round_trips_through_toml() {
        let file = super::super::default_book::default_config_file();
        let text = file.to_toml().unwrap_or_else(|e| panic!("{e}"));
        let back = ConfigFile::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, file);
        let config = back.check().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.listen.to_string(), LISTEN_ADDR_DEFAULT);
        assert!(!config.book.is_empty());
    }

    #[test]
    fn bad_values_are_refused_with_a_sentence() {
        let base = "[[admins]]\nid = 1\nsecret = \"x\"\n";
        let cases = [
            ("listen = \"nowhere\"\n", "listen"),
            ("fsync = \"sometimes\"\n", "fsync"),
            ("currency = \"usd\"\n", "currency"),
            ("in_flight_max = 0\n", "in_flight_max"),
        ];
        for (line, word) in cases {
            let text = format!("{line}{base}");
            let error = ConfigFile::parse(&text)
                .and_then(ConfigFile::check)
                .expect_err(line);
            assert!(error.contains(word), "{error}");
        }
        let error = ConfigFile::parse("")
            .and_then(ConfigFile::check)
            .expect_err("no admins");
        assert!(error.contains("admins"), "{error}");
        let error = ConfigFile::parse("lisen = \"x\"").expect_err("unknown key");
        assert!(error.contains("lisen"), "{error}");
    }

    #[test]
    fn plain_secrets_in_the_book_are_hashed_at_load() {
        let config = super::super::default_book::default_config_file()
            .check()
            .unwrap_or_else(|e| panic!("{e}"));
        for change in &config.book {
            let secret = match change {
                AdminChange::SellerPut(put) => put.seller.secret.as_deref(),
                AdminChange::BuyerPut(put) => put.buyer.secret.as_deref(),
                _ => None,
            };
            if let Some(secret) = secret {
                assert!(auth::is_hashed(secret), "{secret}");
            }
        }
    }
}
