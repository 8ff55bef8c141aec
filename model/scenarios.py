"""Named systems: the programs each side runs, with the RFC figure they follow.

Retry counts are kept small (2) so exhaustive exploration stays fast;
`syn-loss` uses the seed articles' 5.  ISNs follow RFC 9293's figures
(client 100, server 300; an earlier client incarnation 90, server's next 400).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import network as netmod
from . import scripts as op
from .config import Config, Profile, Variant
from .network import NetworkConfig
from .scripts import Op
from .system import System, SystemState
from .tcb import closed

EXPLORATION_CONFIG = Config(syn_retries=2, synack_retries=2, retries=2)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    client_script: tuple[Op, ...]
    server_script: tuple[Op, ...]
    client_isns: tuple[int, ...] = (100,)
    server_isns: tuple[int, ...] = (300,)
    cfg: Config = EXPLORATION_CONFIG
    net: NetworkConfig = field(default_factory=NetworkConfig)

    def build(
        self,
        profile: Profile = Profile.RFC9293,
        variant: Variant | None = None,
        net: NetworkConfig | None = None,
        eager_timers: bool = False,
    ) -> System:
        """The system for this scenario under a profile, variant, network and timing."""
        cfg = self.cfg.with_(profile=profile, variant=variant)
        net_cfg = net or self.net
        initial = SystemState(
            client=closed(cfg, self.client_isns),
            server=closed(cfg, self.server_isns),
            net=netmod.initial(net_cfg),
        )
        return System(
            self.name, self.client_script, self.server_script, net_cfg, initial, eager_timers
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "handshake",
            "three-way handshake: connect() meets listen()/accept() (RFC 9293 Figure 6)",
            (op.connect(100), op.await_connected()),
            (op.listen(), op.accept()),
        ),
        Scenario(
            "lifecycle",
            "open, data both ways, the client closes first, TIME-WAIT (Figures 6 and 12)",
            (
                op.connect(100),
                op.await_connected(),
                op.send(b"hi"),
                op.close(),
                op.read_eof(),
                op.await_closed(),
            ),
            (
                op.listen(),
                op.accept(),
                op.send(b"yo"),
                op.read_eof(),
                op.close(),
                op.await_closed(),
            ),
        ),
        Scenario(
            "half-close",
            "the client shuts down writing; the server keeps sending after ACKing its FIN",
            (
                op.connect(100),
                op.await_connected(),
                op.send(b"q"),
                op.shutdown_wr(),
                op.read_eof(),
                op.await_closed(),
            ),
            (
                op.listen(),
                op.accept(),
                op.read_eof(),
                op.send(b"answer"),
                op.close(),
                op.await_closed(),
            ),
        ),
        Scenario(
            "simultaneous-open",
            "both sides connect() to each other at once (Figure 7)",
            (op.connect(100), op.await_connected()),
            (op.connect(300), op.await_connected()),
        ),
        Scenario(
            "simultaneous-close",
            "both sides close() an established connection, FINs cross (Figure 13)",
            (op.connect(100), op.await_connected(), op.close(), op.read_eof(), op.await_closed()),
            (op.listen(), op.accept(), op.close(), op.read_eof(), op.await_closed()),
        ),
        Scenario(
            "reconnect",
            "the client's earlier incarnation (ISN 90) crashes with its SYN still in the "
            "network, then connects again with ISN 100 (Figures 8 and 9)",
            (
                op.connect(90),
                op.abort(),
                op.connect(100),
                op.await_connected(),
                op.close(),
                op.read_eof(),
                op.await_closed(),
            ),
            (op.listen(), op.accept(), op.read_eof(), op.close(), op.await_closed()),
            client_isns=(90, 100),
            server_isns=(300, 400),
        ),
        Scenario(
            "reuse",
            "the client closes first, waits out TIME-WAIT and connects again on the same "
            "4-tuple; the server's ISN clock has moved on by less than the data it sent",
            (
                op.connect(100),
                op.await_connected(),
                op.close(),
                op.read_eof(),
                op.await_closed(),
                op.connect(110),
                op.await_connected(),
            ),
            (
                op.listen(),
                op.accept(),
                op.send(b"abcdef"),
                op.read_eof(),
                op.close(),
                op.await_closed(),
                op.listen(),
                op.accept(),
            ),
            client_isns=(100, 110),
            server_isns=(300, 302),
        ),
        Scenario(
            "abort",
            "the client sends data, then close() with SO_LINGER 0: RST ends the connection",
            (op.connect(100), op.await_connected(), op.send(b"x"), op.abort()),
            (op.listen(), op.accept(), op.read_eof()),
        ),
        Scenario(
            "refused",
            "connect() to a port nobody listens on: RST,ACK answers the SYN",
            (op.connect(100), op.await_connected()),
            (),
        ),
        Scenario(
            "syn-loss",
            "SYN and SYN,ACK lost: retransmitted up to tcp_syn_retries / tcp_synack_retries "
            "(5, as in the seed articles), then the connection attempt gives up",
            (op.connect(100), op.await_connected()),
            (op.listen(), op.accept()),
            cfg=Config(syn_retries=5, synack_retries=5, retries=2),
            net=NetworkConfig(capacity=1, dup=0),
        ),
    )
}

HAZARDS = ("reuse",)
"""Scenarios that demonstrate a known weakness of RFC 9293 as written rather than
a property the specification should hold: `reuse` shows TIME-WAIT assassination
(RFC 1337) under the rfc9293 and linux profiles, and holds under rfc1337."""

DEFAULT_SCENARIOS: tuple[str, ...] = tuple(name for name in SCENARIOS if name not in HAZARDS)


def get(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        known = ", ".join(SCENARIOS)
        raise KeyError(f"unknown scenario {name!r} (known: {known})") from None
