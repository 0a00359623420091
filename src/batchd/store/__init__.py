"""Persistence: the tables (`tables`), the engine and migrations (`database`), id allocation
(`ids`), and the identity records the API authenticates against (`identity`, `tokens`)."""
