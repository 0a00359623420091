"""The scheduler: enabled periodic workflows' Quartz fire times become flow instances.

- `plan`    — pure: a flow's candidate fires, the missed-fire policy, the due-time heap.
- `service` — `Scheduler(database, settings)`: the loop that loads flows, sleeps until the next
              due time (or a change), creates instances through the engine, and reschedules.
"""

from batchd.scheduler.plan import MissedFirePolicy
from batchd.scheduler.service import Scheduler

__all__ = ["MissedFirePolicy", "Scheduler"]
