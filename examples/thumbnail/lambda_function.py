"""thumbnail: for each image dropped into a watched directory, a thumbnail
beside it and a row of metadata in a SQLite file on the same file system.

Runtime python3.11, handler lambda_function.lambda_handler, standard library
only (the runtime has no Pillow): it reads binary PPM (P6) and PGM (P5)
images and writes the thumbnail as PNG (zlib). The file system is mounted at
FS_MOUNT (default /mnt/photos); the event is S3's ObjectCreated:Put with the
file's path under the mount as its key.

The trigger must not see what this function writes: it fires on `.ppm` and
`.pgm` keys only, and the function writes `<name>.thumb.png` and
`thumbnails.db`."""

import os
import sqlite3
import struct
import time
import urllib.parse
import zlib

MOUNT = os.environ.get("FS_MOUNT", "/mnt/photos")
DB = os.path.join(MOUNT, "thumbnails.db")
MAX_SIDE = int(os.environ.get("THUMB_MAX_SIDE", "64"))


def read_netpbm(data):
    """(width, height, rows of RGB byte triples) of a P6 or P5 image."""
    magic = data[:2]
    if magic not in (b"P6", b"P5"):
        raise ValueError("not a binary PPM/PGM image")
    fields, pos = [], 2
    while len(fields) < 3:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(int(data[start:pos]))
    width, height, maxval = fields
    if maxval > 255 or width <= 0 or height <= 0:
        raise ValueError("only 8-bit images are supported")
    pixels = data[pos + 1:]
    channels = 3 if magic == b"P6" else 1
    if len(pixels) < width * height * channels:
        raise ValueError("truncated image")
    if channels == 1:
        pixels = bytes(b for g in pixels[:width * height] for b in (g, g, g))
    return width, height, pixels


def downscale(width, height, rgb, max_side):
    """Box filter: each thumbnail pixel is the mean of its source block."""
    scale = max(width / max_side, height / max_side, 1.0)
    tw, th = max(1, round(width / scale)), max(1, round(height / scale))
    out = bytearray()
    for ty in range(th):
        y0, y1 = ty * height // th, max(ty * height // th + 1, (ty + 1) * height // th)
        for tx in range(tw):
            x0, x1 = tx * width // tw, max(tx * width // tw + 1, (tx + 1) * width // tw)
            sums, n = [0, 0, 0], 0
            for y in range(y0, y1):
                row = y * width * 3
                for x in range(x0, x1):
                    i = row + x * 3
                    sums[0] += rgb[i]
                    sums[1] += rgb[i + 1]
                    sums[2] += rgb[i + 2]
                    n += 1
            out.extend(s // n for s in sums)
    return tw, th, bytes(out)


def png(width, height, rgb):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\x00" + rgb[y * width * 3:(y + 1) * width * 3] for y in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def record(row):
    fresh = not os.path.exists(DB)
    db = sqlite3.connect(DB, timeout=30)
    try:
        if fresh:
            # Every sandbox runs as a uid of its own in a shared group;
            # SQLite creates its file 0644 whatever the directory's ACL says.
            try:
                os.chmod(DB, 0o664)
            except OSError:
                pass
        with db:
            db.execute("""CREATE TABLE IF NOT EXISTS images (
                key TEXT PRIMARY KEY, width INTEGER, height INTEGER, size INTEGER, etag TEXT,
                thumbnail TEXT, thumb_width INTEGER, thumb_height INTEGER, created_at REAL)""")
            db.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
    finally:
        db.close()


def lambda_handler(event, context):
    done = []
    for rec in event.get("Records", []):
        obj = rec["s3"]["object"]
        key = urllib.parse.unquote_plus(obj["key"])
        path = os.path.join(MOUNT, key)
        with open(path, "rb") as f:
            width, height, rgb = read_netpbm(f.read())
        tw, th, small = downscale(width, height, rgb, MAX_SIDE)
        thumb_key = os.path.splitext(key)[0] + ".thumb.png"
        tmp = os.path.join(MOUNT, thumb_key + ".part")
        with open(tmp, "wb") as f:
            f.write(png(tw, th, small))
        os.replace(tmp, os.path.join(MOUNT, thumb_key))
        record((key, width, height, obj.get("size"), obj.get("eTag"), thumb_key, tw, th, time.time()))
        print(f"thumbnail {thumb_key} ({tw}x{th}) of {key} ({width}x{height})")
        done.append({"key": key, "thumbnail": thumb_key, "width": tw, "height": th})
    return {"thumbnails": done}
