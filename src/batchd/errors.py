"""The one error hierarchy of batchd, each class carrying its EnOS error code.

Every layer raises these; the API turns them into the `{code, msg, data}` envelope in one place,
and the CLI turns them into exit code 1 with the message. A message is what the user reads, so
it names the offending field and value (`flowJson.tasks[2].timeout: -1 is below 0`).

Codes are those of the EnOS Batch Processing Service v2.1 (spec §5.1):

=====  ==========================================================================
62101  the caller's userId/orgId pair is unknown or does not match
62102  invalid parameter: malformed body, failed validation, unknown id
62103  the caller has no privilege for this object
62104  illegal in the current state: workflow has no task, is depended on, ...
62105  the caller's account is locked
62109  internal error, and "no log found"
=====  ==========================================================================
"""

from __future__ import annotations


class BatchdError(Exception):
    """Base of every error batchd reports to a user. Subclasses fix `code`."""

    code: int = 62109

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class IdentityError(BatchdError):
    """The userId does not exist or does not belong to the orgId of the call."""

    code = 62101


class InvalidParameter(BatchdError):
    """Bad input: a missing or malformed field, a failed validation rule, an unknown id."""

    code = 62102


class NoPrivilege(BatchdError):
    """The caller may not read or change this object (not an owner, visitor, or member)."""

    code = 62103


class IllegalState(BatchdError):
    """The operation is not allowed in the object's current state (no task, still referenced)."""

    code = 62104


class AccountLocked(BatchdError):
    """The caller's account is locked."""

    code = 62105


class InternalError(BatchdError):
    """Something failed inside batchd; also EnOS's code for "No log found"."""

    code = 62109
