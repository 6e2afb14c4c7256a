#!/usr/bin/env python3
"""Independent reference encoder for the pingpost wire protocol, version 1.

Derived from protocol-spec/README.md and protocol-spec/codes.md alone (no look at the Rust
codec), so that disagreements between the two point at an ambiguity or a bug.
Python 3.11, standard library only.

Library
    put_<encoding>(w, value, ...)   write one field encoding of spec section 2 into a Writer
    enc_<encoding>(value, ...)      the same, standalone: returns the bytes
    body_<message>(w, message)      write one message body (section 4 to 8)
    encode_<message>(message, correlation_id=0, ...)   full frame bytes for one message type
    encode_frame(frame_json)        full frame bytes from the JSON frame convention
    encode_frame_traced(frame_json) -> Writer with bytes, per-field spans and warnings

A value that breaks the spec raises SpecViolation (field path, message, spec error code).
JSON that does not describe a value at all raises InputShapeError. Both are EncodeError.

CLI
    reference_encoder.py --check DIR       compare every valid case under DIR with its hex
    reference_encoder.py --encode FILE     print the hex of each valid case
    reference_encoder.py --explain FILE    print a field-by-field dump of each valid case
    --lenient   downgrade "domain" checks (ranges the spec states without a 1xx error code)
                to warnings

Three levels of rule:
    codec     the spec names a 1xx code (STRING_TOO_LONG, MONEY_OUT_OF_RANGE, ...): always refused
    domain    the spec states a single field's range without a code (non-zero ids, weekday
              1..=7, weight 1.., adjust_bps, decimal_range scale): refused as INVALID_FIELD (111,
              "a value outside its field's domain"), or only noted with --lenient
    exchange  rules relating two fields that the spec leaves to the exchange (open < close,
              bid_min <= bid_max, one payout when exclusive, reason 0 on accept): only noted
"""
from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import re
import struct
import sys
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Limits (spec section 9) and codes (codes.md) this encoder refers to
# ---------------------------------------------------------------------------------------------

PROTOCOL_VERSION = 1
HEADER_LEN = 12
FRAME_LENGTH_MAX = 262_144
MONEY_MAX = 10**12
ATTRIBUTES_MAX = 64
SHARED_BUYERS_MAX = 8

CODES = {
    "FRAME_TOO_LARGE": 100,
    "FRAME_TOO_SHORT": 101,
    "UNKNOWN_MESSAGE_TYPE": 102,
    "UNSUPPORTED_VERSION": 103,
    "BAD_FLAGS": 104,
    "INVALID_UTF8": 107,
    "STRING_TOO_LONG": 108,
    "UNKNOWN_ENUM_VALUE": 109,
    "LIST_TOO_LONG": 110,
    "INVALID_FIELD": 111,
    "DUPLICATE_ATTRIBUTE": 112,
    "MONEY_OUT_OF_RANGE": 113,
    "ATTRIBUTES_UNSORTED": 114,
    "INVALID_DEFINITION": 702,
}


class EncodeError(ValueError):
    """Base class: something could not be encoded. `field` is a dotted path."""

    def __init__(self, field: str, message: str, code: str | None = None,
                 level: str = "codec"):
        self.field = field
        self.code = code
        self.level = level
        text = f"{field or '<frame>'}: {message}"
        if code:
            text += f" [{code} {CODES.get(code, '')}]".rstrip() + ("" if level == "codec" else f" ({level} check)")
        super().__init__(text)


class SpecViolation(EncodeError):
    """The value is representable in JSON but the spec forbids it on the wire."""


class InputShapeError(EncodeError):
    """The JSON does not describe a value of the expected shape (missing key, wrong type)."""


# ---------------------------------------------------------------------------------------------
# Writer: bytes plus a record of which field each byte belongs to
# ---------------------------------------------------------------------------------------------

class Writer:
    def __init__(self, lenient: bool = False):
        self.buf = bytearray()
        self.spans: list[tuple[int, int, str, str]] = []  # (start, end, path, what)
        self.path: list[str] = []
        self.lenient = lenient
        self.warnings: list[str] = []

    @contextlib.contextmanager
    def field(self, name: str | None):
        if name is None:
            yield
            return
        self.path.append(name)
        try:
            yield
        finally:
            self.path.pop()

    def where(self) -> str:
        out = ""
        for p in self.path:
            if p.startswith("[") or not out:
                out += p
            else:
                out += "." + p
        return out

    def put(self, data: bytes, what: str) -> None:
        start = len(self.buf)
        self.buf += data
        self.spans.append((start, len(self.buf), self.where(), what))

    def fail(self, message: str, code: str | None = None):
        raise SpecViolation(self.where(), message, code)

    def shape(self, message: str):
        raise InputShapeError(self.where(), message)

    def domain(self, ok: bool, message: str, code: str | None = None) -> None:
        """A rule the spec states without a codec (1xx) error code: enforced unless lenient."""
        if ok:
            return
        if self.lenient:
            self.warnings.append(f"{self.where()}: {message} (domain check, lenient)")
        else:
            raise SpecViolation(self.where(), message, code, level="domain")

    def exchange(self, ok: bool, message: str) -> None:
        """A rule relating two fields that the spec leaves to the exchange (INVALID_DEFINITION
        702 or no code): never refused by this encoder, only noted."""
        if not ok:
            self.warnings.append(f"{self.where()}: {message} (exchange-level rule, not a codec check)")

    def note(self, message: str) -> None:
        self.warnings.append(f"{self.where()}: {message}")

    def field_at(self, offset: int) -> str:
        for start, end, path, what in self.spans:
            if start <= offset < end:
                return f"{path} ({what}, bytes {start}..{end})"
        return "past the end of the reference encoding"


def _standalone(put_fn, default_field: str):
    """Make enc_X(value, *args) -> bytes from put_X(w, value, *args)."""

    def enc(value, *args, field: str = default_field, lenient: bool = False) -> bytes:
        w = Writer(lenient)
        with w.field(field):
            put_fn(w, value, *args)
        return bytes(w.buf)

    enc.__name__ = "enc_" + default_field
    enc.__doc__ = (put_fn.__doc__ or "") + "\n\nStandalone: returns the encoded bytes."
    return enc


# ---------------------------------------------------------------------------------------------
# Section 2: field encodings
# ---------------------------------------------------------------------------------------------

def _int(w: Writer, v, lo: int, hi: int, typename: str) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        w.shape(f"{typename} must be a JSON integer, got {v!r}")
    if not lo <= v <= hi:
        w.fail(f"{v} does not fit {typename} ({lo}..={hi})")
    return v


def _fixed(fmt: str, typename: str, lo: int, hi: int):
    def put(w: Writer, v) -> int:
        _int(w, v, lo, hi, typename)
        w.put(struct.pack("<" + fmt, v), typename)
        return v

    put.__name__ = "put_" + typename
    put.__doc__ = f"`{typename}`: {struct.calcsize(fmt)} bytes little-endian."
    return put


put_u8 = _fixed("B", "u8", 0, 2**8 - 1)
put_u16 = _fixed("H", "u16", 0, 2**16 - 1)
put_u32 = _fixed("I", "u32", 0, 2**32 - 1)
put_u64 = _fixed("Q", "u64", 0, 2**64 - 1)
put_i16 = _fixed("h", "i16", -(2**15), 2**15 - 1)
put_i32 = _fixed("i", "i32", -(2**31), 2**31 - 1)
put_i64 = _fixed("q", "i64", -(2**63), 2**63 - 1)


def put_bool(w: Writer, v) -> bool:
    """`bool`: u8 0 false, 1 true."""
    if isinstance(v, bool):
        b = v
    elif isinstance(v, int) and v in (0, 1):
        w.note(f"bool given as integer {v}")
        b = bool(v)
    else:
        w.fail(f"bool must be true/false, got {v!r}", "INVALID_FIELD")
    w.put(b"\x01" if b else b"\x00", "bool")
    return b


