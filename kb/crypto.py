"""Encryption at rest for stored originals and backup archives.

Off by default; ``ENCRYPT_ORIGINALS=1`` plus ``ENCRYPTION_KEYS`` (or
``ENCRYPTION_KEYS_FILE``) turns it on. Keys are 32 random bytes in base64,
newest first: the first encrypts, every listed key decrypts, so a rotation
adds the new key in front, re-encrypts (``manage.py rotate_encryption_key``)
and then drops the old one. Keys live outside the database.

File format: a header (magic, key id, nonce prefix, segment size) followed by
segments of up to ``SEGMENT_BYTES`` of plaintext, each sealed with AES-256-GCM
under a nonce made of the prefix and the segment's number. The header and a
"last segment" flag are authenticated with every segment, so a file cut short,
reordered, spliced or altered fails to decrypt with a clear error; nothing is
ever returned that was not written.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import shutil
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import IO

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MAGIC = b"ARCHENC1"
HEADER = struct.Struct(">8s8s8sI")  # magic, key id, nonce prefix, segment size
SEGMENT_BYTES = 1024 * 1024
TAG_BYTES = 16


class DecryptionError(Exception):
    """A file could not be decrypted; the message says why and what to do."""


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"archivist-key-id:" + key).digest()[:8]


@dataclass(frozen=True)
class Keyring:
    enabled: bool
    keys: tuple[bytes, ...]

    @property
    def active(self) -> bytes:
        return self.keys[0]

    @property
    def active_id(self) -> str:
        return key_id(self.active).hex()

    def key_for(self, wanted: bytes) -> bytes:
        for key in self.keys:
            if key_id(key) == wanted:
                return key
        raise DecryptionError(
            f"This file was encrypted with key {wanted.hex()}, which is not in "
            "ENCRYPTION_KEYS. Add that key back (newest first) and restart."
        )


def parse_keys(raw: list[str] | tuple[str, ...]) -> tuple[bytes, ...]:
    keys = []
    for position, text in enumerate(raw, start=1):
        try:
            key = base64.b64decode(text.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise ImproperlyConfigured(
                f"ENCRYPTION_KEYS entry {position} is not a base64-encoded 32-byte "
                'key. Make one with: python -c "import base64, os; '
                'print(base64.b64encode(os.urandom(32)).decode())"'
            )
        keys.append(key)
    return tuple(keys)


def keyring() -> Keyring:
    return _keyring(settings.ENCRYPT_ORIGINALS, tuple(settings.ENCRYPTION_KEYS))


@lru_cache(maxsize=4)
def _keyring(enabled: bool, raw: tuple[str, ...]) -> Keyring:
    keys = parse_keys(raw)
    if enabled and not keys:
        raise ImproperlyConfigured(
            "ENCRYPT_ORIGINALS is on but ENCRYPTION_KEYS (or ENCRYPTION_KEYS_FILE) "
            "is empty: set the key the originals were encrypted with."
        )
    return Keyring(enabled=enabled, keys=keys)


def _aead(key: bytes):  # type: ignore[no-untyped-def]
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def _nonce(prefix: bytes, number: int) -> bytes:
    return prefix + struct.pack(">I", number)


def _aad(header: bytes, number: int, last: bool) -> bytes:
    return header + struct.pack(">I?", number, last)


def encrypt_stream(source: IO[bytes], target: IO[bytes], key: bytes) -> None:
    prefix = os.urandom(8)
    header = HEADER.pack(MAGIC, key_id(key), prefix, SEGMENT_BYTES)
    target.write(header)
    aead = _aead(key)
    number = 0
    current = source.read(SEGMENT_BYTES)
    while True:
        following = source.read(SEGMENT_BYTES) if len(current) == SEGMENT_BYTES else b""
        last = not following
        target.write(
            aead.encrypt(_nonce(prefix, number), current, _aad(header, number, last))
        )
        if last:
            return
        number += 1
        if number >= 2**32:
            raise ValueError("File too large to encrypt in one stream.")
        current = following


def decrypt_segments(source: IO[bytes], ring: Keyring | None = None) -> Iterator[bytes]:
    """Plaintext segments of an encrypted stream, each verified before it is
    returned."""
    ring = ring or keyring()
    header = source.read(HEADER.size)
    if len(header) != HEADER.size or header[:8] != MAGIC:
        raise DecryptionError("This file is not an Archivist encrypted file.")
    _magic, wanted, prefix, segment = HEADER.unpack(header)
    aead = _aead(ring.key_for(wanted))
    number = 0
    current = source.read(segment + TAG_BYTES)
    while True:
        following = source.read(segment + TAG_BYTES)
        last = not following
        try:
            plain = aead.decrypt(
                _nonce(prefix, number), current, _aad(header, number, last)
            )
        except Exception as exc:  # cryptography's InvalidTag, or a short segment
            raise DecryptionError(
                "An encrypted file failed its integrity check (it was altered, "
                "cut short, or the key is wrong)."
            ) from exc
        yield plain
        if last:
            return
        number += 1
        current = following


def is_encrypted(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(len(MAGIC)) == MAGIC


def encrypted_key_id(path: Path) -> str | None:
    with path.open("rb") as handle:
        header = handle.read(HEADER.size)
    if len(header) != HEADER.size or header[:8] != MAGIC:
        return None
    return str(HEADER.unpack(header)[1].hex())


class DecryptingReader(io.RawIOBase):
    """A read-only file object over an encrypted file's plaintext."""

    def __init__(self, handle: IO[bytes], ring: Keyring | None = None) -> None:
        self._handle = handle
        self._segments = decrypt_segments(handle, ring)
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._buffer:
            try:
                self._buffer = next(self._segments)
            except StopIteration:
                return 0
            if not self._buffer:
                continue
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size

    def close(self) -> None:
        self._handle.close()
        super().close()


