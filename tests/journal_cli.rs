//! The auditor's CLI, run as the built binary on a journal of a seeded engine workload: a sound
//! journal verifies and reads back; each way of tampering with it is caught with its place.

// Tests: offsets and counts of small files, of known ranges.
#![allow(clippy::cast_possible_truncation)]

mod journal_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use journal_util::{copy_dir, drive, segments};
use pingpost::engine::events::Event;
use pingpost::journal::format::{BatchBuilder, SegmentHeader};
use pingpost::journal::scan::{TornTailMode, scan};
use pingpost::journal::{Journal, JournalConfig, SyncPolicy};

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn pingpost(args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_pingpost"))
        .args(args)
        .output()
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn journal(args: &[&str], dir: &Path) -> Run {
    let mut all = vec!["journal", args[0], dir.to_str().expect("utf-8 path")];
    all.extend_from_slice(&args[1..]);
    pingpost(&all)
}

/// A journal of a seeded workload in small segments, and its events.
fn sample() -> (tempfile::TempDir, Vec<Event>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = JournalConfig::new(SyncPolicy::Never, 3);
    config.segment_bytes_max = 256 * 1024;
    let (mut writer, _) = Journal::open::<Event>(dir.path(), config).expect("open");
    let mut events = Vec::new();
    drive(0xC11, 600, |event| {
        events.push(event.clone());
        writer.append(event).expect("append");
        // Commit now and then, so that the journal has many batches.
        if events.len() % 10 == 0 {
            writer.wait_durable(events.len() as u64).expect("durable");
        }
    });
    writer.flush_and_close().expect("close");
    (dir, events)
}

/// The sealed segment (not the last) with the most batches, and its batches: (offset, length).
fn first_segment_batches(dir: &Path) -> (PathBuf, Vec<(usize, usize)>) {
    let mut sealed = segments(dir);
    sealed.pop();
    let mut per_segment: std::collections::BTreeMap<PathBuf, Vec<(usize, usize)>> =
        std::collections::BTreeMap::new();
    scan(dir, TornTailMode::Report, |segment, batch| {
        if sealed.iter().any(|s| s == segment) {
            per_segment
                .entry(segment.to_path_buf())
                .or_default()
                .push((batch.offset as usize, batch.len));
        }
        Ok(())
    })
    .expect("sound");
    let (segment, batches) = per_segment
        .into_iter()
        .max_by_key(|(_, batches)| batches.len())
        .expect("a sealed segment");
    assert!(
        batches.len() >= 5,
        "{segment:?} has {} batches",
        batches.len()
    );
    (segment, batches)
}

#[test]
fn a_sound_journal_verifies_and_reads_back() {
    let (dir, events) = sample();
    let dir = dir.path();
    let verify = journal(&["verify"], dir);
    assert_eq!(verify.code, 0, "{}", verify.stderr);
    assert!(verify.stdout.contains("journal sound"), "{}", verify.stdout);
    assert!(
        verify
            .stdout
            .contains(&format!("last LSN {}", events.len())),
        "{}",
        verify.stdout
    );

    let head = journal(&["head"], dir);
    assert_eq!(head.code, 0);
    let head = head.stdout.trim().to_owned();
    assert!(head.starts_with(&format!("{}:", events.len())), "{head}");
    assert!(verify.stdout.contains(&head));
    let with_head = journal(&["verify", "--expect-head", &head], dir);
    assert_eq!(with_head.code, 0, "{}", with_head.stderr);

    let dump = journal(&["dump", "--from", "3", "--to", "7", "--jsonl"], dir);
    assert_eq!(dump.code, 0, "{}", dump.stderr);
    let lines: Vec<serde_json::Value> = dump
        .stdout
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[0]["lsn"], 3);
    let event: Event = serde_json::from_value(lines[1]["event"].clone()).expect("an event");
    assert_eq!(event, events[3]);
    let text = journal(&["dump", "--to", "1"], dir);
    assert!(text.stdout.starts_with("LSN 1 "), "{}", text.stdout);
    assert!(text.stdout.contains("book_changed"));

    // A sold lead's trace tells its life.
    let (lead, buyer) = events
        .iter()
        .find_map(|e| match e {
            Event::SaleCommitted { lead_id, buyer, .. } => Some((*lead_id, *buyer)),
            _ => None,
        })
        .expect("a sale");
    let trace = journal(&["trace", "--lead", &lead.to_string()], dir);
    assert_eq!(trace.code, 0, "{}", trace.stderr);
    for part in [
        "ping opened",
        "auction resolved",
        "winner: campaign",
        &format!("posted: lead {lead}"),
        "consent: certificate",
        "delivered:",
        &format!("accepted: buyer {buyer}"),
        "settled: sold",
    ] {
        assert!(trace.stdout.contains(part), "{part:?} in\n{}", trace.stdout);
    }
    let missing = journal(&["trace", "--lead", "999999999"], dir);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("not in the journal"));

    // The ledger's totals are the sales'.
    let (mut charged, mut paid) = (0u64, 0u64);
    for event in &events {
        if let Event::SaleCommitted { price, payout, .. } = event {
            charged += price;
            paid += payout;
        }
    }
    let dollars = |cents: u64| format!("${}.{:02}", cents / 100, cents % 100);
    for by in ["buyer", "seller", "day"] {
        let ledger = journal(&["ledger", "--by", by], dir);
        assert_eq!(ledger.code, 0, "{}", ledger.stderr);
        let total = ledger
            .stdout
            .lines()
            .find(|line| line.starts_with("total"))
            .expect("a total line");
        assert!(total.contains(&dollars(charged)), "{total}");
        assert!(total.contains(&dollars(paid)), "{total}");
        assert!(total.contains(&dollars(charged - paid)), "{total}");
    }
}