def put_money(w: Writer, v) -> int:
    """`money`: u64 minor units, at most MONEY_MAX (10^12) else MONEY_OUT_OF_RANGE (113)."""
    _int(w, v, 0, 2**64 - 1, "money")
    if v > MONEY_MAX:
        w.fail(f"money {v} above MONEY_MAX {MONEY_MAX}", "MONEY_OUT_OF_RANGE")
    w.put(struct.pack("<Q", v), "money u64")
    return v


def put_timestamp(w: Writer, v) -> int:
    """`timestamp`: u64 microseconds since the Unix epoch."""
    _int(w, v, 0, 2**64 - 1, "timestamp")
    w.put(struct.pack("<Q", v), "timestamp u64")
    return v


def put_duration_ms(w: Writer, v) -> int:
    """`duration_ms`: u32 milliseconds."""
    _int(w, v, 0, 2**32 - 1, "duration_ms")
    w.put(struct.pack("<I", v), "duration_ms u32")
    return v


def _utf8(w: Writer, v) -> bytes:
    if not isinstance(v, str):
        w.shape(f"string expected, got {v!r}")
    try:
        return v.encode("utf-8")
    except UnicodeEncodeError as e:  # lone surrogates
        w.fail(f"not encodable as UTF-8: {e}", "INVALID_UTF8")


def put_str(w: Writer, v, max_len: int) -> str:
    """`str(N)`: u16 byte length (<= N else STRING_TOO_LONG), then UTF-8 bytes."""
    b = _utf8(w, v)
    if len(b) > max_len:
        w.fail(f"string of {len(b)} bytes above its maximum {max_len}", "STRING_TOO_LONG")
    w.put(struct.pack("<H", len(b)), f"str({max_len}) length")
    if b:
        w.put(b, f"str({max_len}) bytes")
    return v


_SYMBOL_RE = re.compile(r"[a-z0-9_]+")
_POSTAL_RE = re.compile(r"[A-Z0-9 \-]+")


def put_symbol(w: Writer, v) -> str:
    """`symbol`: str(32), non-empty, only a-z 0-9 _ (else INVALID_FIELD).

    Length is checked first (STRING_TOO_LONG), as section 2 orders checks within a field."""
    b = _utf8(w, v)
    if len(b) > 32:
        w.fail(f"symbol of {len(b)} bytes above 32", "STRING_TOO_LONG")
    if not _SYMBOL_RE.fullmatch(v):
        w.fail(f"bad symbol {v!r}: must be non-empty and use only a-z, 0-9, _", "INVALID_FIELD")
    w.put(struct.pack("<H", len(b)), "symbol length")
    w.put(b, "symbol bytes")
    return v


def _upper_ascii(w: Writer, v, n: int, what: str) -> str:
    if not isinstance(v, str):
        w.shape(f"{what} must be a string, got {v!r}")
    if len(v) != n or not all("A" <= c <= "Z" for c in v):
        w.fail(f"bad {what} {v!r}: must be exactly {n} upper-case ASCII letters", "INVALID_FIELD")
    w.put(v.encode("ascii"), what)
    return v


def put_country(w: Writer, v) -> str:
    """`country`: 2 bytes, upper-case ASCII A-Z (ISO 3166-1 alpha-2)."""
    return _upper_ascii(w, v, 2, "country")


def put_currency(w: Writer, v) -> str:
    """`currency`: 3 bytes, upper-case ASCII A-Z (ISO 4217)."""
    return _upper_ascii(w, v, 3, "currency")


def put_postal_code(w: Writer, v) -> str:
    """`postal_code`: str(16), non-empty, upper-case ASCII letters, digits, space, '-'."""
    b = _utf8(w, v)
    if len(b) > 16:
        w.fail(f"postal code of {len(b)} bytes above 16", "STRING_TOO_LONG")
    if not _POSTAL_RE.fullmatch(v):
        w.fail(f"bad postal code {v!r}: non-empty, only A-Z, 0-9, space, '-'", "INVALID_FIELD")
    w.put(struct.pack("<H", len(b)), "postal_code length")
    w.put(b, "postal_code bytes")
    return v


def put_hash32(w: Writer, v) -> bytes:
    """`hash32`: 32 raw bytes. JSON: 64 hex digits (lower-case by convention)."""
    if isinstance(v, str):
        s = v.strip()
        if len(s) != 64 or not re.fullmatch(r"[0-9a-fA-F]{64}", s):
            w.shape(f"hash32 must be 64 hex digits, got {v!r}")
        if s != s.lower():
            w.note("hash32 hex is not lower-case")
        b = bytes.fromhex(s)
    elif isinstance(v, list) and len(v) == 32 and all(isinstance(x, int) and 0 <= x < 256 for x in v):
        w.note("hash32 given as a list of 32 byte values")
        b = bytes(v)
    else:
        w.shape(f"hash32 must be 64 hex digits, got {v!r}")
    w.put(b, "hash32")
    return b


def put_ip(w: Writer, v) -> str:
    """`ip`: u8 family 4 + 4 bytes, or 6 + 16 bytes, network byte order."""
    text = v
    if isinstance(v, dict):  # tolerate {"v4": "..."} / {"family": 4, "address": "..."}
        for k in ("v4", "V4", "ipv4", "v6", "V6", "ipv6", "address", "addr"):
            if k in v:
                text = v[k]
                break
        w.note(f"ip given as object {dict(v)!r}")
    if not isinstance(text, str):
        w.shape(f"ip must be an IPv4 or IPv6 address string, got {v!r}")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        w.shape(f"not an IP address: {text!r}")
    if isinstance(v, dict) and "family" in v and v["family"] != addr.version:
        w.fail(f"ip family {v['family']} does not match address {text}", "UNKNOWN_ENUM_VALUE")
    w.put(bytes([addr.version]), "ip family")
    w.put(addr.packed, f"ipv{addr.version} address")
    return text


def put_option(w: Writer, v, put_inner, *args):
    """`option<T>`: u8 0 absent; u8 1 then T."""
    if v is None:
        w.put(b"\x00", "option tag (absent)")
        return None
    w.put(b"\x01", "option tag (present)")
    return put_inner(w, v, *args)


def put_list(w: Writer, v, max_count: int, put_elem, *args, min_count: int = 0):
    """`list<T>(N)`: u16 count (<= N else LIST_TOO_LONG), then the elements."""
    if not isinstance(v, list):
        w.shape(f"list expected, got {v!r}")
    if len(v) > max_count:
        w.fail(f"list of {len(v)} above its maximum {max_count}", "LIST_TOO_LONG")
    if len(v) < min_count:
        w.fail(f"list of {len(v)} below its minimum {min_count}", "INVALID_FIELD")
    w.put(struct.pack("<H", len(v)), f"list({max_count}) count")
    for i, x in enumerate(v):
        with w.field(f"[{i}]"):
            put_elem(w, x, *args)
    return v


def _snake(name: str) -> str:
    """'LiveBid' / 'LIVE_BID' / 'live-bid' -> 'live_bid'."""
    if name.isupper() or name.islower():
        return name.lower().replace("-", "_")
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower().replace("-", "_")


class Enum:
    """A closed enum of the spec: snake_case name -> wire value."""

    def __init__(self, name: str, values: dict[str, int], width: int = 1):
        self.name = name
        self.values = values
        self.by_value = {v: k for k, v in values.items()}
        self.width = width

    def resolve(self, w: Writer, v) -> tuple[str, int]:
        if isinstance(v, str):
            key = _snake(v)
            if key != v:
                w.note(f"enum {self.name} value {v!r} read as {key!r}")
            if key not in self.values:
                w.fail(f"{v!r} is not a {self.name} value ({', '.join(self.values)})",
                       "UNKNOWN_ENUM_VALUE")
            return key, self.values[key]
        if isinstance(v, int) and not isinstance(v, bool):
            w.note(f"enum {self.name} given as integer {v}")
            if v not in self.by_value:
                w.fail(f"{v} is not a {self.name} value", "UNKNOWN_ENUM_VALUE")
            return self.by_value[v], v
        w.shape(f"{self.name} must be one of {', '.join(self.values)}, got {v!r}")