def open_plaintext(path: Path, ring: Keyring | None = None) -> IO[bytes]:
    """A file's plaintext, whether or not it is encrypted. Raises
    FileNotFoundError when it is gone, DecryptionError when it cannot be read."""
    handle = path.open("rb")
    encrypted = handle.read(len(MAGIC)) == MAGIC
    handle.seek(0)
    if not encrypted:
        return handle
    return io.BufferedReader(DecryptingReader(handle, ring))


def reseal_file(path: Path, key: bytes | None, ring: Keyring | None = None) -> None:
    """Re-write ``path`` encrypted under ``key``, or as plaintext when ``key``
    is None (whatever it was before). Atomic: readers see the old file or the
    new one, never half of either."""
    temp = path.with_name(path.name + ".rekey")
    with open_plaintext(path, ring) as plain, temp.open("wb") as target:
        if key is None:
            shutil.copyfileobj(plain, target, SEGMENT_BYTES)
        else:
            encrypt_stream(plain, target, key)
        target.flush()
        os.fsync(target.fileno())
    temp.replace(path)


CANARY_NAME = "encryption-canary"
CANARY_TEXT = b"archivist encryption canary"


def canary_check(media_root: Path, ring: Keyring | None = None) -> None:
    """At start-up: the key the originals were last encrypted with must be
    configured. Writes the canary under the active key when encryption is
    first turned on. Raises ImproperlyConfigured with what to do."""
    ring = ring or keyring()
    canary = media_root / CANARY_NAME
    if not canary.exists():
        if ring.enabled:
            write_canary(media_root, ring)
        return
    wanted = encrypted_key_id(canary)
    if wanted is None:
        return
    if not ring.keys:
        raise ImproperlyConfigured(
            f"Stored originals are encrypted (key {wanted}) but ENCRYPTION_KEYS is "
            "empty: set it (and ENCRYPT_ORIGINALS=1) to the key they were encrypted with."
        )
    try:
        with canary.open("rb") as handle:
            plain = b"".join(decrypt_segments(handle, ring))
    except DecryptionError as exc:
        raise ImproperlyConfigured(str(exc)) from exc
    if plain != CANARY_TEXT:
        raise ImproperlyConfigured(
            "The encryption canary decrypted to the wrong text; the stored files "
            "cannot be trusted with these keys."
        )


def write_canary(media_root: Path, ring: Keyring | None = None) -> None:
    ring = ring or keyring()
    media_root.mkdir(parents=True, exist_ok=True)
    temp = media_root / (CANARY_NAME + ".part")
    with temp.open("wb") as target:
        encrypt_stream(io.BytesIO(CANARY_TEXT), target, ring.active)
    temp.replace(media_root / CANARY_NAME)
