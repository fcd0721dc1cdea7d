"""Deterministic bodies: byte i of a body is (i % 251), so a body of any length can be
produced, streamed and hashed without holding it, and its SHA-256 is known in advance."""

import functools
import hashlib

MiB = 1024 * 1024

# PATTERN_BLOCK's length is a multiple of 251, so concatenated blocks continue the pattern.
PATTERN_BLOCK = bytes(i % 251 for i in range(251 * 1024))


def iter_pattern(n):
    """The first ``n`` pattern bytes, in pieces of at most ``len(PATTERN_BLOCK)``."""
    remaining = n
    while remaining > 0:
        piece = PATTERN_BLOCK if remaining >= len(PATTERN_BLOCK) else PATTERN_BLOCK[:remaining]
        remaining -= len(piece)
        yield piece


def pattern_bytes(n):
    return b"".join(iter_pattern(n))


@functools.lru_cache(maxsize=None)
def pattern_sha256(n):
    h = hashlib.sha256()
    for piece in iter_pattern(n):
        h.update(piece)
    return h.hexdigest()


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()