def put_enum(w: Writer, v, enum: Enum) -> str:
    """`enum`: u8 (or u16 where the field says so) with the field's listed values."""
    name, num = enum.resolve(w, v)
    w.put(num.to_bytes(enum.width, "little"), f"enum {enum.name} = {num} ({name})")
    return name


def put_code(w: Writer, v) -> int:
    """`code`: u16 reason or error code; an open set, any u16 is accepted."""
    _int(w, v, 0, 2**16 - 1, "code")
    w.put(struct.pack("<H", v), "code u16")
    return v


ROLE = Enum("role", {"seller": 1, "buyer": 2, "admin": 3})
SALE_MODE_REQUEST = Enum("sale_mode", {"exclusive": 1, "shared": 2, "either": 3})
SALE_MODE = Enum("sale_mode", {"exclusive": 1, "shared": 2})
PING_OUTCOME = Enum("outcome", {"offer": 1, "no_sale": 2})
POST_OUTCOME = Enum("outcome", {"sold": 1, "unsold": 2})
ACK_OUTCOME = Enum("outcome", {"accept": 1, "reject": 2})
PUT_MODE = Enum("put_mode", {"create": 1, "update": 2, "upsert": 3})
STATUS = Enum("status", {"active": 1, "paused": 2})
ATTRIBUTE_KIND = Enum("attribute kind", {"integer": 1, "decimal": 2, "string": 3, "bool": 4, "enum": 5})
STRATEGY = Enum("strategy", {"highest_bid": 1, "second_price": 2, "round_robin": 3,
                             "weighted": 4, "first_to_accept": 5})
DELIVERY = Enum("delivery", {"live": 1, "stored": 2})
CAMPAIGN_ROLE = Enum("role", {"primary": 1, "fallback": 2})
EFFECT = Enum("effect", {"include": 1, "exclude": 2})
TERRITORY_KIND = Enum("territory kind", {"postal": 1, "prefix": 2, "region": 3, "radius": 4, "country": 5})
FILTER_KIND = Enum("filter kind", {"int_range": 1, "decimal_range": 2, "one_of": 3, "is": 4,
                                   "present": 5, "absent": 6})
PRICING_KIND = Enum("pricing kind", {"fixed": 1, "live_bid": 2})
SET_STATUS_TARGET = Enum("target", {"seller": 1, "buyer": 2, "campaign": 3})
TRACE_KEY = Enum("key", {"lead": 1, "ping": 2})
SALE_MODE_BITS = {"exclusive": 1, "shared": 2}


# --- helpers for structures -------------------------------------------------------------------

def _obj(w: Writer, v, what: str) -> dict:
    if not isinstance(v, dict):
        w.shape(f"{what} must be a JSON object, got {v!r}")
    return v


def fld(w: Writer, m: dict, key: str, put, *args, **kw):
    """Write field `key` of JSON object `m` with encoder `put`."""
    with w.field(key):
        if key not in m:
            if put is put_option:
                w.note("option field missing from the JSON: encoded as absent")
                return put(w, None, *args, **kw)
            w.shape("missing field")
        return put(w, m[key], *args, **kw)


def _variant(w: Writer, v, enum: Enum, parent: dict | None = None) -> tuple[str, dict]:
    """Resolve a tagged union value to (variant name, fields object).

    Accepts "name" (fields then come from `parent`, i.e. flattened, or are empty),
    {"name": {...fields}} (externally tagged), {"name": scalar} for one-field variants
    (caller handles), {"kind": "name", ...fields} (internally tagged)."""
    if isinstance(v, str) or (isinstance(v, int) and not isinstance(v, bool)):
        name, _ = enum.resolve(w, v)
        return name, parent if parent is not None else {}
    if isinstance(v, dict):
        for tag in ("kind", "type"):
            if tag in v and isinstance(v[tag], str):
                name, _ = enum.resolve(w, v[tag])
                w.note(f"{enum.name} union internally tagged with {tag!r}")
                return name, v
        keys = [k for k in v if _snake(k) in enum.values and (v[k] is None or not isinstance(v[k], str))]
        if len(keys) == 1:
            k = keys[0]
            if _snake(k) != k:
                w.note(f"union variant {k!r} read as {_snake(k)!r}")
            inner = v[k]
            return _snake(k), inner
        w.shape(f"cannot tell the {enum.name} variant of {v!r} "
                f"(expected one of {', '.join(enum.values)})")
    w.shape(f"{enum.name} union expected, got {v!r}")


def _variant_fields(w: Writer, name: str, inner, field_names: list[str]) -> dict:
    """Normalize a variant's payload to a dict of its fields."""
    if inner is None or inner is True:
        inner = {}
    if isinstance(inner, dict):
        return inner
    if len(field_names) == 1:  # {"is": true}, {"one_of": [...]}, {"no_sale": 401}
        w.note(f"variant {name!r} payload given as a bare value")
        return {field_names[0]: inner}
    w.shape(f"variant {name!r} payload must be an object, got {inner!r}")


# --- attributes -------------------------------------------------------------------------------

_ATTR_FIELDS = {"integer": ["value"], "decimal": ["mantissa", "scale"], "string": ["value"],
                "bool": ["value"], "enum": ["value"]}


def put_attribute_value(w: Writer, v) -> None:
    """An attribute's `kind` (u8) and its value, from {"integer": 720}, {"decimal":
    {"mantissa": 14550, "scale": 2}}, {"string": "..."}, {"bool": true}, {"enum": "asphalt"}."""
    v = _obj(w, v, "attribute value")
    if "kind" in v:
        name, _ = ATTRIBUTE_KIND.resolve(w, v["kind"])
        w.note("attribute value given as {kind, value}")
        payload = v if name == "decimal" and "mantissa" in v else v.get("value")
    else:
        keys = [k for k in v if k != "key" and _snake(k) in ATTRIBUTE_KIND.values]
        if len(keys) != 1:
            w.shape(f"attribute value must have exactly one of integer/decimal/string/bool/enum: {v!r}")
        name = _snake(keys[0])
        payload = v[keys[0]]
    with w.field("kind"):
        put_enum(w, name, ATTRIBUTE_KIND)
    with w.field("value"):
        if name == "integer":
            put_i64(w, payload)
        elif name == "decimal":
            if isinstance(payload, list) and len(payload) == 2:
                w.note("decimal given as [mantissa, scale]")
                payload = {"mantissa": payload[0], "scale": payload[1]}
            d = _obj(w, payload, "decimal")
            fld(w, d, "mantissa", put_i64)
            with w.field("scale"):
                if "scale" not in d:
                    w.shape("missing field")
                _int(w, d["scale"], 0, 255, "u8")
                if d["scale"] > 9:
                    w.fail(f"decimal scale {d['scale']} above 9", "INVALID_FIELD")
                put_u8(w, d["scale"])
        elif name == "string":
            put_str(w, payload, 256)
        elif name == "bool":
            put_bool(w, payload)
        else:
            put_symbol(w, payload)