fn assert_unsound(dir: &Path, expect_head: Option<&str>, says: &str) -> String {
    let run = match expect_head {
        Some(head) => journal(&["verify", "--expect-head", head], dir),
        None => journal(&["verify"], dir),
    };
    assert_eq!(run.code, 1, "stdout {} stderr {}", run.stdout, run.stderr);
    assert!(run.stderr.contains(says), "{says:?} in {}", run.stderr);
    run.stderr
}

#[test]
fn verify_catches_an_edit_with_a_recomputed_crc() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    let (first, batches) = first_segment_batches(copy.path());
    let path = copy.path().join(first.file_name().expect("name"));
    let mut bytes = std::fs::read(&path).expect("read");
    // A digit in the first record of the third batch becomes another digit: still valid JSON,
    // and the record's CRC is recomputed as a forger would.
    let record = batches[2].0 + 56;
    let payload_len = u32::from_le_bytes(bytes[record..record + 4].try_into().expect("4")) as usize;
    let payload = record + 28..record + 28 + payload_len;
    let digit = payload
        .clone()
        .find(|&i| bytes[i].is_ascii_digit() && bytes[i] != b'9')
        .expect("a digit");
    bytes[digit] += 1;
    let crc = crc32c::crc32c_append(
        crc32c::crc32c(&bytes[record..record + 4]),
        &bytes[record + 8..payload.end],
    );
    bytes[record + 4..record + 8].copy_from_slice(&crc.to_le_bytes());
    std::fs::write(&path, bytes).expect("write");
    let stderr = assert_unsound(copy.path(), None, "does not chain");
    assert!(
        stderr.contains(&format!("at byte {}", batches[2].0)),
        "{stderr}"
    );
    assert!(
        stderr.contains(first.file_name().and_then(|n| n.to_str()).expect("name")),
        "{stderr}"
    );
}

fn rewrite_first_segment(dir: &Path, edit: impl FnOnce(&[u8], &[(usize, usize)]) -> Vec<u8>) {
    let (first, batches) = first_segment_batches(dir);
    let bytes = std::fs::read(&first).expect("read");
    let edited = edit(&bytes, &batches);
    std::fs::write(&first, edited).expect("write");
}

#[test]
fn verify_catches_a_deleted_batch() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    rewrite_first_segment(copy.path(), |bytes, batches| {
        let (at, len) = batches[3];
        [&bytes[..at], &bytes[at + len..]].concat()
    });
    assert_unsound(copy.path(), None, "deleted, inserted or moved");
}

#[test]
fn verify_catches_reordered_batches() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    rewrite_first_segment(copy.path(), |bytes, batches| {
        let (a, a_len) = batches[2];
        let (b, b_len) = batches[3];
        [
            &bytes[..a],
            &bytes[b..b + b_len],
            &bytes[a..a + a_len],
            &bytes[b + b_len..],
        ]
        .concat()
    });
    assert_unsound(copy.path(), None, "deleted, inserted or moved");
}

