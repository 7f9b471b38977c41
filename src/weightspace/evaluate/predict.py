"""Moved to weightspace.nets.predict (below adapt/, which uses it); kept for imports in flight."""

from weightspace.nets.predict import accuracy_per_member, predict_members  # noqa: F401