def put_attributes(w: Writer, v) -> None:
    """`attributes`: list<attribute>(64); keys strictly ascending by bytes.

    A JSON object is encoded sorted by key bytes; a JSON list of {"key": ..., <value>} keeps
    its order and must already be strictly ascending (else DUPLICATE_ATTRIBUTE /
    ATTRIBUTES_UNSORTED)."""
    if isinstance(v, dict):
        dups = getattr(v, "duplicate_keys", ())
        if dups:
            w.fail(f"attribute key {dups[0]!r} appears twice", "DUPLICATE_ATTRIBUTE")
        if not all(isinstance(k, str) for k in v):
            w.shape("attribute keys must be strings")
        entries = [(k, v[k]) for k in sorted(dict.keys(v), key=lambda k: k.encode("utf-8"))]
    elif isinstance(v, list):
        entries = []
        for i, e in enumerate(v):
            with w.field(f"[{i}]"):
                e = _obj(w, e, "attribute")
                if "key" not in e:
                    w.shape("attribute without key")
                entries.append((e["key"], e))
    else:
        w.shape(f"attributes must be an object or a list, got {v!r}")
    if len(entries) > ATTRIBUTES_MAX:
        w.fail(f"{len(entries)} attributes above ATTRIBUTES_MAX {ATTRIBUTES_MAX}", "LIST_TOO_LONG")
    w.put(struct.pack("<H", len(entries)), "attributes count")
    prev: bytes | None = None
    for i, (key, val) in enumerate(entries):
        with w.field(f"[{i}]"):
            with w.field("key"):
                put_symbol(w, key)  # the key's own str/symbol checks come first, then order
                kb = key.encode("utf-8")
                if prev is not None and kb == prev:
                    w.fail(f"attribute key {key!r} repeats the previous key", "DUPLICATE_ATTRIBUTE")
                if prev is not None and kb < prev:
                    w.fail(f"attribute key {key!r} sorts before the previous key", "ATTRIBUTES_UNSORTED")
            prev = kb
            with w.field(key):
                put_attribute_value(w, val)


# --- lead view, contact, consent ---------------------------------------------------------------

def put_lead_view(w: Writer, v) -> None:
    """`lead_view`: vertical, country, postal_code, attributes."""
    v = _obj(w, v, "lead_view")
    fld(w, v, "vertical", put_symbol)
    fld(w, v, "country", put_country)
    fld(w, v, "postal_code", put_postal_code)
    fld(w, v, "attributes", put_attributes)


CONTACT_FIELDS = [("first_name", 64), ("last_name", 64), ("phone", 20), ("email", 254),
                  ("street", 128), ("city", 64), ("region", 64)]


def put_contact(w: Writer, v) -> None:
    """`contact`: seven strings."""
    v = _obj(w, v, "contact")
    for key, n in CONTACT_FIELDS:
        fld(w, v, key, put_str, n)


def put_consent(w: Writer, v) -> None:
    """`consent`: certificate_id, text_version, consented_at, ip, user_agent, page_url."""
    v = _obj(w, v, "consent")
    fld(w, v, "certificate_id", put_str, 256)
    fld(w, v, "text_version", put_str, 64)
    fld(w, v, "consented_at", put_timestamp)
    fld(w, v, "ip", put_ip)
    fld(w, v, "user_agent", put_str, 512)
    fld(w, v, "page_url", put_str, 512)


# --- admin structures --------------------------------------------------------------------------

def put_required_attribute(w: Writer, v) -> None:
    v = _obj(w, v, "required_attribute")
    fld(w, v, "key", put_symbol)
    fld(w, v, "kind", put_enum, ATTRIBUTE_KIND)


def put_tier(w: Writer, v) -> None:
    v = _obj(w, v, "tier")
    fld(w, v, "tier", put_u8)
    fld(w, v, "strategy", put_enum, STRATEGY)


def put_floor(w: Writer, v) -> None:
    v = _obj(w, v, "floor")
    fld(w, v, "vertical", put_symbol)
    fld(w, v, "price", put_money)


def _nonzero_u64(w: Writer, v) -> int:
    put_u64(w, v)
    w.domain(v != 0, "id must be non-zero", "INVALID_FIELD")
    return v


def put_seller(w: Writer, v) -> None:
    v = _obj(w, v, "seller")
    fld(w, v, "seller_id", _nonzero_u64)
    fld(w, v, "name", put_str, 64)
    fld(w, v, "status", put_enum, STATUS)
    fld(w, v, "secret", put_option, put_str, 128)
    fld(w, v, "verticals", put_list, 64, put_symbol)
    with w.field("margin_bps"):
        if "margin_bps" not in v:
            w.shape("missing field")
        put_u16(w, v["margin_bps"])
        if v["margin_bps"] > 10_000:
            w.fail(f"margin_bps {v['margin_bps']} above 10000", "INVALID_FIELD")
    fld(w, v, "margin_fixed", put_money)
    fld(w, v, "floors", put_list, 64, put_floor)
    fld(w, v, "buyers_allowed", put_list, 1024, put_u64)
    fld(w, v, "buyers_blocked", put_list, 1024, put_u64)


def put_buyer(w: Writer, v) -> None:
    v = _obj(w, v, "buyer")
    fld(w, v, "buyer_id", _nonzero_u64)
    fld(w, v, "name", put_str, 64)
    fld(w, v, "status", put_enum, STATUS)
    fld(w, v, "secret", put_option, put_str, 128)
    fld(w, v, "time_zone", put_str, 64)
    fld(w, v, "budget_day", put_money)
    fld(w, v, "budget_month", put_money)
    fld(w, v, "delivery", put_enum, DELIVERY)
    fld(w, v, "accept_within_ms", put_duration_ms)


_TERRITORY_FIELDS = {
    "postal": [("country", put_country, ()), ("postal_code", put_postal_code, ())],
    "prefix": [("country", put_country, ()), ("prefix", put_postal_code, ())],
    "region": [("country", put_country, ()), ("region", put_str, (8,))],
    "radius": [("country", put_country, ()), ("center", put_postal_code, ()), ("radius_miles", put_u16, ())],
    "country": [("country", put_country, ())],
}


def _wrapper_key(w: Writer, v: dict, known: tuple, fixed: tuple, enum: Enum) -> str | None:
    """The key under which a union sits inside a structure ({"effect": .., "rule": {..}}):
    one of `known`, or else the only other key, when its value is an object or a string
    and no key of `v` is itself a variant name or "kind"."""
    for k in known:
        if k in v:
            return k
    rest = [k for k in v if k not in fixed]
    if "kind" in v or any(_snake(k) in enum.values for k in rest):
        return None
    if len(rest) == 1 and isinstance(v[rest[0]], (dict, str)):
        w.note(f"{enum.name} union read from unexpected wrapper key {rest[0]!r}")
        return rest[0]
    return None


def put_territory_rule(w: Writer, v) -> None:
    """`territory_rule`: effect (u8 enum), kind (u8 enum), the kind's fields."""
    v = _obj(w, v, "territory_rule")
    fld(w, v, "effect", put_enum, EFFECT)
    wrapper = _wrapper_key(w, v, ("rule", "condition", "area", "match"), ("effect",), TERRITORY_KIND)
    if wrapper:
        src = v[wrapper]
    elif "kind" in v:
        src = _subset(v, lambda k, x: k != "effect")
    else:
        # {"effect": "include", "radius": {...}}: keep only variant-looking keys
        src = _subset(v, lambda k, x: _snake(k) in TERRITORY_KIND.values and isinstance(x, (dict, type(None))))
        if not src:
            w.shape(f"cannot find the territory rule kind in {v!r}")
    with w.field("rule"):
        name, inner = _variant(w, src, TERRITORY_KIND)
    names = [f for f, _, _ in _TERRITORY_FIELDS[name]]
    fields = _variant_fields(w, name, inner, names)
    with w.field("kind"):
        put_enum(w, name, TERRITORY_KIND)
    with w.field(name):
        for key, put, args in _TERRITORY_FIELDS[name]:
            fld(w, fields, key, put, *args)


def _put_decimal_scale(w: Writer, v) -> int:
    put_u8(w, v)
    w.domain(v <= 9, f"decimal_range scale {v} above 9", "INVALID_FIELD")
    return v


_FILTER_FIELDS = {
    "int_range": [("min", put_i64, ()), ("max", put_i64, ())],
    "decimal_range": [("min", put_i64, ()), ("max", put_i64, ()), ("scale", _put_decimal_scale, ())],
    "one_of": [("values", put_list, (64, put_str, 256))],
    "is": [("value", put_bool, ())],
    "present": [],
    "absent": [],
}


