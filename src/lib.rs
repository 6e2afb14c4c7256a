//! pingpost: a low-latency ping-post lead exchange.
//!
//! The crate is laid out as its architecture (see ARCHITECTURE.md): `protocol` is the sans-IO
//! wire codec, `client` the async client library built on it, `limits` every bound in one place.

pub mod bookgen;
pub mod client;
pub mod engine;
pub mod journal;
pub mod limits;
pub mod protocol;
pub mod server;
