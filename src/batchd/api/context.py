"""What an operation handler receives, and the table that finds the handler for a request.

EnOS serves many operations on one path, told apart by the `action` query parameter, so routing
is a lookup of `(resource, method, action)` in `OPERATIONS`. Operations register themselves:

    @operation(resource="flows", method="GET", action="get")
    async def get_flow(ctx: RequestContext) -> Any:
        ...  # return `data`; raise batchd.errors.* for a failure

The handler runs inside one database transaction (`ctx.conn`): committed when it returns, rolled
back when it raises, so a failed call changes nothing. An operation registered with
`writes=False` promises to only read: its transaction is a read transaction
(`Database.read_transaction`), which on SQLite runs beside writers instead of queueing for the
write lock. The default is a writing transaction, so an operation nobody marked stays correct.

An operation may also register a `shortcut`: tried first, with no transaction opened and no
caller resolved, it either answers the whole call in fewer round trips than the handler (Get
Flow reads the user and the flow's stored answer in one statement, after recording a signed
call's signature in the same trip to the database's worker thread; Import Flow runs all its
statements in one such trip), or returns None, and the call then
goes the ordinary way as if the shortcut had not been tried. A shortcut must do its work, the
caller check included, in one transaction (or one statement), raise only what the ordinary way
would raise at the same point, and leave everything else (unusual cases, every refusal it cannot
word exactly as the handler would) to the handler by returning None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.config import Settings
from batchd.errors import InvalidParameter
from batchd.store.database import Database

if TYPE_CHECKING:  # api.auth imports this module
    from batchd.api.auth import PendingSignature


@dataclass(frozen=True, kw_only=True)
class Caller:
    """The user a call runs on behalf of, checked against the service account's organisation."""

    org_id: str
    user_id: str
    user_name: str
    locked: bool = False


@dataclass(frozen=True, kw_only=True)
class RequestContext:
    """Everything a handler may use; handlers never see the HTTP request itself."""

    caller: Caller | None  # None only for operations registered with needs_caller=False
    conn: AsyncConnection
    query: dict[str, str]  # query parameters; empty values are dropped (EnOS clients send `x=`)
    body: Any  # parsed JSON body, or None when there is none
    settings: Settings
    request_id: str


Handler = Callable[[RequestContext], Awaitable[Any]]


@dataclass(frozen=True, kw_only=True)
class ShortcutContext:
    """What a shortcut receives (module docstring): the database itself, since no transaction is
    open yet, and what the caller check needs instead of a resolved caller."""

    database: Database
    query: dict[str, str]
    body: Any
    settings: Settings
    key_org_id: str | None  # the signing service account's organisation; None in insecure mode
    # The signed call's signature, not recorded yet (None in insecure mode): a shortcut may
    # record it first in a write transaction of its own (`api.auth.PendingSignature.record_now`)
    # and mark it recorded; whatever is left unrecorded the dispatcher records before answering.
    signature: PendingSignature | None


#: A shortcut's answer is the call's `data`; None: take the ordinary way (module docstring).
Shortcut = Callable[[ShortcutContext], Awaitable[Any | None]]


@dataclass(frozen=True, kw_only=True)
class Operation:
    resource: str
    method: str
    action: str
    handler: Handler
    needs_caller: bool  # False: no userId/orgId (Get Current Time, Get Timezone)
    writes: bool  # False: only reads, runs in a read transaction (module docstring)
    summary: str  # one line for /docs
    description: str  # more for /docs: parameters, body, errors
    shortcut: Shortcut | None = None  # tried before the handler (module docstring)


class OperationRegistry:
    """All registered operations; a lookup that fails says what would have been valid."""

    def __init__(self) -> None:
        self._operations: dict[tuple[str, str, str], Operation] = {}

    def add(self, op: Operation) -> None:
        key = (op.resource, op.method, op.action)
        if key in self._operations:
            raise ValueError(f"operation {op.method} {op.resource}?action={op.action} is registered twice")
        self._operations[key] = op

    def remove(self, resource: str, method: str, action: str) -> None:
        self._operations.pop((resource, method, action), None)

    def all(self) -> list[Operation]:
        return sorted(self._operations.values(), key=lambda op: (op.resource, op.method, op.action))

    def resources(self) -> list[str]:
        return sorted({op.resource for op in self._operations.values()})

    def actions(self, resource: str, method: str) -> list[str]:
        return sorted(op.action for op in self._operations.values() if (op.resource, op.method) == (resource, method))

    def find(self, resource: str, method: str, action: str | None) -> Operation:
        """The operation for a request, or InvalidParameter (62102) naming the valid choices."""
        found = self._operations.get((resource, method, action or ""))
        if found is not None:
            return found
        if resource not in self.resources():
            raise InvalidParameter(
                f"resource: {resource!r} does not exist; valid resources: {', '.join(self.resources())}"
            )
        valid = self.actions(resource, method)
        listing = ", ".join(valid) if valid else "none"
        if not action:
            raise InvalidParameter(f"param: action cannot be empty; valid {method} {resource} actions: {listing}")
        other = [m for m in ("GET", "POST") if m != method and action in self.actions(resource, m)]
        if other:
            raise InvalidParameter(
                f"action: {action!r} on {resource} is a {other[0]} operation, not {method}; "
                f"valid {method} {resource} actions: {listing}"
            )
        raise InvalidParameter(f"action: {action!r} is not an operation of {method} {resource}; valid actions: {listing}")


OPERATIONS = OperationRegistry()


def operation(
    *,
    resource: str,
    method: str,
    action: str,
    needs_caller: bool = True,
    writes: bool = True,
    summary: str | None = None,
    description: str = "",
    shortcut: Shortcut | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler for `method resource?action=...` (summary: its docstring)."""

    def register(handler: Handler) -> Handler:
        doc = (handler.__doc__ or "").strip()
        OPERATIONS.add(
            Operation(
                resource=resource,
                method=method.upper(),
                action=action,
                handler=handler,
                needs_caller=needs_caller,
                writes=writes,
                summary=summary if summary is not None else doc.split("\n", 1)[0],
                description=description or doc,
                shortcut=shortcut,
            )
        )
        return handler

    return register
