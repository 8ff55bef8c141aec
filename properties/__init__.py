"""synack.properties: what must hold of the specification, as named predicates."""

from .catalogue import BY_NAME, CATALOGUE, Deviation, Kind, Property, deviation, get
from .ends import End, end_kind

__all__ = [
    "BY_NAME",
    "CATALOGUE",
    "Deviation",
    "End",
    "Kind",
    "Property",
    "deviation",
    "end_kind",
    "get",
]
