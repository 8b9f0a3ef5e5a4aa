#!/usr/bin/env python3
"""Writes the .npy fixtures in tests/reference/npy/ and their expected contents, npy.txt.

Run with Debian's Python (the one that has NumPy):  /usr/bin/python3 tests/reference/generate_npy.py

The files are written by NumPy itself (numpy.save, or numpy.lib.format.write_array for format
versions 2.0 and 3.0), so tests/io_npy.test.cpp checks baypr's reader against NumPy's writer, and
baypr's writer byte for byte against numpy.save (the C-order, little-endian, version 1.0 files).
NumPy >= 1.23 pads headers with spare room for growing axis 0, which baypr reproduces; the
generator records the NumPy version in npy.txt.

npy.txt: '#' lines are comments; one line per file:
    <file> <descr> <fortran_order 0|1> <version> <rank> <dims...> <count> <values...>
with the values in C (row-major) order, floats written with repr() (exact: shortest round-trip
of the double, or of the float32 value widened to double), integers in decimal, bools as 0 / 1.
The output is deterministic.
"""
import io
import os
import sys

import numpy as np
from numpy.lib import format as npformat

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "npy")

F8_SPECIAL = [0.1, -0.0, 1e-300, 1.0 / 3.0, float("nan"), float("inf"), -float("inf"), 1e300,
              5e-324, -2.5, 123456789.125, 2.0 ** -1074 * 3]


def grid(shape, dtype, scale=1.0, offset=0.0):
    n = int(np.prod(shape))
    return (np.arange(n, dtype=np.float64) * scale + offset).reshape(shape).astype(dtype)


def fixtures():
    """(file name, array, format version or None for numpy.save)."""
    yield "f8_c_2d.npy", np.array(F8_SPECIAL, dtype="<f8").reshape(3, 4), None
    yield "f4_c_2d.npy", (grid((2, 5), "<f4", 0.37, -1.1) / np.float32(3)).astype("<f4"), None
    yield "f8_f_2d.npy", np.asfortranarray(grid((3, 4), "<f8", 0.5, -2.0) / 7.0), None
    yield "f4_f_3d.npy", np.asfortranarray(grid((2, 3, 4), "<f4", 1.25, -3.0)), None
    yield "f8_c_3d.npy", grid((2, 3, 4), "<f8", 1.0 / 9.0, 0.25), None
    yield "f8_1d.npy", np.array([1.5, -2.25, 1e-10, 7.0, 0.0], dtype="<f8"), None
    yield "f8_0d.npy", np.array(3.141592653589793, dtype="<f8"), None
    yield "f8_empty.npy", np.zeros((0, 3), dtype="<f8"), None
    yield "f8_v2.npy", grid((2, 3), "<f8", 0.1, 0.0), (2, 0)
    yield "f4_v3.npy", grid((2, 2), "<f4", -0.5, 1.0), (3, 0)
    yield "f8_be.npy", (grid((2, 3), "<f8", 0.3, -0.7) / 3.0).astype(">f8"), None
    yield "f4_be_f.npy", np.asfortranarray(grid((3, 2), ">f4", 0.75, -1.0)), None
    yield "i4_be.npy", np.array([1, -2, 70000, -2147483648], dtype=">i4"), None
    yield "u1_mask.npy", (np.arange(18).reshape(2, 3, 3) * 15).astype("|u1"), None
    yield "b1.npy", np.array([True, False, True, True, False], dtype="|b1"), None
    yield "i1.npy", np.array([-128, 127, 0, -1], dtype="|i1"), None
    yield "i2.npy", np.array([-32768, 32767, 5], dtype="<i2"), None
    yield "u2.npy", np.array([0, 65535, 7], dtype="<u2"), None
    yield "i4_labels.npy", np.array([0, 1, 0, 2, 1, -1], dtype="<i4"), None
    yield "u4.npy", np.array([0, 4294967295, 16777217], dtype="<u4"), None
    yield "i8_labels.npy", np.array([[0, 1, 2], [3, -4, 5]], dtype="<i8"), None
    yield "i8_big.npy", np.array([2 ** 53 + 1, -2 ** 63], dtype="<i8"), None
    yield "u8.npy", np.array([0, 1, 2 ** 64 - 1], dtype="<u8"), None


def value_text(v, kind):
    if kind == "f":
        return repr(float(v))
    if kind == "b":
        return "1" if v else "0"
    return str(int(v))


def main():
    os.makedirs(OUT, exist_ok=True)
    lines = [
        "# Expected contents of tests/reference/npy/*.npy, written by tests/reference/generate_npy.py",
        "# with NumPy %s (Python %s)." % (np.__version__, sys.version.split()[0]),
        "# <file> <descr> <fortran_order 0|1> <version> <rank> <dims...> <count> <values in C order...>",
    ]
    total = 0
    for name, a, version in fixtures():
        path = os.path.join(OUT, name)
        if version is None:
            np.save(path, a)
        else:
            buf = io.BytesIO()
            npformat.write_array(buf, a, version=version)
            with open(path, "wb") as f:
                f.write(buf.getvalue())
        # Read back with NumPy to record what the file holds, exactly as NumPy sees it.
        with open(path, "rb") as f:
            major, minor = npformat.read_magic(f)
        back = np.load(path)
        assert back.dtype == a.dtype and back.shape == a.shape
        fortran = bool(np.isfortran(a)) and a.ndim > 1
        flat = np.ascontiguousarray(back).reshape(-1)
        fields = [name, a.dtype.str, "1" if fortran else "0", str(major), str(a.ndim)]
        fields += [str(d) for d in a.shape]
        fields.append(str(flat.size))
        fields += [value_text(v, a.dtype.kind) for v in flat]
        lines.append(" ".join(fields))
        total += os.path.getsize(path)
    with open(os.path.join(HERE, "npy.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d files (%d bytes) and npy.txt" % (len(list(fixtures())), total))


if __name__ == "__main__":
    main()
