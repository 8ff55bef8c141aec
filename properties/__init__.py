"""synack.properties: what must hold of the specification, as named predicates."""

from .catalogue import BY_NAME, CATALOGUE, Kind, Property, get
from .ends import End, end_kind

__all__ = ["BY_NAME", "CATALOGUE", "End", "Kind", "Property", "end_kind", "get"]
