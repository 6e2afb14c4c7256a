#!/usr/bin/env python3
"""Self-test of the reference encoder: expectations computed by hand from the spec text.

Run: python3 -m unittest protocol-spec/tools/test_reference_encoder.py
  or python3 protocol-spec/tools/test_reference_encoder.py
"""
import io
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reference_encoder as r  # noqa: E402

SAMPLES = Path(__file__).resolve().parent / "samples" / "all_messages.json"


def h(s: str) -> bytes:
    return bytes.fromhex("".join(s.split()))


class Primitives(unittest.TestCase):
    def test_unsigned_little_endian(self):
        self.assertEqual(r.enc_u8(0xAB), h("ab"))
        self.assertEqual(r.enc_u16(0x0102), h("02 01"))
        self.assertEqual(r.enc_u32(0x01020304), h("04 03 02 01"))
        self.assertEqual(r.enc_u64(1), h("01 00 00 00 00 00 00 00"))

    def test_signed_twos_complement(self):
        self.assertEqual(r.enc_i16(-500), h("0c fe"))          # 65536 - 500 = 0xfe0c
        self.assertEqual(r.enc_i32(-1), h("ff ff ff ff"))
        self.assertEqual(r.enc_i64(-2), h("fe ff ff ff ff ff ff ff"))

    def test_bool(self):
        self.assertEqual(r.enc_bool(True), h("01"))
        self.assertEqual(r.enc_bool(False), h("00"))
        with self.assertRaises(r.SpecViolation):
            r.enc_bool(2)

    def test_money_bound_is_inclusive(self):
        # 10^12 = 0xE8_D4A5_1000
        self.assertEqual(r.enc_money(10**12), h("00 10 a5 d4 e8 00 00 00"))
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_money(10**12 + 1)
        self.assertEqual(cm.exception.code, "MONEY_OUT_OF_RANGE")
        with self.assertRaises(r.SpecViolation):
            r.enc_money(-1)

    def test_str(self):
        # "héllo": é is 2 UTF-8 bytes, so the byte length is 6
        self.assertEqual(r.enc_str("héllo", 8), h("06 00 68 c3 a9 6c 6c 6f"))
        self.assertEqual(r.enc_str("", 8), h("00 00"))
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_str("héllo", 5)   # 5 characters but 6 bytes
        self.assertEqual(cm.exception.code, "STRING_TOO_LONG")
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_str("\ud800", 8)  # lone surrogate: no UTF-8 form
        self.assertEqual(cm.exception.code, "INVALID_UTF8")

    def test_symbol(self):
        self.assertEqual(r.enc_symbol("solar"), h("05 00 73 6f 6c 61 72"))
        for bad in ("", "Solar", "so-lar", "so lar", "é"):
            with self.subTest(bad=bad), self.assertRaises(r.SpecViolation) as cm:
                r.enc_symbol(bad)
            self.assertEqual(cm.exception.code, "INVALID_FIELD")
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_symbol("a" * 33)
        self.assertEqual(cm.exception.code, "STRING_TOO_LONG")
        self.assertEqual(len(r.enc_symbol("a" * 32)), 34)

    def test_country_currency_postal(self):
        self.assertEqual(r.enc_country("US"), b"US")
        self.assertEqual(r.enc_currency("EUR"), b"EUR")
        for bad in ("us", "USA", "U"):
            with self.subTest(bad=bad), self.assertRaises(r.SpecViolation):
                r.enc_country(bad)
        self.assertEqual(r.enc_postal_code("SW1A 1AA"), h("08 00") + b"SW1A 1AA")
        for bad in ("", "sw1a 1aa", "80302_1", "1" * 17):
            with self.subTest(bad=bad), self.assertRaises(r.SpecViolation):
                r.enc_postal_code(bad)

    def test_hash32_ip(self):
        self.assertEqual(r.enc_hash32("00" * 31 + "ff"), bytes(31) + b"\xff")
        with self.assertRaises(r.InputShapeError):
            r.enc_hash32("abc")
        self.assertEqual(r.enc_ip("203.0.113.7"), h("04 cb 00 71 07"))
        self.assertEqual(r.enc_ip("2001:db8::1"), h("06 20 01 0d b8") + bytes(11) + b"\x01")

    def test_option_list_enum_code(self):
        self.assertEqual(r.enc_option(None, r.put_u8), h("00"))
        self.assertEqual(r.enc_option(7, r.put_u8), h("01 07"))
        self.assertEqual(r.enc_list([1, 2], 8, r.put_u16), h("02 00 01 00 02 00"))
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_list([1, 2, 3], 2, r.put_u8)
        self.assertEqual(cm.exception.code, "LIST_TOO_LONG")
        self.assertEqual(r.enc_enum("either", r.SALE_MODE_REQUEST), h("03"))
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_enum("either", r.SALE_MODE)
        self.assertEqual(cm.exception.code, "UNKNOWN_ENUM_VALUE")
        self.assertEqual(r.enc_code(401), h("91 01"))
        self.assertEqual(r.enc_code(65535), h("ff ff"))  # open set: unknown codes encode

    def test_attributes_sorted_by_key_bytes(self):
        got = r.enc_attributes({"b": {"integer": 1},
                                "a": {"decimal": {"mantissa": -5, "scale": 2}}})
        self.assertEqual(got, h("02 00"
                                "01 00 61  02  fb ff ff ff ff ff ff ff  02"
                                "01 00 62  01  01 00 00 00 00 00 00 00"))
        self.assertEqual(r.enc_attributes({"s": {"string": "x"}, "t": {"bool": False},
                                           "u": {"enum": "tile"}}),
                         h("03 00  01 00 73 03 01 00 78  01 00 74 04 00  01 00 75 05 04 00") + b"tile")

    def test_attributes_violations(self):
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_attributes([{"key": "b", "integer": 1}, {"key": "a", "integer": 2}])
        self.assertEqual(cm.exception.code, "ATTRIBUTES_UNSORTED")
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_attributes([{"key": "a", "integer": 1}, {"key": "a", "integer": 2}])
        self.assertEqual(cm.exception.code, "DUPLICATE_ATTRIBUTE")
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_attributes({"a": {"decimal": {"mantissa": 1, "scale": 10}}})
        self.assertEqual(cm.exception.code, "INVALID_FIELD")
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_attributes({f"k{i}": {"integer": i} for i in range(65)})
        self.assertEqual(cm.exception.code, "LIST_TOO_LONG")
        # duplicate keys in a JSON object are caught at load time
        doc = json.loads('{"a": {"integer": 1}, "a": {"integer": 2}}',
                         object_pairs_hook=r.TrackedDict)
        with self.assertRaises(r.SpecViolation) as cm:
            r.enc_attributes(doc)
        self.assertEqual(cm.exception.code, "DUPLICATE_ATTRIBUTE")


