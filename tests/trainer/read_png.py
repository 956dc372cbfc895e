#!/usr/bin/env python3
"""An independent PNG reader for tests/trainer/log_test.cpp, standard library
only (struct + zlib), written from the PNG spec (W3C PNG / RFC 2083) and RFC
1950/1951, not from trainer/log.cpp.

    read_png.py FILE [--raw-out OUT] [--colour R,G,B]...

Checks the signature, every chunk's CRC (zlib.crc32 over type + data), the
chunk order (IHDR first, IEND last, IDAT present), IHDR (8-bit RGB, no
interlace), that the zlib stream is made of stored deflate blocks of at most
65535 bytes whose LEN/NLEN agree, that zlib.decompress (which checks the
Adler-32) gives the same bytes, that every scanline has filter type 0 and the
pixel count is width * height.

Prints one JSON object: {"width", "height", "colours": [{"count", "columns":
{x: mean y of the colour's pixels in column x}}]} for each --colour, and with
--raw-out writes the RGB bytes (rows top to bottom, no filter bytes) to OUT.
On any failure prints {"error": "..."} and exits 1.
"""
import json
import struct
import sys
import zlib


def fail(message):
    print(json.dumps({"error": message}))
    sys.exit(1)


def stored_blocks(z):
    """Walks a zlib stream of stored deflate blocks; returns the data."""
    if len(z) < 6:
        fail("zlib stream too short")
    cmf, flg = z[0], z[1]
    if cmf & 0x0F != 8:
        fail("zlib CM is not deflate")
    if (cmf * 256 + flg) % 31 != 0:
        fail("zlib FCHECK wrong")
    if flg & 0x20:
        fail("zlib preset dictionary set")
    pos = 2
    out = bytearray()
    while True:
        if pos + 5 > len(z):
            fail("truncated deflate block header")
        header = z[pos]
        bfinal, btype = header & 1, (header >> 1) & 3
        if btype != 0:
            fail("deflate block type %d, expected 0 (stored)" % btype)
        length, nlength = struct.unpack("<HH", z[pos + 1:pos + 5])
        if length ^ 0xFFFF != nlength:
            fail("stored block LEN/NLEN mismatch")
        pos += 5
        if pos + length > len(z):
            fail("stored block runs past the stream")
        out += z[pos:pos + length]
        pos += length
        if bfinal:
            break
    if len(z) - pos != 4:
        fail("%d bytes after the last block, expected the 4-byte Adler-32" % (len(z) - pos))
    (adler,) = struct.unpack(">I", z[pos:])
    if adler != zlib.adler32(bytes(out)):
        fail("Adler-32 mismatch")
    return bytes(out)


def main(argv):
    if len(argv) < 2:
        fail("usage: read_png.py FILE [--raw-out OUT] [--colour R,G,B]...")
    path = argv[1]
    raw_out = None
    colours = []
    i = 2
    while i < len(argv):
        if argv[i] == "--raw-out" and i + 1 < len(argv):
            raw_out = argv[i + 1]
            i += 2
        elif argv[i] == "--colour" and i + 1 < len(argv):
            colours.append(tuple(int(c) for c in argv[i + 1].split(",")))
            i += 2
        else:
            fail("bad argument " + argv[i])

    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("bad signature")
    pos = 8
    chunks = []
    while pos < len(data):
        if pos + 8 > len(data):
            fail("truncated chunk header")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        ctype = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            fail("truncated chunk " + repr(ctype))
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if crc != zlib.crc32(ctype + body) & 0xFFFFFFFF:
            fail("CRC mismatch in chunk " + ctype.decode("latin-1"))
        chunks.append((ctype, body))
        pos += 12 + length
    if not chunks or chunks[0][0] != b"IHDR":
        fail("first chunk is not IHDR")
    if chunks[-1][0] != b"IEND" or chunks[-1][1]:
        fail("last chunk is not an empty IEND")
    ihdr = chunks[0][1]
    if len(ihdr) != 13:
        fail("IHDR length %d" % len(ihdr))
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", ihdr)
    if (depth, ctype, comp, filt, interlace) != (8, 2, 0, 0, 0):
        fail("IHDR not 8-bit RGB, deflate, filter 0, no interlace")
    if width == 0 or height == 0:
        fail("zero size")
    z = b"".join(body for t, body in chunks if t == b"IDAT")
    if not z:
        fail("no IDAT")
    walked = stored_blocks(z)
    raw = zlib.decompress(z)
    if raw != walked:
        fail("zlib and the block walk disagree")
    stride = 1 + 3 * width
    if len(raw) != stride * height:
        fail("decompressed %d bytes, expected %d" % (len(raw), stride * height))
    rgb = bytearray()
    for y in range(height):
        row = raw[y * stride:(y + 1) * stride]
        if row[0] != 0:
            fail("row %d has filter type %d" % (y, row[0]))
        rgb += row[1:]
    if len(rgb) != 3 * width * height:
        fail("pixel count")
    if raw_out:
        open(raw_out, "wb").write(bytes(rgb))

    report = {"width": width, "height": height, "colours": []}
    for colour in colours:
        count = 0
        sums = {}
        target = bytes(colour)
        for y in range(height):
            base = y * 3 * width
            row = rgb[base:base + 3 * width]
            x = row.find(target)
            while x != -1:
                if x % 3 == 0:
                    count += 1
                    s = sums.setdefault(x // 3, [0, 0])
                    s[0] += y
                    s[1] += 1
                    x = row.find(target, x + 3)
                else:
                    x = row.find(target, x + 1)
        columns = {str(x): s[0] / s[1] for x, s in sorted(sums.items())}
        report["colours"].append({"count": count, "columns": columns})
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv)
