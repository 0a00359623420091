"""Operations, one module per resource path; each registers with `@operation` on import."""
