"""The OpenAPI description served at /docs, written for the EnOS wire format.

FastAPI cannot describe "one path, many operations chosen by `action`", so the v2.1 paths are
generated from the operation registry: per (path, method), the `action` enum, the common query
parameters, the signing headers, and the real envelope for every answer. Each action's summary
and description (from `@operation`) are listed in the method's description and in `x-actions`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

import batchd
from batchd.api.context import OPERATIONS, Operation
from batchd.api.dispatch import API_PREFIX

ERROR_CODES = [62101, 62102, 62103, 62104, 62105, 62109]


def _envelope(code: dict[str, Any], data: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "required": ["code", "msg", "data", "requestId"],
        "additionalProperties": False,
        "properties": {
            "code": code,
            "msg": {"type": "string", "description": '"OK" on success; else what went wrong'},
            "data": data,
            "requestId": {"type": "string", "format": "uuid"},
        },
    }


#: Any envelope (the generic shape, for readers of the description).
ENVELOPE = _envelope(
    {"type": "integer", "description": "0 on success; else an EnOS error code (62101-62109), 401 or 404"},
    {"description": 'The result; null on error; "" for operations without a result'},
    "The EnOS answer envelope",
)
_NULL = {"type": "null"}
_ERROR_ENVELOPE = _envelope({"type": "integer", "enum": ERROR_CODES}, _NULL, "A business error: `data` is null")
_UNAUTHORIZED = _envelope({"type": "integer", "enum": [401]}, _NULL, "Authentication failed; `msg` says why")
_TOO_LARGE = _envelope({"type": "integer", "enum": [62102]}, _NULL, "Body over max_body_bytes; `msg` names the limit")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object: every property required except `optional`, nothing else allowed."""
    return {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
        "properties": properties,
    }


_STR, _INT, _BOOL, _NUM = {"type": "string"}, {"type": "integer"}, {"type": "boolean"}, {"type": "number"}
_INT_TEXT = {"type": ["integer", "string"], "description": "a number, or a string of digits"}
_STATUS = {"type": "integer", "minimum": -1, "maximum": 10, "description": "spec §2.4 status code"}
_WIRE_TIME = {"type": ["string", "null"], "description": "yyyy-MM-dd HH:mm:ss in the server zone; null until it happens"}

