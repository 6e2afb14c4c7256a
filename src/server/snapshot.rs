//! The daemon's snapshot state: the engine's state with the outbox of deliveries waiting for
//! their buyers and the clock's floor, so that a restart loads it and replays only the journal
//! records after it (`protocol-spec/journal.md`, "Snapshot state").
//!
//! The bytes are one JSON object, `{"schema":1,"clock_floor_us":…,"outbox":{…},"engine":{…}}`:
//! the engine's part is [`Engine::snapshot_state`]'s bytes as they are, so that the
//! exchange thread serializes the engine once.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::outbox::{Outbox, OutboxImageOwned};
use crate::engine::machine::{Engine, EngineConfig};

/// The layout version of the daemon's snapshot state; a reader refuses any other.
pub const DAEMON_SNAPSHOT_SCHEMA: u16 = 1;

/// The daemon's state as snapshot bytes. Take it when every event the engine emitted is in
/// the journal (after a pump), so that the snapshot stands for the journal up to its last
/// record.
pub fn encode(engine: &Engine, outbox: &Outbox, clock_floor_us: u64) -> Result<Vec<u8>, String> {
    let engine = engine.snapshot_state().map_err(|error| error.to_string())?;
    let outbox = serde_json::to_vec(&outbox.image())
        .map_err(|error| format!("cannot write the outbox: {error}"))?;
    let head = format!(
        "{{\"schema\":{DAEMON_SNAPSHOT_SCHEMA},\"clock_floor_us\":{clock_floor_us},\"outbox\":"
    );
    let mut bytes = Vec::with_capacity(head.len() + outbox.len() + engine.len() + 16);
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(&outbox);
    bytes.extend_from_slice(b",\"engine\":");
    bytes.extend_from_slice(&engine);
    bytes.push(b'}');
    Ok(bytes)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DaemonState<'a> {
    schema: u16,
    clock_floor_us: u64,
    outbox: OutboxImageOwned,
    #[serde(borrow)]
    engine: &'a RawValue,
}

/// What a snapshot gives back.
#[derive(Debug)]
pub struct Restored {
    pub engine: Engine,
    pub outbox: Outbox,
    pub clock_floor_us: u64,
}

/// Loads snapshot bytes from [`encode`]; the error says what is wrong with them.
pub fn decode(
    bytes: &[u8],
    config: EngineConfig,
    stored_per_buyer_max: usize,
) -> Result<Restored, String> {
    let state: DaemonState<'_> = serde_json::from_slice(bytes)
        .map_err(|error| format!("the daemon's state does not parse: {error}"))?;
    if state.schema != DAEMON_SNAPSHOT_SCHEMA {
        return Err(format!(
            "daemon state schema {} is not this build's {DAEMON_SNAPSHOT_SCHEMA}",
            state.schema
        ));
    }
    let engine = Engine::from_snapshot(config, state.engine.get().as_bytes())
        .map_err(|error| error.to_string())?;
    Ok(Restored {
        engine,
        outbox: Outbox::from_image(state.outbox, stored_per_buyer_max),
        clock_floor_us: state.clock_floor_us,
    })
}
