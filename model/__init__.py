"""synack.model: the executable specification of the TCP connection lifecycle.

Pure Python: no I/O, no clock, no randomness, and no z3, networkx,
hypothesis or harness imports.  Start with `step` (model/endpoint.py).
"""

from .config import DEFAULT_CONFIG, Config, Profile, Variant
from .endpoint import HANDLERS, step
from .segment import Flags, Segment
from .tcb import Tcb, closed
from .types import (
    FIN_RECEIVED,
    SYNCHRONIZED,
    AbortCall,
    CloseCall,
    Deliver,
    Emit,
    Event,
    OpenCall,
    Output,
    ReceiveCall,
    Reply,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Timeout,
    TimerCancel,
    TimerKind,
    TimerSet,
)

__all__ = [
    "DEFAULT_CONFIG",
    "FIN_RECEIVED",
    "HANDLERS",
    "SYNCHRONIZED",
    "AbortCall",
    "CloseCall",
    "Config",
    "Deliver",
    "Emit",
    "Event",
    "Flags",
    "OpenCall",
    "Output",
    "Profile",
    "ReceiveCall",
    "Reply",
    "Segment",
    "SegmentArrives",
    "SendCall",
    "Signal",
    "State",
    "Tcb",
    "Timeout",
    "TimerCancel",
    "TimerKind",
    "TimerSet",
    "Variant",
    "closed",
    "step",
]
