"""The catalogue: workflow definitions, their validation, versions, directories and permissions.

Pure layers, each importing only those before it: `model` (frozen records) ← `fields` (typed
reading of loose JSON, with field paths) ← `validation` (Import/Save bodies → records, DAG rules)
← `shapes` (records → wire dicts, stored documents) ← `editing` (Save Flow's merge) ←
`permissions`. On the store: `flow_store` (rows of flows, versions, tasks, dependencies kept in
step), then the operations the API calls: `flows` and `directories`.
"""
