"""UTCDateTime writes on SQLite exactly what SQLAlchemy's SQLite DATETIME writes and reads back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from gateway.store.tables import UTCDateTime

TIMES = [
    datetime(2026, 12, 1, 8, 30, 5, 123456, tzinfo=UTC),
    datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC),  # no microseconds: still written
    datetime(1999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
    datetime(2026, 12, 1, 16, 30, tzinfo=timezone(timedelta(hours=8))),  # Shanghai: UTC 08:30
]


@pytest.mark.parametrize("value", TIMES)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UTCDateTime().bind_processor(dialect)
    theirs = sa.DateTime(timezone=True).dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC))
    back = sa.DateTime(timezone=True).dialect_impl(dialect).result_processor(dialect, None)
    assert back is not None
    assert back(ours(value)).replace(tzinfo=UTC) == value


def test_none_and_naive() -> None:
    process = UTCDateTime().bind_processor(sqlite.dialect())
    assert process is not None
    assert process(None) is None
    with pytest.raises(ValueError, match="naive"):
        process(datetime(2026, 12, 1, 8, 30))


def test_postgresql_gets_utc_datetimes() -> None:
    process = UTCDateTime().bind_processor(postgresql.asyncpg.dialect())
    shanghai = TIMES[3]
    value = process(shanghai) if process is not None else None
    assert value == shanghai
    assert value.tzinfo is UTC
