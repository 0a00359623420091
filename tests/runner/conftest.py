"""Runner test fixtures; the helpers live in runnerkit.py."""

from runnerkit import make_spec

__all__ = ["make_spec"]