class Frames(unittest.TestCase):
    def test_heartbeat_by_hand(self):
        # frame_length = 12 header + 8 body = 20 = 0x14; type 0x0004; version 1; flags 0;
        # correlation id 1; sent_at 0.
        expected = h("14 00 00 00  04 00  01  00  01 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00")
        self.assertEqual(r.encode_heartbeat({"sent_at": 0}, 1), expected)
        frame = {"version": 1, "flags": 0, "correlation_id": 1,
                 "message": {"type": "HEARTBEAT", "sent_at": 0}}
        self.assertEqual(r.encode_frame(frame), expected)

    def test_empty_body(self):
        self.assertEqual(r.encode_goodbye_ack({}, 2),
                         h("0c 00 00 00  07 00 01 00  02 00 00 00 00 00 00 00"))

    def test_ping_result_offer_by_hand(self):
        got = r.encode_ping_result({"ping_id": 11, "outcome": {"offer": {
            "sale_mode": "shared", "payouts": [3150, 2800], "post_within_ms": 30000}}}, 7)
        body = h("0b 00 00 00 00 00 00 00  01  02  02 00"
                 "4e 0c 00 00 00 00 00 00  f0 0a 00 00 00 00 00 00  30 75 00 00")
        header = h("02 01 01 00 07 00 00 00 00 00 00 00")
        self.assertEqual(got, (12 + len(body)).to_bytes(4, "little") + header + body)

    def test_header_violations(self):
        m = {"type": "HEARTBEAT", "sent_at": 0}
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_frame({"version": 1, "flags": 1, "correlation_id": 0, "message": m})
        self.assertEqual(cm.exception.code, "BAD_FLAGS")
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_frame({"version": 2, "flags": 0, "correlation_id": 0, "message": m})
        self.assertEqual(cm.exception.code, "UNSUPPORTED_VERSION")
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_frame({"version": 1, "flags": 0, "correlation_id": 0,
                            "message": {"type": "PONG"}})
        self.assertEqual(cm.exception.code, "UNKNOWN_MESSAGE_TYPE")

    def test_message_rules(self):
        lead = {"vertical": "solar", "country": "US", "postal_code": "80302", "attributes": {}}
        ping = {"client_token": 0, "lead": lead, "phone_hash": None, "email_hash": None,
                "sale_mode": "exclusive", "shared_buyers_max": 1, "timeout_ms": 100}
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_ping(ping)
        self.assertEqual(cm.exception.field, "PING.shared_buyers_max")
        with self.assertRaises(r.SpecViolation):
            r.encode_ping(dict(ping, sale_mode="shared", shared_buyers_max=9))
        r.encode_ping(dict(ping, sale_mode="shared", shared_buyers_max=8))
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_ping_result({"ping_id": 1, "outcome": {"offer": {
                "sale_mode": "shared", "payouts": [], "post_within_ms": 1}}})
        self.assertEqual(cm.exception.code, "INVALID_FIELD")
        with self.assertRaises(r.InputShapeError) as cm:
            r.encode_bid({"auction_id": 1, "campaign_id": 2})
        self.assertEqual(cm.exception.field, "BID.price")

    def test_rule_levels(self):
        enc_window = r._standalone(r.put_window, "window")
        self.assertEqual(enc_window({"weekday": 7, "open_minute": 0, "close_minute": 1440}),
                         h("07 0000 a005"))
        with self.assertRaises(r.SpecViolation) as cm:       # domain: refused unless lenient
            enc_window({"weekday": 8, "open_minute": 0, "close_minute": 60})
        self.assertEqual((cm.exception.code, cm.exception.level), ("INVALID_FIELD", "domain"))
        self.assertEqual(enc_window({"weekday": 8, "open_minute": 0, "close_minute": 60}, lenient=True),
                         h("08 0000 3c00"))
        # exchange-level (open < close): encoded, only noted
        self.assertEqual(enc_window({"weekday": 1, "open_minute": 60, "close_minute": 60}),
                         h("01 3c00 3c00"))

    def test_too_large_frame(self):
        events = [{"at": 0, "kind": 1, "party_id": 0, "amount": 0, "code": 0, "detail": "x" * 256}] * 1024
        with self.assertRaises(r.SpecViolation) as cm:
            r.encode_trace({"ping_id": 1, "lead_id": 1, "events": events})
        self.assertEqual(cm.exception.code, "FRAME_TOO_LARGE")


