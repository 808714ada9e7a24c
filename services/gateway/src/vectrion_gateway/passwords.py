"""Argon2id password hashing.

Hashing is deliberately slow and CPU-bound, so it runs in a worker thread
instead of stalling the event loop.
"""

from __future__ import annotations

import secrets

from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

_hasher = PasswordHasher()

# Verified against when the email is unknown, so "no such user" costs the same
# time as "wrong password" and the two cannot be told apart by timing.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(32))


async def hash_password(password: str) -> str:
    return await to_thread.run_sync(_hasher.hash, password)


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


async def verify_password(password_hash: str | None, password: str) -> bool:
    """True if ``password`` matches; with no hash, burns the same time and returns False."""
    if password_hash is None:
        await to_thread.run_sync(_verify, _DUMMY_HASH, password)
        return False
    return await to_thread.run_sync(_verify, password_hash, password)


def needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)