#: The `data` of each successful answer (spec §2-§3), by component name.
DATA_SCHEMAS: dict[str, Any] = {
    "FlowDetail": _object({
        "flowId": _INT, "flowName": _STR, "active": {"type": "integer", "enum": [0, 1]}, "creator": _STR,
        "createTime": _STR, "updateUser": _STR, "updateTime": _STR, "freq": _STR, "cycle": _STR,
        "parameters": _STR, "owner": _STR, "visitor": _STR, "doAs": _STR, "alertMode": _INT,
        "graph": {"type": "string", "description": "FlowGraph (spec §2.2) as JSON text"},
        "entry": _INT, "type": _INT, "syncType": _INT, "desc": _STR, "startTime": _STR, "virtual": _BOOL,
        "locked": _BOOL, "hasEditPri": _BOOL, "hasReadPri": _BOOL, "isUserLocked": _BOOL, "queue": _STR,
        "version": {"type": "integer", "minimum": 1, "description": "batchd extension: the version shown"},
    }),
    "ExportTask": _object({
        "name": _STR, "resource": _STR, "type": {"description": "as imported: a name or a legacy number"},
        "syncType": _INT, "cmd": _STR, "submitter": _STR, "filePackage": _STR, "cron": _STR,
        "priorityLevel": _INT, "timeout": _INT, "retryLimit": _INT, "retryInterval": _INT, "successCode": _STR,
        "asLink": _BOOL, "runMode": {"type": "string", "description": "JSON text"}, "waitCode": _STR,
    }, optional=("waitCode",)),
    "FlowDefinition": _object({
        "name": _STR, "cycle": _STR, "cron": _STR, "parameters": _STR, "alertMode": _INT, "submitter": _STR,
        "owners": _STR, "visitors": _STR, "type": _INT, "syncType": _INT, "desc": _STR, "startTime": _STR,
        "tasks": {"type": "array", "items": _ref("ExportTask")},
        "flowLinks": {"type": "array", "items": _object({"linkId": _STR, "sourceFlowName": _STR})},
        "taskLinks": {"type": "array", "items": _object(
            {"linkId": _STR, "sourceFlowName": _STR, "sourceTaskName": _STR})},
        "relations": {"type": "array", "items": _object(
            {"sourceTaskName": _STR, "targetTaskName": _STR, "rerun": {"type": ["boolean", "integer"]}})},
        "linkRelations": {"type": "array", "items": _object(
            {"linkId": _STR, "targetTaskName": _STR, "rerun": {"type": ["boolean", "integer"]}})},
    }),
    "MyFlow": _object({"flowId": _STR, "editable": _BOOL, "flowName": _STR, "cycle": _STR}),
    "PageFlow": _object({"flowId": _STR, "flowName": _STR}),
    "FlowId": _object({"flowId": _INT}),
    "DirId": _object({"dirId": _STR}),
    "DirectoryNode": _object({
        "children": {"type": "array", "items": {"anyOf": [_ref("DirectoryNode"), _ref("WorkflowLeaf")]}},
        "title": _STR, "type": _INT, "key": _STR, "isDirectory": {"const": True},
    }),
    "WorkflowLeaf": _object({
        "editable": _BOOL, "title": _STR, "type": _INT, "key": _INT, "isDirectory": {"const": False},
    }),
    "TimeZone": _object({"timezone": {"type": "string", "pattern": r"^GMT[+-]\d{1,2}(:\d{2})?$"}}),
    "FlowInstanceId": _object({"flowInstanceId": {"type": "string", "pattern": r"^\d+-\d{14}$"}}),
    "FlowInstance": _object({
        "instanceId": _STR, "flowId": _INT, "flowName": _STR, "freq": _STR, "cycle": _STR,
        "parameters": {"type": "string", "description": "the run's [{key, value}] as JSON text"},
        "doAs": _STR, "status": _STATUS, "statusDesc": _STR, "triggerTime": _WIRE_TIME, "startTime": _WIRE_TIME,
        "endTime": _WIRE_TIME, "timestamp": _STR, "virtual": _BOOL, "owner": _STR, "alertMode": _INT,
        "calDt": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$", "description": "business date"},
        "hasEditPri": _BOOL, "hasReadPri": _BOOL, "isCancelled": _BOOL, "type": _INT,
        "graph": {"type": "string", "description": "InstanceGraph (spec §2.14) as JSON text; Get only"},
    }, optional=("graph",)),
    "FlowInstancePage": _object({
        "flowInsts": {"type": "array", "items": _ref("FlowInstance")},
        "count": {"type": "integer", "minimum": 0, "description": "all matches, not just this page"},
    }),
    "TaskInstance": _object({
        "instanceId": _STR, "taskId": _INT, "taskName": _STR, "cycle": _STR, "status": _STATUS, "stsDesc": _STR,
        "runNum": _INT, "type": {"description": "legacy task type code, or the definition's own type"},
        "syncType": _INT, "freq": {"type": ["string", "null"]}, "ifPre": {"type": "integer", "enum": [0, 1]},
        "recallNum": _INT, "triggerTime": _WIRE_TIME, "timeout": _INT, "recallLimit": _INT,
        "recallInterval": _INT, "startTime": _WIRE_TIME, "endTime": _WIRE_TIME, "timeStamp": _STR,
        "isTimeout": _BOOL, "flowInstId": _STR, "doAs": _STR, "alert": _BOOL, "runMode": _STR, "cmd": _STR,
        "hasResourceBefore": _BOOL, "resourceName": _STR, "fileName": _STR, "resourceVersion": _STR,
    }),
    "TaskLog": _object({"log": {"type": "string", "description": "every attempt under its header, oldest first"}}),
}

_EMPTY = {"type": "string", "const": "", "description": "no result"}
_EPOCH_MS = {"type": ["integer", "string"], "description": "epoch milliseconds (digits as a string also accepted)"}
_PAGINATION = _object({
    "pageNo": _INT_TEXT, "pageSize": _INT_TEXT,
    "sorters": {"type": "array", "items": _object({"field": _STR, "order": _STR}, optional=("order",))},
}, optional=("pageNo", "sorters"))

