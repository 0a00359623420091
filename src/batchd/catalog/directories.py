"""The workflow directory tree of an organisation: Create Directory, List Workflow Directories.

Every organisation has one root directory titled "Workflow" (made with the organisation, see
`store.identity.create_org`); sub-directories hang below it and flows sit in any directory.
Directory names are unique among siblings. Another organisation's directories do not exist for
the caller: a foreign `parentId` is "parentId not found".
"""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from batchd.catalog.fields import FieldReader
from batchd.catalog.model import UserList
from batchd.catalog.permissions import Caller, owns
from batchd.catalog.shapes import directory_node, workflow_leaf
from batchd.clock import now_ms
from batchd.errors import InvalidParameter
from batchd.store.identity import ROOT_DIRECTORY_NAME
from batchd.store.tables import directories, flows

NAME_MAX = 255


async def create_directory(conn: AsyncConnection, caller: Caller, body: Any) -> dict[str, str]:
    """Create Directory, with the error messages of spec §3.2 word for word."""
    reader = FieldReader(body if body is not None else {})
    name = reader.raw("dirName")
    if not isinstance(name, str) or not name.strip():
        raise InvalidParameter("param: dirName cannot be empty")
    parent_id = reader.raw("parentId")
    if not isinstance(parent_id, str) or not parent_id.strip():
        raise InvalidParameter("param: parentId cannot be empty")
    name = name.strip()
    if len(name) > NAME_MAX or "\x00" in name:
        raise InvalidParameter(f"param: dirName must be at most {NAME_MAX} characters, without NUL")
    parent = await conn.execute(
        sa.select(directories.c.dir_id).where(directories.c.dir_id == parent_id, directories.c.org_id == caller.org_id)
    )
    if parent.first() is None:
        raise InvalidParameter("parentId not found")
    sibling = await conn.execute(
        sa.select(directories.c.dir_id).where(directories.c.parent_id == parent_id, directories.c.name == name)
    )
    if sibling.first() is not None:
        raise InvalidParameter("A directory of the same name already exists")
    dir_id = uuid.uuid4().hex
    await conn.execute(sa.insert(directories).values(
        dir_id=dir_id, org_id=caller.org_id, parent_id=parent_id, name=name, created_at=now_ms()
    ))
    return {"dirId": dir_id}


async def list_directories(conn: AsyncConnection, caller: Caller) -> list[dict[str, Any]]:
    """List Workflow Directories: the organisation's tree, directories first (by name), then flows
    (by id); a flow's leaf is `editable` when the caller owns it."""
    dirs = (await conn.execute(
        sa.select(directories).where(directories.c.org_id == caller.org_id).order_by(directories.c.name)
    )).all()
    roots = [d for d in dirs if d.parent_id is None]
    if not roots:  # an organisation made before roots existed: give it one now
        dir_id = uuid.uuid4().hex
        await conn.execute(sa.insert(directories).values(
            dir_id=dir_id, org_id=caller.org_id, parent_id=None, name=ROOT_DIRECTORY_NAME, created_at=now_ms()
        ))
        return [directory_node(dir_id, ROOT_DIRECTORY_NAME, [])]
    leaves: dict[str, list[dict[str, Any]]] = {}
    flow_rows = await conn.execute(
        sa.select(flows.c.flow_id, flows.c.name, flows.c.dir_id, flows.c.creator, flows.c.owners)
        .where(flows.c.org_id == caller.org_id).order_by(flows.c.flow_id)
    )
    for row in flow_rows:
        editable = owns(caller, creator=row.creator, owners=UserList.parse(row.owners))
        leaves.setdefault(row.dir_id, []).append(workflow_leaf(row.flow_id, row.name, editable=editable))
    children: dict[str, list[sa.Row]] = {}
    for d in dirs:
        if d.parent_id is not None:
            children.setdefault(d.parent_id, []).append(d)

    def node(row: sa.Row) -> dict[str, Any]:
        subdirs = [node(child) for child in children.get(row.dir_id, [])]
        return directory_node(row.dir_id, row.name, subdirs + leaves.get(row.dir_id, []))

    return [node(root) for root in roots]
