"""Search Flow runs on the covering index `ix_flows_search` (migration 0003), not over the rows.

A `flows` row carries the whole definition (tens of KB for a large workflow), so a search that
reads the table costs a page walk per workflow: ~120 ms over 10,000 workflows of 50 tasks sorted
by updateTime, ~3 ms on the index (bench/catalog_api.py, docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from servicekit import Service

from batchd.api.context import Caller
from batchd.catalog import flows

BODIES = [
    {},
    {"expression": "nightly", "pagination": {"pageNo": 2, "pageSize": 20,
                                             "sorters": [{"field": "updateTime", "order": "DESC"}]}},
    {"expression": "42", "pagination": {"pageNo": 1, "pageSize": 20, "sorters": [{"field": "create_time"}]}},
    {"expression": "x", "pagination": {"pageNo": 1, "pageSize": 5, "sorters": [{"field": "startTime"}]}},
]


def test_the_index_exists(service: Service) -> None:
    async def indexes(conn: Any) -> list[str]:
        return await conn.run_sync(lambda sync: [i["name"] for i in sa.inspect(sync).get_indexes("flows")])

    assert "ix_flows_search" in service.in_transaction(indexes)


# Query plans are checked on SQLite only: PostgreSQL chooses plans by table statistics, so the
# same assertion there would test the planner's mood, not our index.
@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("body", BODIES)
def test_sqlite_searches_on_the_covering_index(service: Service, body: dict[str, Any]) -> None:
    ids = service.credentials
    caller = Caller(org_id=ids.org_id, user_id=ids.user_id, user_name="tester")

    async def plan(conn: Any) -> str:
        captured: list[tuple[str, Any]] = []

        def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
            captured.append((statement, parameters))

        sa.event.listen(conn.sync_connection, "before_cursor_execute", capture)
        await flows.search_flows(conn, caller, body)
        sa.event.remove(conn.sync_connection, "before_cursor_execute", capture)
        statement, parameters = captured[-1]
        rows = await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return " | ".join(row[-1] for row in rows)

    found = service.in_transaction(plan)
    assert "USING COVERING INDEX ix_flows_search" in found, found
