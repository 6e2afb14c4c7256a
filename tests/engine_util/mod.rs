//! What the engine's integration tests share: virtual time, the seed's consumer (contact and
//! consent) and draining an engine's outputs and events.

// Each test binary uses a different part of this module.
#![allow(dead_code)]

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr};

use pingpost::engine::events::Event;
use pingpost::engine::machine::{Engine, Output};
use pingpost::protocol::{Consent, Contact};

/// 2026-11-23 14:00 UTC, a Monday afternoon in Munich: every schedule of these tests is open.
pub const T0: u64 = 1_795_442_400_000_000;
pub const MS: u64 = 1_000;

/// The seed's consumer near Munich.
pub fn contact() -> Contact<'static> {
    Contact {
        first_name: Cow::Borrowed("Jana"),
        last_name: Cow::Borrowed("Muster"),
        phone: Cow::Borrowed("+4989555014200"),
        email: Cow::Borrowed("jana.muster@example.com"),
        street: Cow::Borrowed("Marienplatz 8"),
        city: Cow::Borrowed("München"),
        region: Cow::Borrowed("BY"),
    }
}

/// Her consent, a minute before `T0`.
pub fn consent() -> Consent<'static> {
    Consent {
        certificate_id: Cow::Borrowed("cert-7d1c"),
        text_version: Cow::Borrowed("solar-2026-03"),
        consented_at: T0 - 60_000_000,
        ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
        user_agent: Cow::Borrowed("Mozilla/5.0"),
        page_url: Cow::Borrowed("https://quotes.example.com/solar"),
    }
}

pub fn drain(engine: &mut Engine) -> Vec<Output> {
    std::iter::from_fn(|| engine.poll_output()).collect()
}

pub fn events(engine: &mut Engine) -> Vec<Event> {
    std::iter::from_fn(|| engine.poll_event()).collect()
}

/// The ping id a seller's answer among `outputs` names.
pub fn answered_ping(outputs: &[Output]) -> Option<u64> {
    outputs.iter().find_map(|output| match output {
        Output::PingAnswer { result, .. } => Some(result.ping_id),
        _ => None,
    })
}
