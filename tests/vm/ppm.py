#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The VM tier's screenshots: QEMU's screendump writes binary PPM (P6); the
comparison is tests/helpers/ppmdiff.c (fast enough under TCG).

  ppm.py png IN.ppm OUT.png            the same picture as PNG (for docs/)
  ppm.py pattern OUT.png W H           a test desktop's background: colour bars and a
                                       checkerboard, the same on every run
"""
import struct
import sys
import zlib


def read_ppm(path):
    with open(path, "rb") as f:
        data = f.read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos : pos + 1].isspace():
            pos += 1
        if data[pos : pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end : end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not an 8-bit binary PPM")
    w, h = int(fields[1]), int(fields[2])
    pixels = data[pos + 1 : pos + 1 + w * h * 3]
    if len(pixels) != w * h * 3:
        raise ValueError(f"{path}: {len(pixels)} bytes of pixels, want {w * h * 3}")
    return w, h, pixels


def write_png(path, w, h, rgb):
    def chunk(kind, body):
        c = kind + body
        return struct.pack(">I", len(body)) + c + struct.pack(">I", zlib.crc32(c))

    stride = w * 3
    raw = b"".join(b"\0" + rgb[y * stride : (y + 1) * stride] for y in range(h))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 9)))
        f.write(chunk(b"IEND", b""))


def pattern(path, w, h):
    bars = [(230, 230, 230), (230, 200, 40), (40, 200, 220), (40, 190, 60),
            (200, 50, 190), (210, 40, 40), (40, 60, 210), (20, 20, 20)]
    rows = []
    for y in range(h):
        row = bytearray()
        for x in range(w):
            if y < h * 2 // 3:
                row += bytes(bars[x * len(bars) // w])
            else:
                v = 200 if ((x // 40) + (y // 40)) % 2 else 60
                row += bytes((v, v, v))
        rows.append(bytes(row))
    write_png(path, w, h, b"".join(rows))


def main(argv):
    if len(argv) == 3 and argv[0] == "png":
        w, h, rgb = read_ppm(argv[1])
        write_png(argv[2], w, h, rgb)
        return 0
    if len(argv) == 4 and argv[0] == "pattern":
        pattern(argv[1], int(argv[2]), int(argv[3]))
        return 0
    print(__doc__.strip(), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
