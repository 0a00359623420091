"""Wall-clock time as batchd stores it: integer epoch milliseconds, UTC.

One function so that every layer agrees on the unit, and tests can see where time is read.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch (UTC), the unit of every stored time and of the API."""
    return time.time_ns() // 1_000_000
