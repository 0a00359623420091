"""Who may do what with a workflow (spec §4, semantics §1.8), decided in one place.

- Owners — the users named in `owners`, and always the creator, who "cannot remove itself" —
  edit: Save, Delete, Enable, Disable (and trigger, in the engine's operations).
- Any member of the flow's organisation reads: Get Flow, Export Flow, Load Flow For Edit, Search
  Flow and the directory tree only require OU membership (spec §4), so visitors and other members
  read alike. `visitors` still matters: Get My Flow lists the flows a user owns or visits.
- Save, Enable and Disable also need an unlocked account (62105 "Your account has been locked").
- Another organisation's flow does not exist for the caller: 62102 "does not exist", never
  62103, so ids of other tenants cannot be probed.

Owner and visitor lists hold user *names* (EnOS shows names there); a list entry equal to the
caller's user id counts too, for clients that put ids in.
"""

from __future__ import annotations

from typing import Protocol

from batchd.catalog.model import StoredFlow, UserList
from batchd.errors import AccountLocked, NoPrivilege


class Caller(Protocol):
    """The caller as the API layer identified it (`batchd.api.context.Caller` fits)."""

    org_id: str
    user_id: str
    user_name: str


def _names(caller: Caller) -> tuple[str, ...]:
    return tuple(n for n in (caller.user_name, caller.user_id) if n)


def owns(caller: Caller, *, creator: str, owners: UserList) -> bool:
    names = _names(caller)
    return creator in names or any(name in owners for name in names)


def visits(caller: Caller, visitors: UserList) -> bool:
    return any(name in visitors for name in _names(caller))


def is_owner(caller: Caller, flow: StoredFlow) -> bool:
    return flow.org_id == caller.org_id and owns(caller, creator=flow.creator, owners=flow.definition.owners)


def can_read(caller: Caller, flow: StoredFlow) -> bool:
    return flow.org_id == caller.org_id


def require_owner(caller: Caller, flow: StoredFlow, doing: str, *, unlocked: bool = False) -> None:
    """62103 unless the caller owns `flow`; `doing` completes "only an owner may ...".

    `unlocked`: the operation also needs an unlocked account (Save, Enable, Disable: spec §4),
    62105 otherwise. Checked after ownership, so a locked stranger still learns only 62103.
    """
    if not is_owner(caller, flow):
        raise NoPrivilege(f"User has no privilege: only an owner of workflow {flow.flow_id} may {doing}")
    if unlocked and getattr(caller, "locked", False):
        raise AccountLocked("Your account has been locked")
