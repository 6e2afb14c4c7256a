//! Fuzz target: arbitrary bytes through the frame checker, the decoder and back through the
//! encoder. The invariants live in `pingpost::protocol::fuzzing` so that `cargo test` replays
//! this target's seed corpus on stable Rust (tests/fuzz_corpus.rs).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    pingpost::protocol::fuzzing::check_decode_invariants(data);
});
