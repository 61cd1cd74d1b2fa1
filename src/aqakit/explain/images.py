"""Thumbnails as inline PNG data URIs (a minimal PNG writer: no imaging library needed)."""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np


def png_bytes(image: np.ndarray) -> bytes:
    """Encode a uint8 RGB image (H, W, 3) as PNG."""
    height, width, _ = image.shape
    rows = np.ascontiguousarray(image, dtype=np.uint8).reshape(height, width * 3)
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)  # filter type 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def thumbnail(image: np.ndarray, side: int = 96) -> np.ndarray:
    """A ``side`` x ``side`` nearest-neighbour downscale of a square-ish uint8 image."""
    rows = np.linspace(0, image.shape[0] - 1, side).round().astype(int)
    cols = np.linspace(0, image.shape[1] - 1, side).round().astype(int)
    return image[rows][:, cols]


def data_uri(image: np.ndarray) -> str:
    """``data:image/png;base64,...`` of a uint8 RGB image."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(image)).decode("ascii")
