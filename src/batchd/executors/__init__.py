"""Where attempts run. `Executor` is the engine's contract; `LocalExecutor` the default pool.

- `Executor` protocol: `async start()`, `async submit(spec, on_started=None, cancel=None) ->
  AttemptOutcome` (waits for a free slot), `async stop()` (`base.py`).
- `LocalExecutor(parallelism=None)`: subprocesses of this batchd, at most `parallelism`
  (default: CPU count) at a time (`local.py`).
"""

from batchd.executors.base import Executor
from batchd.executors.local import LocalExecutor

__all__ = ["Executor", "LocalExecutor"]
