"""The HTTP edge: the EnOS v2.1 wire format (envelope, `action` dispatch, token auth) over catalog/ and store/."""