def put_filter(w: Writer, v) -> None:
    """`filter`: key (symbol), kind (u8 enum), the kind's fields."""
    v = _obj(w, v, "filter")
    fld(w, v, "key", put_symbol)
    wrapper = _wrapper_key(w, v, ("filter", "condition", "rule", "test"), ("key",), FILTER_KIND)
    if wrapper:
        src = v[wrapper]
    elif "kind" in v:
        src = _subset(v, lambda k, x: k != "key")
    else:
        src = _subset(v, lambda k, x: k != "key" and _snake(k) in FILTER_KIND.values)
    with w.field("filter"):
        name, inner = _variant(w, src, FILTER_KIND)
    names = [f for f, _, _ in _FILTER_FIELDS[name]]
    fields = _variant_fields(w, name, inner, names) if names else {}
    with w.field("kind"):
        put_enum(w, name, FILTER_KIND)
    with w.field(name):
        for key, put, args in _FILTER_FIELDS[name]:
            fld(w, fields, key, put, *args)


def put_window(w: Writer, v) -> None:
    """`window`: weekday u8 (1..=7), open_minute u16, close_minute u16 (open < close <= 1440)."""
    v = _obj(w, v, "window")
    day = fld(w, v, "weekday", put_u8)
    with w.field("weekday"):
        w.domain(1 <= day <= 7, f"weekday {day} outside 1..=7", "INVALID_FIELD")
    o = fld(w, v, "open_minute", put_u16)
    c = fld(w, v, "close_minute", put_u16)
    with w.field("close_minute"):
        w.domain(c <= 1440, f"close_minute {c} above 1440", "INVALID_FIELD")
        w.exchange(o < c, f"window {o}..{c}: open_minute must be below close_minute (INVALID_DEFINITION 702)")


CAPS_FIELDS = [("leads_hour", put_u32), ("leads_day", put_u32), ("leads_week", put_u32),
               ("leads_month", put_u32), ("leads_total", put_u32),
               ("spend_day", put_money), ("spend_month", put_money)]


def put_caps(w: Writer, v) -> None:
    v = _obj(w, v, "caps")
    for key, put in CAPS_FIELDS:
        fld(w, v, key, put)


def put_sale_modes(w: Writer, v) -> int:
    """`sale_modes`: u8 bit set, 1 exclusive, 2 shared; 0 or other bits -> INVALID_FIELD.
    JSON: an integer, or a list of names."""
    if isinstance(v, list):
        bits = 0
        for name in v:
            if not isinstance(name, str) or _snake(name) not in SALE_MODE_BITS:
                w.fail(f"unknown sale mode {name!r} in sale_modes", "INVALID_FIELD")
            bit = SALE_MODE_BITS[_snake(name)]
            if bits & bit:
                w.note(f"sale mode {name!r} listed twice")
            bits |= bit
    elif isinstance(v, dict):
        w.note("sale_modes given as an object of flags")
        bits = sum(b for n, b in SALE_MODE_BITS.items() if v.get(n))
    else:
        bits = _int(w, v, 0, 255, "u8")
    if bits == 0 or bits & ~0x03:
        w.fail(f"sale_modes {bits:#04x}: must be non-zero with only bits 1 and 2", "INVALID_FIELD")
    w.put(bytes([bits]), "sale_modes u8 bit set")
    return bits


def put_pricing(w: Writer, v) -> None:
    """`pricing`: kind (u8 enum) and its fields."""
    name, inner = _variant(w, v, PRICING_KIND)
    fields = _variant_fields(w, name, inner, [])
    with w.field("kind"):
        put_enum(w, name, PRICING_KIND)
    with w.field(name):
        if name == "fixed":
            fld(w, fields, "exclusive_price", put_money)
            fld(w, fields, "shared_price", put_money)
        else:
            fld(w, fields, "bid_min", put_money)
            fld(w, fields, "bid_max", put_money)
            a = fld(w, fields, "adjust_bps", put_i16)
            with w.field("adjust_bps"):
                w.domain(-10_000 <= a <= 10_000, f"adjust_bps {a} outside -10000..=10000", "INVALID_FIELD")
            w.exchange(fields["bid_min"] <= fields["bid_max"], "bid_min above bid_max (INVALID_DEFINITION 702)")


def put_campaign(w: Writer, v) -> None:
    v = _obj(w, v, "campaign")
    fld(w, v, "campaign_id", _nonzero_u64)
    fld(w, v, "buyer_id", put_u64)
    fld(w, v, "name", put_str, 64)
    fld(w, v, "status", put_enum, STATUS)
    fld(w, v, "vertical", put_symbol)
    fld(w, v, "role", put_enum, CAMPAIGN_ROLE)
    fld(w, v, "territory", put_list, 16384, put_territory_rule)
    fld(w, v, "filters", put_list, 64, put_filter)
    fld(w, v, "schedule", put_list, 64, put_window)
    fld(w, v, "caps", put_caps)
    fld(w, v, "sale_modes", put_sale_modes)
    fld(w, v, "pricing", put_pricing)
    fld(w, v, "tier", put_u8)
    wt = fld(w, v, "weight", put_u16)
    with w.field("weight"):
        w.domain(wt >= 1, "weight must be at least 1", "INVALID_FIELD")
    fld(w, v, "duplicate_lookback_s", put_u32)


def put_receipt(w: Writer, v) -> None:
    v = _obj(w, v, "receipt")
    fld(w, v, "receipt_id", put_u64)
    fld(w, v, "payout", put_money)


def put_counter(w: Writer, v) -> None:
    v = _obj(w, v, "counter")
    fld(w, v, "name", put_str, 64)
    fld(w, v, "value", put_u64)


def put_latency(w: Writer, v) -> None:
    v = _obj(w, v, "latency")
    fld(w, v, "name", put_str, 64)
    for key in ("count", "p50_us", "p90_us", "p99_us", "p999_us", "max_us"):
        fld(w, v, key, put_u64)


def put_trace_event(w: Writer, v) -> None:
    v = _obj(w, v, "trace_event")
    fld(w, v, "at", put_timestamp)
    fld(w, v, "kind", put_u16)  # plain u16 (codes.md trace event kinds), not an enum
    fld(w, v, "party_id", put_u64)
    fld(w, v, "amount", put_money)
    fld(w, v, "code", put_code)
    fld(w, v, "detail", put_str, 256)


# Standalone versions, one per section 2 encoding (and the structures).
enc_u8 = _standalone(put_u8, "u8")
enc_u16 = _standalone(put_u16, "u16")
enc_u32 = _standalone(put_u32, "u32")
enc_u64 = _standalone(put_u64, "u64")
enc_i16 = _standalone(put_i16, "i16")
enc_i32 = _standalone(put_i32, "i32")
enc_i64 = _standalone(put_i64, "i64")
enc_bool = _standalone(put_bool, "bool")
enc_money = _standalone(put_money, "money")
enc_timestamp = _standalone(put_timestamp, "timestamp")
enc_duration_ms = _standalone(put_duration_ms, "duration_ms")
enc_str = _standalone(put_str, "str")                # enc_str(value, N)
enc_symbol = _standalone(put_symbol, "symbol")
enc_country = _standalone(put_country, "country")
enc_currency = _standalone(put_currency, "currency")
enc_postal_code = _standalone(put_postal_code, "postal_code")
enc_hash32 = _standalone(put_hash32, "hash32")
enc_ip = _standalone(put_ip, "ip")
enc_option = _standalone(put_option, "option")       # enc_option(value, put_inner, *args)
enc_list = _standalone(put_list, "list")             # enc_list(values, N, put_elem, *args)
enc_enum = _standalone(put_enum, "enum")             # enc_enum(name, ENUM)
enc_code = _standalone(put_code, "code")
enc_attributes = _standalone(put_attributes, "attributes")
enc_lead_view = _standalone(put_lead_view, "lead_view")
enc_contact = _standalone(put_contact, "contact")
enc_consent = _standalone(put_consent, "consent")


