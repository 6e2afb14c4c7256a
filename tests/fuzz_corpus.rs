//! Replays the decoder's fuzz target on stable Rust: the seed corpus under `fuzz/seeds/`, every
//! byte vector of the spec, and a bounded, seeded mutation run over those vectors. The
//! invariants are `pingpost::protocol::fuzzing::check_decode_invariants`, the same function
//! the cargo-fuzz target calls, so whatever the fuzzer finds can be pinned here as a seed file.

use std::fs;
use std::path::{Path, PathBuf};

use pingpost::protocol::fuzzing::check_decode_invariants;

/// Mutated inputs per vector in the seeded run: enough to hit every field of every message
/// type with truncations, bit flips and length lies, while the test stays under a few seconds.
const MUTATIONS_PER_VECTOR: usize = 2_000;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap_or_else(|error| panic!("{}: {error}", dir.display())) {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// Every `hex` string in the spec's vector files, valid and malformed.
fn vector_inputs() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    files_under(&root().join("protocol-spec/vectors"), &mut files);
    let mut inputs = Vec::new();
    for path in files
        .iter()
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
    {
        let text = fs::read_to_string(path).expect("vector file");
        let value: serde_json::Value = serde_json::from_str(&text).expect("vector JSON");
        let cases = value
            .as_array()
            .or_else(|| value["cases"].as_array())
            .unwrap_or_else(|| panic!("{}: no cases", path.display()));
        for case in cases {
            let hex_text: String = case["hex"]
                .as_str()
                .unwrap_or_else(|| panic!("{}: case without hex", path.display()))
                .split_whitespace()
                .collect();
            inputs.push(hex::decode(hex_text).expect("vector hex"));
        }
    }
    assert!(inputs.len() >= 54, "only {} vectors found", inputs.len());
    inputs
}

#[test]
fn seed_corpus_keeps_the_decoder_invariants() {
    let mut files = Vec::new();
    files_under(&root().join("fuzz/seeds/decode_frame"), &mut files);
    assert!(!files.is_empty(), "fuzz/seeds/decode_frame is empty");
    for path in files {
        check_decode_invariants(&fs::read(&path).expect("seed file"));
    }
}

#[test]
fn spec_vectors_keep_the_decoder_invariants() {
    for input in vector_inputs() {
        check_decode_invariants(&input);
    }
}

/// xorshift64*: a fixed seed makes every run test the same inputs, so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % bound as u64).expect("below a usize bound")
    }
}

#[test]
fn seeded_mutations_of_vectors_keep_the_decoder_invariants() {
    let mut rng = Rng(0x5eed_8033_1045);
    for input in vector_inputs() {
        for _ in 0..MUTATIONS_PER_VECTOR {
            let mut bytes = input.clone();
            match rng.below(5) {
                // Flip one bit anywhere.
                0 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
                // Overwrite one byte with a boundary value.
                1 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.below(5)];
                }
                // Truncate, keeping the length prefix (a lying frame length).
                2 => bytes.truncate(rng.below(bytes.len() + 1)),
                // Truncate and fix the prefix, so the frame is whole but its body is cut.
                3 if bytes.len() > 16 => {
                    bytes.truncate(16 + rng.below(bytes.len() - 16));
                    let length = u32::try_from(bytes.len() - 4).expect("small");
                    bytes[..4].copy_from_slice(&length.to_le_bytes());
                }
                // Lie in a u16 length or count somewhere in the body.
                _ if bytes.len() > 18 => {
                    let at = 16 + rng.below(bytes.len() - 17);
                    let lie = [0xffff_u16, 0x8000, 257, 65][rng.below(4)];
                    bytes[at..at + 2].copy_from_slice(&lie.to_le_bytes());
                }
                _ => {}
            }
            check_decode_invariants(&bytes);
        }
    }
}
