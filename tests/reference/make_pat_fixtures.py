#!/usr/bin/env python3
"""Writes tests/reference/pat/: two tiny crafted GIMP patterns and patterns.csv, the expected
contents of every real pattern under /usr/share/gimp/2.0/patterns (Debian's gimp-data and
gimp-data-extras) and of the crafted ones.

Run:  /usr/bin/python3 tests/reference/make_pat_fixtures.py

The files are parsed here with the struct module, independently of baypr/io/pat.hpp, which
tests/io_pat.test.cpp checks against this table. The crafted files cover 2 bytes per pixel
(grey + alpha) and 4 (RGBA) with a non-square size and padding after the name's NUL; the system
patterns have no 2-byte file. Deterministic output.

patterns.csv: a header line, then one line per file, sorted by (root, path):
    root      'system' (relative to /usr/share/gimp/2.0/patterns) or 'fixture' (to this dir)
    path      relative path, '/'-separated
    width, height, channels
    name      the name up to its NUL (the generator refuses names with ',', '"' or newlines)
    crc32     zlib.crc32 of the pixel block, decimal
    byte_sum  sum of the pixel bytes
    grey_mean mean over pixels of the grey level (grey / 255, or (299 R + 587 G + 114 B) / 255000)
    grey_top_right, grey_bottom_left   grey level at (row 0, col width-1) and (row height-1, col 0)
with the floats written by repr() (shortest round trip).
"""
import csv
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "pat")
SYSTEM = "/usr/share/gimp/2.0/patterns"


def encode(name, width, height, channels, pixels, pad=0):
    name_field = name.encode("utf-8") + b"\0" + b"\0" * pad
    header = struct.pack(">5I4s", 24 + len(name_field), 1, width, height, channels, b"GPAT")
    assert len(pixels) == width * height * channels
    return header + name_field + bytes(pixels)


def grey(pixels, channels, i):
    p = pixels[i * channels:(i + 1) * channels]
    if channels < 3:
        return p[0] / 255
    return (299 * p[0] + 587 * p[1] + 114 * p[2]) / 255000


def describe(data):
    header_size, version, width, height, channels, magic = struct.unpack(">5I4s", data[:24])
    assert magic == b"GPAT" and version == 1 and 1 <= channels <= 4, (magic, version, channels)
    name_field = data[24:header_size]
    name = name_field[:name_field.index(b"\0")].decode("utf-8")
    if any(c in name for c in ',"\n\r'):
        sys.exit("make_pat_fixtures: name %r needs CSV quoting; extend the reader first" % name)
    pixels = data[header_size:]
    assert len(pixels) == width * height * channels, "trailing or missing pixel bytes"
    n = width * height
    mean = sum(grey(pixels, channels, i) for i in range(n)) / n
    return [width, height, channels, name, zlib.crc32(pixels), sum(pixels), repr(mean),
            repr(grey(pixels, channels, width - 1)), repr(grey(pixels, channels, (height - 1) * width))]


def main():
    os.makedirs(OUT, exist_ok=True)
    crafted = {
        # 3 wide x 2 high, grey + alpha; alpha must not leak into the grey level.
        "tiny_grey_alpha.pat": encode("Tiny grey+alpha", 3, 2, 2,
                                      [0, 255, 51, 0, 102, 7, 153, 9, 204, 128, 255, 1], pad=3),
        # 2 wide x 3 high, RGBA, UTF-8 name.
        "tiny_rgba.pat": encode("Tiny RGBA \u00e9", 2, 3, 4,
                                [255, 0, 0, 255, 0, 255, 0, 0, 0, 0, 255, 10,
                                 255, 255, 255, 20, 0, 0, 0, 30, 10, 20, 30, 40]),
    }
    for name, data in crafted.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)

    rows = []
    for name in sorted(crafted):
        with open(os.path.join(OUT, name), "rb") as f:
            rows.append(["fixture", name] + describe(f.read()))
    if not os.path.isdir(SYSTEM):
        sys.exit("make_pat_fixtures: %s is missing; install gimp-data and gimp-data-extras" % SYSTEM)
    system = []
    for d, _, files in os.walk(SYSTEM):
        for f in files:
            if f.endswith(".pat"):
                system.append(os.path.relpath(os.path.join(d, f), SYSTEM).replace(os.sep, "/"))
    for rel in sorted(system):
        with open(os.path.join(SYSTEM, rel), "rb") as f:
            rows.append(["system", rel] + describe(f.read()))

    with open(os.path.join(OUT, "patterns.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(["root", "path", "width", "height", "channels", "name", "crc32", "byte_sum", "grey_mean",
                    "grey_top_right", "grey_bottom_left"])
        w.writerows(rows)
    print("make_pat_fixtures: %d crafted + %d system patterns" % (len(crafted), len(system)))


if __name__ == "__main__":
    main()