# ---------------------------------------------------------------------------------------------
# Sections 4 to 8: message bodies
# ---------------------------------------------------------------------------------------------

def body_login(w, m):
    fld(w, m, "role", put_enum, ROLE)
    fld(w, m, "principal_id", put_u64)
    fld(w, m, "secret", put_str, 128)
    fld(w, m, "version_min", put_u8)
    fld(w, m, "version_max", put_u8)
    fld(w, m, "heartbeat_interval_ms", put_u32)
    fld(w, m, "last_delivery_seq", put_u64)
    fld(w, m, "client_name", put_str, 64)


def body_login_accepted(w, m):
    fld(w, m, "session_id", put_u64)
    fld(w, m, "version", put_u8)
    fld(w, m, "heartbeat_interval_ms", put_u32)
    fld(w, m, "frame_length_max", put_u32)
    fld(w, m, "in_flight_max", put_u32)
    fld(w, m, "currency", put_currency)
    fld(w, m, "server_time", put_timestamp)


def body_code_message(w, m):  # LOGIN_REJECTED, GOODBYE (reason) and ERROR (code)
    fld(w, m, "reason", put_code)
    fld(w, m, "message", put_str, 256)


def body_error(w, m):
    fld(w, m, "code", put_code)
    fld(w, m, "message", put_str, 256)


def body_heartbeat(w, m):  # HEARTBEAT and HEARTBEAT_ACK
    fld(w, m, "sent_at", put_timestamp)


def body_empty(w, m):  # GOODBYE_ACK, STATS_REQUEST
    pass


def _ping_fields(w, m):
    fld(w, m, "client_token", put_u64)
    fld(w, m, "lead", put_lead_view)
    fld(w, m, "phone_hash", put_option, put_hash32)
    fld(w, m, "email_hash", put_option, put_hash32)
    mode = fld(w, m, "sale_mode", put_enum, SALE_MODE_REQUEST)
    n = fld(w, m, "shared_buyers_max", put_u8)
    with w.field("shared_buyers_max"):
        if mode == "exclusive" and n != 0:
            w.fail(f"shared_buyers_max {n} must be 0 when sale_mode is exclusive", "INVALID_FIELD")
        if mode != "exclusive" and not 1 <= n <= SHARED_BUYERS_MAX:
            w.fail(f"shared_buyers_max {n} must be 1..={SHARED_BUYERS_MAX} when sale_mode is {mode}",
                   "INVALID_FIELD")
    fld(w, m, "timeout_ms", put_duration_ms)


def body_ping(w, m):
    _ping_fields(w, m)


def body_ping_result(w, m):
    fld(w, m, "ping_id", put_u64)
    with w.field("outcome"):
        if "outcome" not in m:
            w.shape("missing field")
        name, inner = _variant(w, m["outcome"], PING_OUTCOME, parent=m)
        fields = _variant_fields(w, name, inner, ["reason"] if name == "no_sale" else [])
        put_enum(w, name, PING_OUTCOME)
    with w.field(name):
        if name == "offer":
            mode = fld(w, fields, "sale_mode", put_enum, SALE_MODE)
            payouts = fld(w, fields, "payouts", put_list, 8, put_money, min_count=1)
            with w.field("payouts"):
                w.exchange(mode != "exclusive" or len(payouts) == 1,
                         f"exclusive offer with {len(payouts)} payouts (spec: one entry when exclusive)")
            fld(w, fields, "post_within_ms", put_duration_ms)
        else:
            fld(w, fields, "reason", put_code)


def body_post(w, m):
    fld(w, m, "ping_id", put_u64)
    fld(w, m, "contact", put_contact)
    fld(w, m, "consent", put_consent)


def body_direct_post(w, m):
    _ping_fields(w, m)
    fld(w, m, "contact", put_contact)
    fld(w, m, "consent", put_consent)


def body_post_result(w, m):
    fld(w, m, "ping_id", put_u64)
    fld(w, m, "lead_id", put_u64)
    with w.field("outcome"):
        if "outcome" not in m:
            w.shape("missing field")
        name, inner = _variant(w, m["outcome"], POST_OUTCOME, parent=m)
        fields = _variant_fields(w, name, inner, ["reason"] if name == "unsold" else [])
        put_enum(w, name, POST_OUTCOME)
    with w.field(name):
        if name == "sold":
            mode = fld(w, fields, "sale_mode", put_enum, SALE_MODE)
            fld(w, fields, "payout_total", put_money)
            receipts = fld(w, fields, "receipts", put_list, 8, put_receipt, min_count=1)
            with w.field("receipts"):
                w.exchange(mode != "exclusive" or len(receipts) == 1,
                         f"exclusive sale with {len(receipts)} receipts")
        else:
            fld(w, fields, "reason", put_code)


def body_ping_offer(w, m):
    fld(w, m, "auction_id", put_u64)
    fld(w, m, "campaign_id", put_u64)
    fld(w, m, "lead", put_lead_view)
    fld(w, m, "sale_mode", put_enum, SALE_MODE)
    fld(w, m, "price_floor", put_money)
    fld(w, m, "bid_within_ms", put_duration_ms)


def body_bid(w, m):
    fld(w, m, "auction_id", put_u64)
    fld(w, m, "campaign_id", put_u64)
    fld(w, m, "price", put_money)


def body_no_bid(w, m):  # NO_BID and AUCTION_LOST
    fld(w, m, "auction_id", put_u64)
    fld(w, m, "campaign_id", put_u64)
    fld(w, m, "reason", put_code)


def body_auction_won(w, m):
    fld(w, m, "auction_id", put_u64)
    fld(w, m, "campaign_id", put_u64)
    fld(w, m, "price", put_money)
    fld(w, m, "sale_mode", put_enum, SALE_MODE)


def body_lead_delivery(w, m):
    fld(w, m, "delivery_seq", put_u64)
    fld(w, m, "lead_id", put_u64)
    fld(w, m, "auction_id", put_u64)
    fld(w, m, "campaign_id", put_u64)
    fld(w, m, "price", put_money)
    fld(w, m, "sale_mode", put_enum, SALE_MODE)
    fld(w, m, "lead", put_lead_view)
    fld(w, m, "contact", put_contact)
    fld(w, m, "consent", put_consent)
    fld(w, m, "delivered_at", put_timestamp)
    fld(w, m, "accept_within_ms", put_duration_ms)


def body_delivery_ack(w, m):
    fld(w, m, "delivery_seq", put_u64)
    fld(w, m, "lead_id", put_u64)
    with w.field("outcome"):
        if "outcome" not in m:
            w.shape("missing field")
        name, inner = _variant(w, m["outcome"], ACK_OUTCOME, parent=m)
        put_enum(w, name, ACK_OUTCOME)
    src = m if "reason" in m or not isinstance(inner, dict) else inner
    reason = fld(w, src, "reason", put_code)
    with w.field("reason"):
        w.exchange(name != "accept" or reason == 0, f"reason {reason} on an accepted delivery (spec: 0 when accepted)")


def body_vertical_put(w, m):
    fld(w, m, "mode", put_enum, PUT_MODE)
    fld(w, m, "vertical", put_symbol)
    fld(w, m, "required", put_list, 64, put_required_attribute)
    fld(w, m, "tiers", put_list, 16, put_tier)


def body_vertical_remove(w, m):
    fld(w, m, "vertical", put_symbol)


def _definition(w, m, key):
    if key in m:
        return m[key]
    w.note(f"{key} definition flattened at the message's top level")
    return _subset(m, lambda k, x: k not in ("type", "mode"))


