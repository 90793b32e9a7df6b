"""Accounts: people who use the API, each with a role and a bearer token shown once."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.care_tables import accounts
from gateway.store.paging import Page, Window, fetch_page

Role = Literal["admin", "operator", "visitor"]
TOKEN_PREFIX = "cg_"  # noqa: S105  (a marker, not a secret)


@dataclass(frozen=True, slots=True)
class Account:
    id: int
    name: str
    role: Role
    township: str | None
    phone: str | None
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


def token_hash(token: str) -> str:
    """What is stored of a token: tokens are 256 random bits, so SHA-256 is enough."""
    return hashlib.sha256(token.encode()).hexdigest()


def _account(row: sa.Row[tuple[object, ...]]) -> Account:
    m = row._mapping
    return Account(
        id=m["id"],
        name=m["name"],
        role=m["role"],
        township=m["township"],
        phone=m["phone"],
        created_at=m["created_at"],
        created_by=m["created_by"],
        revoked_at=m["revoked_at"],
    )


async def create_account(
    conn: AsyncConnection,
    *,
    name: str,
    role: Role,
    township: str | None,
    phone: str | None,
    by: str,
    now: datetime,
) -> tuple[Account, str]:
    """Store a new account; the account and its token (the only time the token exists)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    result = await conn.execute(
        sa.insert(accounts)
        .values(
            name=name,
            role=role,
            township=township,
            phone=phone,
            token_hash=token_hash(token),
            created_at=now,
            created_by=by,
        )
        .returning(*accounts.c)
    )
    return _account(result.one()), token


async def account_for_token(conn: AsyncConnection, token: str) -> Account | None:
    """The live (not revoked) account a token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = (
        await conn.execute(
            sa.select(accounts).where(
                accounts.c.token_hash == token_hash(token), accounts.c.revoked_at.is_(None)
            )
        )
    ).one_or_none()
    return _account(row) if row is not None else None


async def list_accounts(conn: AsyncConnection, window: Window) -> Page[Account]:
    """Accounts by id, revoked ones too."""
    return await fetch_page(conn, sa.select(accounts).order_by(accounts.c.id), window, _account)


async def revoke_account(conn: AsyncConnection, account_id: int, now: datetime) -> Account | None:
    """Revoke an account's token (kept for the audit trail); None if there is no such account."""
    await conn.execute(
        sa.update(accounts)
        .where(accounts.c.id == account_id, accounts.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    row = (await conn.execute(sa.select(accounts).where(accounts.c.id == account_id))).one_or_none()
    return _account(row) if row is not None else None
