"""Secrets kept in the database, sealed with a key derived from SECRET_KEY.

For values the server must read back (a provider's refresh token), not for
passwords. A database dump alone does not reveal them; a changed SECRET_KEY
makes them unreadable, which callers treat as "not stored".
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings


def _fernet(purpose: str) -> Fernet:
    digest = hashlib.sha256(f"archivist-seal:{purpose}:{settings.SECRET_KEY}".encode())
    return Fernet(base64.urlsafe_b64encode(digest.digest()))


def seal(value: str, *, purpose: str) -> str:
    return _fernet(purpose).encrypt(value.encode()).decode() if value else ""


def unseal(sealed: str, *, purpose: str) -> str:
    """The value, or "" when nothing is stored or it cannot be opened."""
    if not sealed:
        return ""
    try:
        return _fernet(purpose).decrypt(sealed.encode()).decode()
    except InvalidToken:
        return ""
