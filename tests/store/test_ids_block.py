"""`ids.next_ids` takes a block of values in one statement (Import Flow: one per task)."""

from __future__ import annotations

from typing import Any

from servicekit import Service

from batchd.store import ids


def test_blocks_and_single_ids_never_overlap(service: Service) -> None:
    async def work(conn: Any) -> list[Any]:
        return [
            await ids.next_ids(conn, "block-test", 3),
            await ids.next_id(conn, "block-test"),
            await ids.next_ids(conn, "block-test", 0),
            await ids.next_ids(conn, "block-test", 2),
        ]

    assert service.in_transaction(work) == [[1, 2, 3], 4, [], [5, 6]]
