"""PostgreSQL access shared by the warehouse source, the table sink and the mirror bookkeeping."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from destinations.providers.errors import AuthenticationFailed, ConfigurationError, EndpointUnreachable


async def connect(conninfo: str, *, role: str) -> psycopg.AsyncConnection[Any]:
    """Connect, turning failures into errors a user can act on (never echoing the connection string)."""
    try:
        return await psycopg.AsyncConnection.connect(conninfo, connect_timeout=15)
    except psycopg.OperationalError as error:
        detail = " ".join(str(error).split())[:300]
        if "password authentication failed" in detail or "authentication" in detail.lower():
            raise AuthenticationFailed(
                f"the {role} database refused the login ({detail}); check the connection Secret"
            ) from None
        raise EndpointUnreachable(
            f"cannot connect to the {role} database ({detail}); check the connection string's host and port"
        ) from None
    except psycopg.ProgrammingError as error:
        raise ConfigurationError(f"the {role} connection string is invalid: {error}") from None


def table_identifier(name: str) -> sql.Identifier:
    """`schema.table` or `table` as a quoted identifier."""
    return sql.Identifier(*name.split("."))


def split_table_name(name: str) -> tuple[str, str]:
    schema, _, table = name.rpartition(".")
    return schema or "public", table
