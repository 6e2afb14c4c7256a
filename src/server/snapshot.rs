//! The daemon's snapshot state: the engine's state with the outbox of deliveries waiting for
//! their buyers and the clock's floor, so that a restart loads it and replays only the journal
//! records after it (`protocol-spec/journal.md`, "Snapshot state").
//!
//! The exchange thread only copies the state ([`DaemonImage::take`]); the journal's snapshot
//! thread encodes it ([`DaemonImage::encode`]) and writes the file.

use serde::{Deserialize, Serialize};

use super::outbox::{Outbox, OutboxImage};
use crate::engine::machine::{Engine, EngineConfig, EngineImage};

/// The layout version of the daemon's snapshot state; a reader refuses any other.
pub const DAEMON_SNAPSHOT_SCHEMA: u16 = 1;

/// A copy of the daemon's state: `{"schema":1,"clock_floor_us":…,"outbox":{…},"engine":{…}}`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DaemonImage {
    schema: u16,
    clock_floor_us: u64,
    outbox: OutboxImage,
    engine: EngineImage,
}

impl DaemonImage {
    /// Copies the daemon's state. Take it when every event the engine emitted is in the
    /// journal (after a pump), so that the snapshot stands for the journal up to its last
    /// record.
    pub fn take(engine: &Engine, outbox: &Outbox, clock_floor_us: u64) -> Result<Self, String> {
        Ok(Self {
            schema: DAEMON_SNAPSHOT_SCHEMA,
            clock_floor_us,
            outbox: outbox.image(),
            engine: engine.snapshot_image().map_err(|error| error.to_string())?,
        })
    }

    /// The auctions the image holds.
    pub fn auctions(&self) -> usize {
        self.engine.auctions()
    }

    /// The image as snapshot bytes.
    pub fn encode(&self) -> Result<Vec<u8>, String> {
        serde_json::to_vec(self).map_err(|error| format!("cannot write the state: {error}"))
    }
}

/// Copies and encodes the daemon's state at once (see [`DaemonImage`]).
pub fn encode(engine: &Engine, outbox: &Outbox, clock_floor_us: u64) -> Result<Vec<u8>, String> {
    DaemonImage::take(engine, outbox, clock_floor_us)?.encode()
}

/// What a snapshot gives back.
#[derive(Debug)]
pub struct Restored {
    pub engine: Engine,
    pub outbox: Outbox,
    pub clock_floor_us: u64,
}

/// Loads snapshot bytes from [`DaemonImage::encode`]; the error says what is wrong with them.
pub fn decode(
    bytes: &[u8],
    config: EngineConfig,
    stored_per_buyer_max: usize,
) -> Result<Restored, String> {
    let image: DaemonImage = serde_json::from_slice(bytes)
        .map_err(|error| format!("the daemon's state does not parse: {error}"))?;
    if image.schema != DAEMON_SNAPSHOT_SCHEMA {
        return Err(format!(
            "daemon state schema {} is not this build's {DAEMON_SNAPSHOT_SCHEMA}",
            image.schema
        ));
    }
    let engine = Engine::from_image(config, image.engine).map_err(|error| error.to_string())?;
    Ok(Restored {
        engine,
        outbox: Outbox::from_image(image.outbox, stored_per_buyer_max),
        clock_floor_us: image.clock_floor_us,
    })
}
