"""The engine: flow and task instances, their state machine, and the dispatcher that runs them.

Layers inside, each importing only the ones above it:

- `status`      — the EnOS status codes (-1..10) and named groups of them.
- `transitions` — a pure table deciding every (status, event) pair: act, ignore or refuse.
- `records`     — frozen records of instances and attempts as the engine reads them.
- `instances`   — creating instances (`create_flow_instance`, the scheduler's entry point) and
                  reading them back; one transaction, the caller's.
- `progress`    — the scheduling pass over the tables: admit queued flow instances, make tasks
                  READY, finish flows; recording attempt outcomes; cancel; crash recovery.
- `dispatcher`  — the `Engine`: one loop per process that claims READY tasks and hands them to
                  the executor, plus the lease heartbeat.
- `operations`  — the API operations on flowInstances/taskInstances and the flow triggers.
"""
