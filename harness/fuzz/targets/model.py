"""The executable specification as a target: the fuzzer's in-process peer."""

from __future__ import annotations

from dataclasses import dataclass, field

from synack.model.config import Config, Profile, Variant
from synack.model.endpoint import step
from synack.model.segment import Segment
from synack.model.tcb import Tcb, closed
from synack.model.types import (
    Deliver,
    Emit,
    Event,
    OpenCall,
    Output,
    SegmentArrives,
    Signal,
    Timeout,
    TimerKind,
)

from .base import AppCall, Observation, Role, Traits

FUZZ_RETRIES = {"syn_retries": 2, "synack_retries": 2, "retries": 3}
"""Retry limits shared by every target, small so that give-up is within reach."""


def fuzz_config(profile: Profile, variant: Variant | None = None) -> Config:
    """The model configuration the fuzzer runs in-process targets and the oracle with."""
    return Config(profile=profile, variant=variant, rcv_wnd=32, mss=8, **FUZZ_RETRIES)  # type: ignore[arg-type]


MODEL_TRAITS = Traits(
    exact_windows=True,
    user_outputs=True,
    spontaneous_timers=False,
    calls_in_any_state=True,
    holds_out_of_order=False,
)


@dataclass
class ModelTarget:
    """The executable specification itself (any profile, optionally a broken variant)."""

    cfg: Config
    name: str = "model"
    traits: Traits = MODEL_TRAITS
    tcb: Tcb = field(default_factory=closed)
    pending: list[Output] = field(default_factory=list)

    def _feed(self, event: Event) -> None:
        self.tcb, outputs = step(self.tcb, event)
        self.pending.extend(outputs)

    def start(self, role: Role, iss: int) -> None:
        pool = tuple((iss + k * 0x10000001) & 0xFFFFFFFF for k in range(4))
        self.tcb = closed(self.cfg, pool)
        self.pending = []
        self._feed(OpenCall(active=role is Role.ACTIVE))

    def inject(self, segment: Segment) -> None:
        self._feed(SegmentArrives(segment))

    def call(self, call: AppCall) -> None:
        self._feed(call.event())

    def wait(self) -> None:
        """The earliest timer fires: retransmission before user timeout before 2 MSL."""
        for kind in (TimerKind.RETRANSMISSION, TimerKind.USER, TimerKind.TIME_WAIT):
            if kind in self.tcb.timers:
                self._feed(Timeout(kind))
                return

    def collect(self, expect: int) -> Observation:
        outputs, self.pending = self.pending, []
        return Observation(
            segments=tuple(o.segment for o in outputs if isinstance(o, Emit)),
            user=tuple(o for o in outputs if isinstance(o, Signal | Deliver)),
        )

    def close(self) -> None:
        self.pending = []