#: Per (resource, method, action): `data` on success, extra query parameters, request body.
#: `test_description_covers_every_operation` keeps this in step with the registered operations.
ACTION_DOCS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("time", "GET", "getCurrentTime"): {"data": {"type": "integer", "description": "epoch ms"}},
    ("time", "GET", "getTimeZone"): {"data": _ref("TimeZone")},
    ("directories", "GET", "listWorkFlowDirs"): {"data": {"type": "array", "items": _ref("DirectoryNode")}},
    ("directories", "POST", "create"): {
        "data": _ref("DirId"),
        "body": _object({"dirName": _STR, "parentId": _STR}),
    },
    ("flows", "GET", "get"): {"data": _ref("FlowDetail"), "query": ["flowId", "version"]},
    ("flows", "GET", "loadForEdit"): {"data": _ref("FlowDetail"), "query": ["flowId", "version"]},
    ("flows", "GET", "export"): {"data": _ref("FlowDefinition"), "query": ["flowId", "version"]},
    ("flows", "GET", "getMyFlow"): {"data": {"type": "array", "items": _ref("MyFlow")},
                                    "query": ["expression", "searchValue"]},
    ("flows", "GET", "delete"): {"data": _EMPTY, "query": ["flowId"]},
    ("flows", "POST", "import"): {
        "data": _ref("FlowId"),
        "body": _object({
            "flowName": _STR, "dirId": _STR, "desc": _STR, "flowId": _INT_TEXT,
            "flowJson": {"type": ["object", "string"], "description": "FlowDefinition (Export's data), or its JSON text"},
        }, optional=("desc", "flowId")),
    },
    ("flows", "POST", "save"): {
        "data": _ref("FlowId"),
        "body": {
            "type": "object", "required": ["id"],
            "description": "FlowGraph shape; absent fields keep their stored value (docs/decisions.md)",
            "properties": {
                "id": _INT_TEXT, "restoreVersion": _INT_TEXT, "name": _STR, "freq": _STR, "cycle": _STR,
                "type": _INT_TEXT, "alertMode": _INT_TEXT, "owners": _STR, "visitors": _STR, "doAs": _STR,
                "parameters": _STR, "desc": _STR, "startTime": _STR, "active": _INT_TEXT, "syncType": _INT_TEXT,
                "tasks": {"type": "array", "items": {"type": "object"}},
                "flows": {"type": "array", "items": {"type": "object"}},
                "relations": {"type": "array", "items": {"type": "object"}},
            },
        },
    },
    ("flows", "POST", "enable"): {"data": _EMPTY, "body": _object({"flowId": _INT_TEXT})},
    ("flows", "POST", "disable"): {"data": _EMPTY, "body": _object({"flowId": _INT_TEXT})},
    ("flows", "POST", "trigger"): {
        "data": _ref("FlowInstanceId"),
        "body": _object({"flowId": _INT_TEXT, "triggerTime": _EPOCH_MS}, optional=("triggerTime",)),
    },
    ("flows", "POST", "triggerFromTask"): {
        "data": _ref("FlowInstanceId"),
        "body": _object({"flowId": _INT_TEXT, "taskId": _INT_TEXT, "triggerTime": _EPOCH_MS},
                        optional=("triggerTime",)),
    },
    ("flows", "POST", "updateAndTrigger"): {
        "data": _ref("FlowInstanceId"),
        "body": _object({
            "flowId": _INT_TEXT, "triggerTime": _EPOCH_MS,
            "parameters": {"type": ["array", "string", "object"],
                           "description": "[{key, value}] for this run only (or that array as JSON text)"},
        }, optional=("triggerTime", "parameters")),
    },
    ("flowInstances", "GET", "get"): {"data": _ref("FlowInstance"), "query": ["flowInstId"]},
    ("flowInstances", "POST", "search"): {
        "data": _ref("FlowInstancePage"),
        "body": _object({
            "flowId": _INT_TEXT, "type": _INT_TEXT, "owner": _STR, "expression": _STR,
            "fromTriggerTime": _EPOCH_MS, "toTriggerTime": _EPOCH_MS,
            "status": {"type": ["string", "array"], "description": "status codes, comma-separated or a list"},
            "pagination": _PAGINATION,
        }, optional=("flowId", "type", "owner", "expression", "fromTriggerTime", "toTriggerTime", "status",
                     "pagination")),
    },
    ("flowInstances", "POST", "cancel"): {"data": _EMPTY, "body": _object({"flowInstId": _STR})},
    ("taskInstances", "GET", "get"): {"data": _ref("TaskInstance"), "query": ["taskInstId"]},
    ("taskInstances", "GET", "getLog"): {"data": _ref("TaskLog"), "query": ["taskInstId", "maxLength"]},
    ("flows", "POST", "search"): {
        "data": {"type": "array", "items": _ref("PageFlow")},
        "body": _object({
            "expression": _STR,
            "pagination": _PAGINATION,
        }, optional=("expression", "pagination")),
    },
}

_SIGNING_HEADERS = [
    ("apim-accesstoken", "Access token from the token service"),
    ("apim-timestamp", "Epoch milliseconds; within 5 minutes of the server's clock"),
    ("apim-signature", "lowercase hex sha256(accessToken + sorted query name/value pairs + raw body + timestamp + appSecret)"),
]

