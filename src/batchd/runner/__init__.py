"""One task attempt, no database: the engine hands an `AttemptSpec` to `run_attempt` (via an executor).

Public API (stable; the engine imports these names):

- `AttemptSpec`, `AttemptOutcome` — the records (`records.py`).
- `async run_attempt(spec, *, on_started=None, cancel=None) -> AttemptOutcome` (`attempt.py`).
- `async kill_process_group(pgid, *, task_instance_id=None, grace_seconds=5.0) -> bool` —
  crash recovery (`process.py`; also `process_alive(pid)`, `group_alive(pgid)`, which ignore
  zombies).
- `parse_codes(text, *, field="successCode") -> frozenset[int]`,
  `classify(outcome, success_codes, wait_codes=frozenset()) -> Verdict` (`verdict.py`).
- `attempt_header(run_num, attempt, instance_id, cmdline, submitter, now) -> str` (`header.py`).
- `RunnerPlugin`, `discover_plugins()` — other task kinds (`plugins.py`, docs/runners.md).
- `batchd.runner.variables` — `substitute`, `expand`, `merge_parameters`, `business_date`.
"""

from batchd.runner.attempt import run_attempt
from batchd.runner.header import attempt_header
from batchd.runner.plugins import RunnerPlugin, discover_plugins
from batchd.runner.process import kill_process_group
from batchd.runner.records import AttemptOutcome, AttemptSpec
from batchd.runner.verdict import Verdict, classify, parse_codes

__all__ = [
    "AttemptOutcome",
    "AttemptSpec",
    "RunnerPlugin",
    "Verdict",
    "attempt_header",
    "classify",
    "discover_plugins",
    "kill_process_group",
    "parse_codes",
    "run_attempt",
]
