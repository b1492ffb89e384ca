"""Layer-type handlers. Importing this package registers every handler in the table."""

from harness.layers import activation, common, forks, normalization, vision  # noqa: F401
from harness.layers.base import Convention, LayerHandler, canonical_type, handler_for, known_types

__all__ = ["Convention", "LayerHandler", "canonical_type", "handler_for", "known_types"]