#[test]
fn verify_catches_an_inserted_batch() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    rewrite_first_segment(copy.path(), |bytes, batches| {
        let (at, len) = batches[2];
        [&bytes[..at + len], &bytes[at..at + len], &bytes[at + len..]].concat()
    });
    assert_unsound(copy.path(), None, "deleted, inserted or moved");
}

#[test]
fn verify_catches_a_flipped_bit_with_its_place() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    let (first, batches) = first_segment_batches(copy.path());
    rewrite_first_segment(copy.path(), |bytes, _| {
        let mut bytes = bytes.to_vec();
        bytes[batches[1].0 + 100] ^= 0x04;
        bytes
    });
    let name = first.file_name().and_then(|n| n.to_str()).expect("name");
    let stderr = assert_unsound(copy.path(), None, name);
    assert!(stderr.contains("LSN"), "{stderr}");
}

#[test]
fn a_truncated_or_rewritten_tail_is_caught_against_an_exported_head() {
    let (dir, _) = sample();
    let exported = journal(&["head"], dir.path()).stdout.trim().to_owned();

    // Truncated at a batch boundary: the rest is a sound journal, but not the one exported.
    let copy = copy_dir(dir.path());
    let last = segments(copy.path()).pop().expect("segments");
    let mut tail = None;
    scan(copy.path(), TornTailMode::Report, |segment, batch| {
        if segment == last {
            tail = Some(batch.offset);
        }
        Ok(())
    })
    .expect("sound");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open");
    file.set_len(tail.expect("a batch in the last segment"))
        .expect("truncate");
    assert_eq!(journal(&["verify"], copy.path()).code, 0);
    assert_unsound(copy.path(), Some(&exported), "truncated or rewritten");

    // Rewritten: the last batch re-encoded with one changed record and a valid hash and CRCs.
    let copy = copy_dir(dir.path());
    let last = segments(copy.path()).pop().expect("segments");
    let bytes = std::fs::read(&last).expect("read");
    let header = SegmentHeader::decode(&bytes).expect("header");
    let mut prev = header.start_hash;
    let mut rebuilt = None;
    scan(copy.path(), TornTailMode::Report, |segment, batch| {
        if segment == last {
            let mut builder = BatchBuilder::new();
            for (i, record) in batch.records.iter().enumerate() {
                let mut payload = record.payload.to_vec();
                if i == 0 {
                    let digit = payload
                        .iter()
                        .position(|b| b.is_ascii_digit() && *b != b'9')
                        .expect("a digit");
                    payload[digit] += 1;
                }
                builder
                    .push(
                        record.lsn,
                        record.record_type,
                        record.schema_version,
                        record.timestamp_us,
                        |buf| {
                            buf.extend_from_slice(&payload);
                            Ok::<(), ()>(())
                        },
                    )
                    .expect("push");
            }
            let (encoded, _) = builder.seal(&prev, header.salt);
            rebuilt = Some((batch.offset as usize, encoded.to_vec()));
            prev = batch.hash;
        }
        Ok(())
    })
    .expect("sound");
    let (at, encoded) = rebuilt.expect("the last batch");
    std::fs::write(&last, [&bytes[..at], &encoded[..]].concat()).expect("write");
    let verify = journal(&["verify"], copy.path());
    assert_eq!(
        verify.code, 0,
        "a consistent rewrite of the tail is only caught by the head"
    );
    assert_unsound(copy.path(), Some(&exported), "truncated or rewritten");
}

#[test]
fn a_torn_tail_is_unsound_for_the_auditor_and_usage_errors_exit_2() {
    let (dir, _) = sample();
    let copy = copy_dir(dir.path());
    let last = segments(copy.path()).pop().expect("segments");
    let len = std::fs::metadata(&last).expect("meta").len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&last)
        .expect("open")
        .set_len(len - 10)
        .expect("truncate");
    assert_unsound(copy.path(), None, "torn tail");
    // The auditor's tool changed nothing.
    assert_eq!(std::fs::metadata(&last).expect("meta").len(), len - 10);

    let missing = pingpost(&["journal", "verify", "/nonexistent/journal"]);
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("not a directory"),
        "{}",
        missing.stderr
    );
    let bad_head = journal(&["verify", "--expect-head", "xyz"], dir.path());
    assert_eq!(bad_head.code, 2);
    assert_eq!(pingpost(&["journal", "ledger"]).code, 2);
}