class Cli(unittest.TestCase):
    def test_samples_cover_every_message_type(self):
        seen = set()
        for _, case in r._valid_cases(SAMPLES):
            w = r.encode_frame_traced(case["frame"])
            seen.add(case["frame"]["message"]["type"])
            self.assertEqual(int.from_bytes(w.buf[:4], "little"), len(w.buf) - 4)
            self.assertEqual(w.warnings and [x for x in w.warnings if "not used" in x], [])
        self.assertEqual(seen, set(r.MESSAGES))

    def test_check_reports_mismatch_and_summary(self):
        with tempfile.TemporaryDirectory() as d:
            good = "14000000 0400 01 00 0100000000000000 0000000000000000"
            bad = "14000000 0400 01 00 0100000000000000 0100000000000000"
            cases = [{"name": "hb", "frame": {"version": 1, "flags": 0, "correlation_id": 1,
                                              "message": {"type": "HEARTBEAT", "sent_at": 0}},
                      "hex": good},
                     {"name": "hb_bad", "frame": {"version": 1, "flags": 0, "correlation_id": 1,
                                                  "message": {"type": "HEARTBEAT", "sent_at": 0}},
                      "hex": bad.upper()},
                     {"name": "trunc", "error": "TRUNCATED", "hex": "00"}]
            Path(d, "sub").mkdir()
            Path(d, "sub", "v.json").write_text(json.dumps({"cases": cases}))
            out = io.StringIO()
            rc = r.check_dir(Path(d), False, False, out)
            lines = out.getvalue().splitlines()
            self.assertEqual(rc, 1)
            self.assertEqual(lines[-1], "1 passed, 1 failed")
            self.assertTrue(any("hb_bad" in x and "offset 16" in x and "HEARTBEAT.sent_at" in x
                                for x in lines), lines)
            Path(d, "sub", "v.json").write_text(json.dumps([cases[0], cases[2]]))
            out = io.StringIO()
            self.assertEqual(r.check_dir(Path(d), False, False, out), 0)
            self.assertEqual(out.getvalue().splitlines()[-1], "1 passed, 0 failed")

    def test_check_zero_cases_fails(self):
        with tempfile.TemporaryDirectory() as d:
            out = io.StringIO()
            self.assertEqual(r.check_dir(Path(d), False, False, out), 1)
            self.assertEqual(out.getvalue().splitlines()[-1], "0 passed, 0 failed")


if __name__ == "__main__":
    unittest.main()