_QUERY_PARAMETERS = {
    "flowId": ({"type": "integer", "minimum": 1}, "The workflow"),
    "version": ({"type": "integer", "minimum": 1}, "batchd extension: an earlier saved version"),
    "expression": (_STR, "Case-insensitive substring of the flow id or name"),
    "searchValue": (_STR, "V2.0 name of `expression`"),
    "flowInstId": (_STR, "A flow instance id, `{flowId}-{yyyyMMddHHmmss}`"),
    "taskInstId": (_STR, "A task instance id, `{taskId}-{yyyyMMddHHmmss}`"),
    "maxLength": ({"type": "integer", "minimum": 0}, "Keep only the last N characters of the log"),
}

def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title="batchd — EnOS Batch Processing Service API v2.1",
        version=batchd.__version__,
        description="Every v2.1 path serves several operations chosen by the `action` query parameter. "
        "Authenticate with the token service, then sign each call (headers below); see README.",
        routes=app.routes,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.update({"Envelope": ENVELOPE, "ErrorEnvelope": _ERROR_ENVELOPE, "Unauthorized": _UNAUTHORIZED,
                       "BodyTooLarge": _TOO_LARGE, **DATA_SCHEMAS})
    paths = schema.setdefault("paths", {})
    for resource in OPERATIONS.resources():
        for method in ("GET", "POST"):
            ops = [op for op in OPERATIONS.all() if (op.resource, op.method) == (resource, method)]
            if ops:
                paths.setdefault(f"{API_PREFIX}/{resource}", {})[method.lower()] = _describe(resource, method, ops)
    app.openapi_schema = schema
    return schema


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _describe(resource: str, method: str, ops: list[Operation]) -> dict[str, Any]:
    needs_caller = any(op.needs_caller for op in ops)
    docs = [ACTION_DOCS.get((op.resource, op.method, op.action), {}) for op in ops]
    parameters: list[dict[str, Any]] = [
        {
            "name": "action",
            "in": "query",
            "required": True,
            "description": "The operation: " + "; ".join(f"`{op.action}` — {op.summary}" for op in ops),
            "schema": {"type": "string", "enum": [op.action for op in ops]},
        },
        {"name": "userId", "in": "query", "required": needs_caller, "schema": {"type": "string"},
         "description": "User the call runs for; must belong to orgId" if needs_caller else "Not used"},
        {"name": "orgId", "in": "query", "required": needs_caller, "schema": {"type": "string"},
         "description": "Organisation of the service account" if needs_caller else "Not used"},
    ]
    for name, (schema, text) in _QUERY_PARAMETERS.items():
        users = [op.action for op, doc in zip(ops, docs, strict=True) if name in doc.get("query", ())]
        if users:
            parameters.append({"name": name, "in": "query", "required": False, "schema": schema,
                               "description": f"{text} (actions: {', '.join(users)})"})
    parameters += [
        {"name": name, "in": "header", "required": False, "description": text + " (not needed with --insecure)",
         "schema": {"type": "string"}}
        for name, text in _SIGNING_HEADERS
    ]
    # Unknown operations (e.g. test-only ones) answer anything; documented ones their own `data`.
    data = [doc.get("data", {}) for doc in docs]
    success = _envelope({"const": 0}, {"anyOf": data} if all(data) else {}, "Success: `data` per action")
    described: dict[str, Any] = {
        "tags": [resource],
        "summary": f"{method} {resource}: " + ", ".join(op.action for op in ops),
        "description": "\n\n".join(f"**{op.action}** — {op.description or op.summary}" for op in ops),
        "operationId": f"{method.lower()}_{resource}",
        "parameters": parameters,
        "responses": {
            "200": _json(
                {"oneOf": [success, _ref("ErrorEnvelope")]},
                "Envelope; `code` 0 on success, else 62101 (userId/orgId), 62102 (parameter: unknown action, "
                "malformed JSON ...), 62103 (privilege), 62104 (state), 62105 (locked), 62109 (internal)",
            ),
            "401": _json(_ref("Unauthorized"), "Authentication failed: envelope with `code` 401 and the reason in `msg`"),
            "413": _json(_ref("BodyTooLarge"), "Body over the size limit: envelope with `code` 62102 naming the limit"),
        },
        "x-actions": {op.action: {"summary": op.summary, "description": op.description} for op in ops},
    }
    if method == "POST":
        bodies = [doc["body"] for doc in docs if "body" in doc]
        body_schema = {"anyOf": bodies} if len(bodies) == len(docs) else {"type": "object"}
        described["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": {**body_schema, "description": "Depends on the action"}}},
        }
    return described
