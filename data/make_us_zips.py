#!/usr/bin/env python3
"""Builds data/us-zips.bin, the compact US ZIP table the daemon embeds, from the shared CSV.

Usage: python3 data/make_us_zips.py [path/to/us-zips.csv] [path/to/us-zips.bin]
(defaults: ../shared/data/us-zips.csv and data/us-zips.bin, relative to the repository root).

The output is deterministic: the same CSV always gives the same bytes. Format (all integers
little-endian), read by src/engine/geo.rs:

    magic       8 bytes  b"PPZIPUS1"
    row_count   u32
    state_count u8
    states      state_count x 2 bytes, ASCII, sorted
    rows        row_count x 10 bytes, sorted by zip, no duplicates:
        zip     u24   the ZIP as a number, 0..=99999
        state   u8    index into states
        lat     i24   latitude in 1e-4 degrees (the CSV has at most 4 decimals, so exact)
        lon     i24   longitude in 1e-4 degrees

The city column is dropped: the daemon only needs the state (region rules) and the centroid
(radius rules).
"""

import csv
import os
import struct
import sys
from decimal import Decimal

MAGIC = b"PPZIPUS1"
I24_MIN, I24_MAX = -(1 << 23), (1 << 23) - 1


def fixed_e4(text):
    """Degrees as an exact integer count of 1e-4 degrees; refuses anything finer."""
    value = Decimal(text) * 10000
    if value != value.to_integral_value():
        raise ValueError(f"{text!r} has more than 4 decimals")
    number = int(value)
    if not I24_MIN <= number <= I24_MAX:
        raise ValueError(f"{text!r} does not fit 24 bits")
    return number


def i24(number):
    return (number & 0xFFFFFF).to_bytes(3, "little")


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "..", "shared", "data", "us-zips.csv")
    target = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "data", "us-zips.bin")

    with open(source, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    parsed = []
    for row in rows:
        zip_text, state = row["zip"], row["state"]
        if len(zip_text) != 5 or not zip_text.isdigit():
            raise ValueError(f"bad zip {zip_text!r}")
        if len(state) != 2 or not state.isascii() or not state.isupper():
            raise ValueError(f"bad state {state!r} for {zip_text}")
        parsed.append((int(zip_text), state, fixed_e4(row["latitude"]), fixed_e4(row["longitude"])))

    parsed.sort()
    for before, after in zip(parsed, parsed[1:]):
        if before[0] == after[0]:
            raise ValueError(f"duplicate zip {before[0]:05}")
    states = sorted({state for _, state, _, _ in parsed})
    if len(states) > 255:
        raise ValueError("too many states for a u8 index")
    state_ix = {state: ix for ix, state in enumerate(states)}

    out = bytearray(MAGIC)
    out += struct.pack("<IB", len(parsed), len(states))
    for state in states:
        out += state.encode("ascii")
    for number, state, lat, lon in parsed:
        out += number.to_bytes(3, "little") + bytes([state_ix[state]]) + i24(lat) + i24(lon)

    with open(target, "wb") as handle:
        handle.write(out)
    print(f"{target}: {len(parsed)} zips, {len(states)} states, {len(out)} bytes")


if __name__ == "__main__":
    main()