def body_seller_put(w, m):
    fld(w, m, "mode", put_enum, PUT_MODE)
    with w.field("seller"):
        put_seller(w, _definition(w, m, "seller"))


def body_seller_remove(w, m):
    fld(w, m, "seller_id", put_u64)


def body_buyer_put(w, m):
    fld(w, m, "mode", put_enum, PUT_MODE)
    with w.field("buyer"):
        put_buyer(w, _definition(w, m, "buyer"))


def body_buyer_remove(w, m):
    fld(w, m, "buyer_id", put_u64)


def body_campaign_put(w, m):
    fld(w, m, "mode", put_enum, PUT_MODE)
    with w.field("campaign"):
        put_campaign(w, _definition(w, m, "campaign"))


def body_campaign_remove(w, m):
    fld(w, m, "campaign_id", put_u64)


def body_set_status(w, m):
    fld(w, m, "target", put_enum, SET_STATUS_TARGET)
    fld(w, m, "id", put_u64)
    fld(w, m, "status", put_enum, STATUS)


def body_admin_ok(w, m):
    fld(w, m, "book_version", put_u64)


def body_stats(w, m):
    fld(w, m, "uptime_ms", put_u64)
    fld(w, m, "counters", put_list, 256, put_counter)
    fld(w, m, "latencies", put_list, 64, put_latency)


def body_trace_request(w, m):
    fld(w, m, "key", put_enum, TRACE_KEY)
    fld(w, m, "id", put_u64)


def body_trace(w, m):
    fld(w, m, "ping_id", put_u64)
    fld(w, m, "lead_id", put_u64)
    fld(w, m, "events", put_list, 1024, put_trace_event)


# name -> (message_type, body writer)  (README section 1, "Message types")
MESSAGES = {
    "LOGIN": (0x0001, body_login),
    "LOGIN_ACCEPTED": (0x0002, body_login_accepted),
    "LOGIN_REJECTED": (0x0003, body_code_message),
    "HEARTBEAT": (0x0004, body_heartbeat),
    "HEARTBEAT_ACK": (0x0005, body_heartbeat),
    "GOODBYE": (0x0006, body_code_message),
    "GOODBYE_ACK": (0x0007, body_empty),
    "ERROR": (0x0008, body_error),
    "PING": (0x0101, body_ping),
    "PING_RESULT": (0x0102, body_ping_result),
    "POST": (0x0103, body_post),
    "POST_RESULT": (0x0104, body_post_result),
    "DIRECT_POST": (0x0105, body_direct_post),
    "PING_OFFER": (0x0201, body_ping_offer),
    "BID": (0x0202, body_bid),
    "NO_BID": (0x0203, body_no_bid),
    "AUCTION_WON": (0x0204, body_auction_won),
    "AUCTION_LOST": (0x0205, body_no_bid),
    "LEAD_DELIVERY": (0x0206, body_lead_delivery),
    "DELIVERY_ACK": (0x0207, body_delivery_ack),
    "VERTICAL_PUT": (0x0301, body_vertical_put),
    "VERTICAL_REMOVE": (0x0302, body_vertical_remove),
    "SELLER_PUT": (0x0303, body_seller_put),
    "SELLER_REMOVE": (0x0304, body_seller_remove),
    "BUYER_PUT": (0x0305, body_buyer_put),
    "BUYER_REMOVE": (0x0306, body_buyer_remove),
    "CAMPAIGN_PUT": (0x0307, body_campaign_put),
    "CAMPAIGN_REMOVE": (0x0308, body_campaign_remove),
    "SET_STATUS": (0x0309, body_set_status),
    "ADMIN_OK": (0x030A, body_admin_ok),
    "STATS_REQUEST": (0x030B, body_empty),
    "STATS": (0x030C, body_stats),
    "TRACE_REQUEST": (0x030D, body_trace_request),
    "TRACE": (0x030E, body_trace),
}
MESSAGE_NAMES = {code: name for name, (code, _) in MESSAGES.items()}


def _message_name(w: Writer, t) -> str:
    if isinstance(t, int) and not isinstance(t, bool):
        if t not in MESSAGE_NAMES:
            w.fail(f"message type {t:#06x} not in the table", "UNKNOWN_MESSAGE_TYPE")
        w.note("message type given as a number")
        return MESSAGE_NAMES[t]
    if not isinstance(t, str):
        w.shape(f"message type must be a name, got {t!r}")
    name = _snake(t).upper()
    if name not in MESSAGES:
        w.fail(f"unknown message type {t!r}", "UNKNOWN_MESSAGE_TYPE")
    if name != t:
        w.note(f"message type {t!r} read as {name!r}")
    return name


def write_frame(w: Writer, message: dict, correlation_id: int = 0, version: int = PROTOCOL_VERSION,
                flags: int = 0) -> None:
    """Write a full frame: u32 frame_length, u16 message_type, u8 version, u8 flags,
    u64 correlation_id, body."""
    message = _obj(w, message, "message")
    with w.field("type"):
        if "type" not in message:
            w.shape("message without \"type\"")
        name = _message_name(w, message["type"])
    mtype, body = MESSAGES[name]
    start = len(w.buf)
    with w.field("frame_length"):
        w.put(b"\0\0\0\0", "u32 frame_length")
    with w.field("message_type"):
        w.put(struct.pack("<H", mtype), f"u16 message_type {name}")
    with w.field("version"):
        put_u8(w, version)
        if version != PROTOCOL_VERSION:
            w.fail(f"version {version}: this encoder implements version 1 only", "UNSUPPORTED_VERSION")
    with w.field("flags"):
        put_u8(w, flags)
        if flags != 0:
            w.fail("no flag is defined in version 1: flags must be 0", "BAD_FLAGS")
    with w.field("correlation_id"):
        put_u64(w, correlation_id)
    with w.field(name):
        body(w, message)
    frame_length = len(w.buf) - start - 4
    if frame_length > FRAME_LENGTH_MAX:
        raise SpecViolation(name, f"frame_length {frame_length} above FRAME_LENGTH_MAX {FRAME_LENGTH_MAX}",
                            "FRAME_TOO_LARGE")
    w.buf[start:start + 4] = struct.pack("<I", frame_length)


def encode_message(message: dict, correlation_id: int = 0, *, version: int = PROTOCOL_VERSION,
                   flags: int = 0, lenient: bool = False) -> bytes:
    """Full frame bytes for a message object {"type": "PING", ...fields}."""
    w = Writer(lenient)
    write_frame(w, message, correlation_id, version, flags)
    return bytes(w.buf)


def _make_encoder(name: str):
    def encode(message: dict, correlation_id: int = 0, *, version: int = PROTOCOL_VERSION,
               flags: int = 0, lenient: bool = False) -> bytes:
        m = dict(message)
        m["type"] = name
        return encode_message(m, correlation_id, version=version, flags=flags, lenient=lenient)

    encode.__name__ = "encode_" + name.lower()
    encode.__doc__ = f"Full frame bytes of a {name} (type {MESSAGES[name][0]:#06x}); fields as the spec names them."
    return encode


# encode_login, encode_login_accepted, ..., encode_trace: one per message type.
for _name in MESSAGES:
    globals()["encode_" + _name.lower()] = _make_encoder(_name)
del _name


def encode_frame_traced(frame: dict, lenient: bool = False) -> Writer:
    """Encode the JSON frame convention {"version", "flags", "correlation_id", "message"};
    returns the Writer (bytes in .buf, field spans in .spans, notes in .warnings)."""
    w = Writer(lenient)
    frame = _obj(w, frame, "frame")
    message = frame.get("message")
    if message is None and "type" in frame:
        w.note("frame without \"message\": message fields read from the frame object")
        message = _subset(frame, lambda k, x: k not in ("version", "flags", "correlation_id"))
    for key, default in (("version", 1), ("flags", 0), ("correlation_id", 0)):
        if key not in frame:
            w.note(f"frame has no {key!r}; using {default}")
    write_frame(w, message, frame.get("correlation_id", 0), frame.get("version", PROTOCOL_VERSION),
                frame.get("flags", 0))
    _unused_keys(w, frame, "frame", top=True)
    return w


