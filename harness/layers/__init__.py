"""Layer-type handlers. Importing this package registers every handler in the table."""

from harness.layers import (  # noqa: F401
    activation,
    common,
    data,
    forks,
    loss,
    neuron,
    normalization,
    recurrent,
    utility,
    vision,
)
from harness.layers.base import Convention, LayerHandler, canonical_type, handler_for, known_types

__all__ = ["Convention", "LayerHandler", "canonical_type", "handler_for", "known_types"]
