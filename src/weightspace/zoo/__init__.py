"""Zoos: populations of trained models in safetensors shards plus a SQLite manifest."""

from weightspace.zoo.build import build_zoo
from weightspace.zoo.importer import import_checkpoints
from weightspace.zoo.store import MemberRecord, Zoo

__all__ = ["Zoo", "MemberRecord", "build_zoo", "import_checkpoints"]
