"""`probe`: test-only operations registered for the duration of one test.

They let the platform's tests exercise dispatch, identity and transactions without depending on
any real resource: `GET probe?action=whoami` returns the caller, `GET probe?action=explode`
raises an unexpected exception, `POST probe?action=writeThenFail` writes a row and then fails,
`POST probe?action=writeThenReturnTheUnsendable` writes a row and returns what JSON cannot encode.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from batchd.api.context import OPERATIONS, RequestContext, operation
from batchd.errors import InvalidParameter
from batchd.store.tables import orgs

PROBE_ORG = "o-written-then-rolled-back"


async def whoami(ctx: RequestContext) -> Any:
    """The caller as the dispatcher identified it."""
    assert ctx.caller is not None
    return {"orgId": ctx.caller.org_id, "userId": ctx.caller.user_id, "name": ctx.caller.user_name,
            "locked": ctx.caller.locked, "query": ctx.query, "body": ctx.body}


async def explode(ctx: RequestContext) -> Any:
    """Fails the way a bug would."""
    raise RuntimeError("probe: something nobody expected")


async def write_then_fail(ctx: RequestContext) -> Any:
    """Changes the database, then fails: the change must be rolled back."""
    await ctx.conn.execute(sa.insert(orgs).values(org_id=PROBE_ORG, name="x", created_at=0))
    raise InvalidParameter("probe: failing after a write")


async def write_then_return_the_unsendable(ctx: RequestContext) -> Any:
    """Changes the database, then returns data JSON cannot carry: the change must be rolled back."""
    await ctx.conn.execute(sa.insert(orgs).values(org_id=PROBE_ORG, name="x", created_at=0))
    return {"when": object()}


PROBES = [
    ("GET", "whoami", whoami),
    ("GET", "explode", explode),
    ("POST", "writeThenFail", write_then_fail),
    ("POST", "writeThenReturnTheUnsendable", write_then_return_the_unsendable),
]


@pytest.fixture
def probe() -> Iterator[None]:
    for method, action, handler in PROBES:
        operation(resource="probe", method=method, action=action)(handler)
    try:
        yield
    finally:
        for method, action, _handler in PROBES:
            OPERATIONS.remove("probe", method, action)