def encode_frame(frame: dict, lenient: bool = False) -> bytes:
    return bytes(encode_frame_traced(frame, lenient).buf)


# ---------------------------------------------------------------------------------------------
# JSON loading with key-use tracking (to report JSON shape differences)
# ---------------------------------------------------------------------------------------------

class TrackedDict(dict):
    """A JSON object that remembers which keys the encoder read."""

    def __init__(self, pairs):
        super().__init__()
        self.used: set = set()
        self.duplicate_keys: list = []
        for k, v in pairs:
            if k in self:
                self.duplicate_keys.append(k)
            dict.__setitem__(self, k, v)

    def __getitem__(self, k):
        self.used.add(k)
        return dict.__getitem__(self, k)

    def get(self, k, default=None):
        self.used.add(k)
        return dict.get(self, k, default)



def _subset(v: dict, keep) -> dict:
    """The entries of `v` whose key passes `keep`; reads of the subset count as reads of `v`."""
    pairs = [(k, dict.__getitem__(v, k)) for k in dict.keys(v) if keep(k, dict.__getitem__(v, k))]
    if isinstance(v, TrackedDict):
        sub = TrackedDict(pairs)
        sub.used = v.used
        return sub
    return dict(pairs)


_IGNORED_KEYS = {"type", "description", "comment", "_comment", "note"}


def _unused_keys(w: Writer, v, path: str, top: bool = False) -> None:
    if isinstance(v, TrackedDict):
        if getattr(v, "duplicate_keys", None):
            w.warnings.append(f"{path}: duplicate JSON keys {v.duplicate_keys}")
        for k in dict.keys(v):
            child = dict.__getitem__(v, k)
            if k not in v.used and k not in _IGNORED_KEYS:
                w.warnings.append(f"{path}.{k}: JSON key not used by the encoder")
            else:
                _unused_keys(w, child, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _unused_keys(w, x, f"{path}[{i}]")


def load_json(path: Path):
    with open(path, encoding="utf-8") as f:
        return json.load(f, object_pairs_hook=TrackedDict)


def cases_of(doc) -> list:
    """A vector file is an array of cases, or {"cases": [...]}; a lone case is accepted too."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if "cases" in doc:
            return doc["cases"]
        if "frame" in doc or "error" in doc:
            return [doc]
    raise ValueError("not a vector file: expected an array of cases or {\"cases\": [...]}")


def _hex_of(case) -> bytes:
    h = case["hex"]
    if isinstance(h, list):
        h = "".join(h)
    return bytes.fromhex("".join(h.split()))


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------

def _fmt_byte(b: int | None) -> str:
    return "end" if b is None else f"0x{b:02x}"


def check_dir(directory: Path, lenient: bool, verbose: bool, out=sys.stdout) -> int:
    files = sorted(p for p in directory.rglob("*.json") if p.is_file())
    passed = failed = skipped = 0
    for path in files:
        rel = path.relative_to(directory) if path.is_relative_to(directory) else path
        try:
            cases = cases_of(load_json(path))
        except (ValueError, OSError) as e:
            print(f"FAIL {rel}: cannot read vector file: {e}", file=out)
            failed += 1
            continue
        for i, case in enumerate(cases):
            name = case.get("name", f"#{i}") if isinstance(case, dict) else f"#{i}"
            label = f"{rel}:{name}"
            if not isinstance(case, dict):
                print(f"FAIL {label}: case is not an object", file=out)
                failed += 1
                continue
            if "error" in case:
                skipped += 1
                continue
            if "frame" not in case:
                print(f"SKIP {label}: neither \"frame\" nor \"error\"", file=out)
                skipped += 1
                continue
            try:
                expected = _hex_of(case)
            except (KeyError, ValueError, TypeError) as e:
                print(f"FAIL {label}: no usable \"hex\": {e!r}", file=out)
                failed += 1
                continue
            try:
                w = encode_frame_traced(case["frame"], lenient)
            except EncodeError as e:
                print(f"FAIL {label}: reference encoder refused the frame: {e}", file=out)
                failed += 1
                continue
            got = bytes(w.buf)
            if verbose:
                for note in w.warnings:
                    print(f"NOTE {label}: {note}", file=out)
            if got == expected:
                passed += 1
                continue
            failed += 1
            off = next((j for j in range(min(len(got), len(expected))) if got[j] != expected[j]),
                       min(len(got), len(expected)))
            e_b = expected[off] if off < len(expected) else None
            g_b = got[off] if off < len(got) else None
            print(f"FAIL {label}: first difference at byte offset {off}: vector {_fmt_byte(e_b)}, "
                  f"reference {_fmt_byte(g_b)} (vector {len(expected)} bytes, reference {len(got)}); "
                  f"field: {w.field_at(off)}", file=out)
            if not verbose:
                for note in w.warnings:
                    print(f"  note: {note}", file=out)
    if skipped:
        print(f"({skipped} malformed-input or unchecked cases skipped)", file=out)
    print(f"{passed} passed, {failed} failed", file=out)
    return 1 if failed or passed == 0 else 0


def _valid_cases(path: Path):
    for i, case in enumerate(cases_of(load_json(path))):
        if isinstance(case, dict) and "frame" in case and "error" not in case:
            yield case.get("name", f"#{i}"), case


def encode_file(path: Path, lenient: bool, fmt: str) -> int:
    rc = 0
    out_cases = []
    for name, case in _valid_cases(path):
        try:
            w = encode_frame_traced(case["frame"], lenient)
        except EncodeError as e:
            print(f"ERROR {name}: {e}", file=sys.stderr)
            rc = 1
            continue
        for note in w.warnings:
            print(f"note {name}: {note}", file=sys.stderr)
        if fmt == "json":
            c = dict(case)
            c["hex"] = w.buf.hex()
            out_cases.append(c)
        else:
            print(f"{name}: {w.buf.hex()}")
    if fmt == "json":
        print(json.dumps(out_cases, indent=2))
    return rc


def explain_file(path: Path, lenient: bool) -> int:
    rc = 0
    for name, case in _valid_cases(path):
        try:
            w = encode_frame_traced(case["frame"], lenient)
        except EncodeError as e:
            print(f"ERROR {name}: {e}")
            rc = 1
            continue
        print(f"== {name} ({len(w.buf)} bytes)")
        for start, end, fpath, what in w.spans:
            print(f"  {start:5d}  {w.buf[start:end].hex(' '):<48}  {fpath}  [{what}]")
        for note in w.warnings:
            print(f"  note: {note}")
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="pingpost v1 reference encoder (from the spec alone)")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--check", metavar="DIR", type=Path,
                   help="encode every valid case in DIR/**/*.json and compare with its hex")
    g.add_argument("--encode", metavar="FILE", type=Path, help="print the hex of each valid case")
    g.add_argument("--explain", metavar="FILE", type=Path, help="field-by-field dump of each valid case")
    ap.add_argument("--format", choices=("text", "json"), default="text",
                    help="--encode output: 'name: hex' lines, or the cases as JSON with hex filled in")
    ap.add_argument("--lenient", action="store_true",
                    help="domain checks (ranges without a 1xx code) become notes instead of errors")
    ap.add_argument("-v", "--verbose", action="store_true", help="--check: print notes for passing cases too")
    a = ap.parse_args(argv)
    if a.check:
        if not a.check.is_dir():
            print(f"{a.check}: not a directory", file=sys.stderr)
            print("0 passed, 0 failed")
            return 1
        return check_dir(a.check, a.lenient, a.verbose)
    if a.encode:
        return encode_file(a.encode, a.lenient, a.format)
    return explain_file(a.explain, a.lenient)


if __name__ == "__main__":
    sys.exit(main())
