"""The catalogue: workflow definitions, their validation, versions, directories and permissions.

Layered as: `model` (records) ← `fields`/`validation` (JSON → records) ← `shapes` (records → wire)
← `editing` (Save Flow's merge) ← `permissions` ← `service` (operations on the store).
Everything but `service` is pure.
"""
