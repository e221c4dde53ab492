"""Bearer tokens: minting, hashing at rest, and resolving a request to its organisation.

Tokens are ``yima_`` + 32 random bytes (URL-safe base64). Only their SHA-256 is stored
(``api_tokens.token_hash``): a leaked database grants nothing. Randomness lives here, in the
service, never in :mod:`ledger`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, insert, select

from api.errors import AuthenticationError, NotFound
from api.store import tables as t

__all__ = [
    "TOKEN_PREFIX",
    "Caller",
    "authenticate",
    "caller_for_token_hash",
    "hash_token",
    "issue_token",
    "new_token",
]

TOKEN_PREFIX = "yima_"


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated organisation behind a request.

    Attributes:
        org: Org id.
        role: Its registry role (``manufacturer`` ... ``regulator``).
    """

    org: str
    role: str

    @property
    def is_regulator(self) -> bool:
        """Regulators read everything and may recall any lot."""
        return self.role == "regulator"


def new_token() -> str:
    """A fresh random bearer token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> bytes:
    """SHA-256 of the token text (what is stored and looked up)."""
    return hashlib.sha256(token.encode("utf-8")).digest()


def issue_token(engine: Engine, org: str, *, at: datetime, label: str | None = None) -> str:
    """Mint a token for ``org`` and store its hash; the token itself is shown once.

    Raises:
        NotFound: The organisation is not registered.
    """
    token = new_token()
    with engine.begin() as conn:
        role = conn.execute(select(t.orgs.c.role).where(t.orgs.c.id == org)).scalar_one_or_none()
        if role is None:
            raise NotFound(f"organisation {org!r} is not registered")
        conn.execute(
            insert(t.api_tokens),
            {
                "token_hash": hash_token(token),
                "org": org,
                "role": role,
                "label": label,
                "created": at,
            },
        )
    return token


def caller_for_token_hash(engine: Engine, token_hash: bytes) -> Caller | None:
    """The organisation whose token has SHA-256 ``token_hash``, or None if there is none.

    The lookup behind :func:`authenticate`, for callers that hold only the hash (the
    dashboard's session cookie names the token by its hash, never the token itself). The role
    comes from the org's current registry entry, not from the token row, so a re-registered
    org never keeps a stale role; a revoked (deleted) token finds nothing.
    """
    a, o = t.api_tokens.c, t.orgs.c
    with engine.connect() as conn:
        row = conn.execute(
            select(a.org, o.role).join(t.orgs, o.id == a.org).where(a.token_hash == token_hash)
        ).one_or_none()
    return None if row is None else Caller(org=row[0], role=row[1])


def authenticate(engine: Engine, authorization: str | None) -> Caller:
    """Resolve an ``Authorization: Bearer ...`` header to the calling organisation.

    The role comes from the org's current registry entry (:func:`caller_for_token_hash`).

    Raises:
        AuthenticationError: No header, not a bearer token, or an unknown token.
    """
    if not authorization:
        raise AuthenticationError("missing bearer token")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if not hmac.compare_digest(scheme.lower(), "bearer") or not token:
        raise AuthenticationError("expected 'Authorization: Bearer <token>'")
    caller = caller_for_token_hash(engine, hash_token(token))
    if caller is None:
        raise AuthenticationError("unknown bearer token")
    return caller
