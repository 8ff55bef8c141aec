"""The reference agent: the executable specification behind the agent contract.

    python -m synack.harness.fuzz.targets.model_agent [--profile P] [--variant V] [--rcv-wnd N]
                                         [--drop-resets]

It speaks version 1 of the contract (docs/agent-protocol.md) exactly as a
shim around a real stack would: IPv4 packets on the datagram socket
named by SYNACK_PACKET_FD, commands on stdin, one reply line each on
stdout.  Behind it is one model endpoint.  `--drop-resets` seeds a bug:
the stack's RST segments never leave it.  Time is virtual: `wait` fires
the next armed timer.  `--rcv-wnd` is the receive buffer (65535 unless
told): at most what SEG.WND can say, as the contract negotiates no window
scaling (RFC 7323), so the window the stack uses is always one it can
advertise.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import sys
from typing import TextIO

from synack.harness.fuzz.targets.model import fuzz_config
from synack.harness.fuzz.targets.wire import MalformedPacket, Packet, decode, encode, mss_option
from synack.model.config import Config, Profile, Variant
from synack.model.endpoint import step
from synack.model.tcb import Tcb, closed
from synack.model.types import (
    FIN_RECEIVED,
    SYNCHRONIZED,
    AbortCall,
    CloseCall,
    Deliver,
    Emit,
    Event,
    OpenCall,
    ReceiveCall,
    SegmentArrives,
    SendCall,
    Signal,
    State,
    Timeout,
    TimerKind,
)

MSS = 536
MAX_FIELD_WND = 0xFFFF
"""The largest window a 16-bit SEG.WND says without window scaling."""


class ModelStack:
    """One model endpoint with sockets-like calls and a packet interface."""

    def __init__(self, cfg: Config, packets: socket.socket, drop_resets: bool) -> None:
        self.cfg, self.packets, self.drop_resets = cfg, packets, drop_resets
        self.local = os.environ.get("SYNACK_LOCAL", "198.18.0.1")
        self.peer = os.environ.get("SYNACK_PEER", "198.18.0.2")
        self.incarnation = 0
        self.reset()

    def reset(self) -> None:
        self.incarnation += 1
        base = (0x10000 * self.incarnation * 7919) & 0xFFFFFFFF
        self.tcb: Tcb = closed(self.cfg, (base, base ^ 0x5A5A5A5A))
        self.port = self.peer_port = 0
        self.received = b""
        self.events: list[str] = []

    def feed(self, event: Event) -> None:
        self.tcb, outputs = step(self.tcb, event)
        for out in outputs:
            if isinstance(out, Emit):
                seg = out.segment
                if seg.rst and self.drop_resets:
                    continue
                options = (mss_option(MSS),) if seg.syn else ()
                pkt = Packet(self.local, self.peer, self.port, self.peer_port, seg, options)
                self.packets.send(encode(pkt))
            elif isinstance(out, Deliver):
                self.received += out.data
            elif isinstance(out, Signal):
                self.events.append(f"event signal {out.reply.value}")

    def packet(self, raw: bytes) -> None:
        try:
            pkt = decode(raw)
        except MalformedPacket:
            return  # a real stack drops what it cannot parse
        if (pkt.dst, pkt.dport) != (self.local, self.port):
            return
        if self.peer_port == 0:
            self.peer_port = pkt.sport
        if pkt.sport == self.peer_port:
            self.feed(SegmentArrives(pkt.segment))

    def command(self, words: list[str]) -> str:
        name, args = words[0], words[1:]
        if name == "reset":
            self.reset()
            return "ok"
        if name == "listen":
            self.port = int(args[0])
            self.feed(OpenCall(active=False))
            return "ok"
        if name == "connect":
            self.port, self.peer_port = int(args[0]), int(args[1])
            self.feed(OpenCall(active=True))
            return "ok"
        if name == "accept":
            return "accepted" if self.tcb.state in SYNCHRONIZED else "errno EAGAIN"
        if name == "send":
            if self.tcb.state not in (State.ESTABLISHED, State.CLOSE_WAIT):
                return "errno EPIPE" if self.tcb.state in SYNCHRONIZED else "errno ENOTCONN"
            data = bytes.fromhex(args[0]) if args else b""
            self.feed(SendCall(data))
            return f"ok {len(data)}"
        if name == "recv":
            if not self.received and self.tcb.state is not State.CLOSED:
                self.feed(ReceiveCall())  # text stays queued in the TCB until read
            if self.received:
                data, self.received = self.received, b""
                return f"data {data.hex()}"
            if self.tcb.state in FIN_RECEIVED or self.tcb.state is State.CLOSED:
                return "eof"
            return "errno EAGAIN"
        if name == "shutdown":
            self.feed(CloseCall())
            return "ok"
        if name in ("abort", "close"):
            self.feed(AbortCall() if name == "abort" else CloseCall())
            return "ok"
        if name == "wait":
            for kind in (TimerKind.RETRANSMISSION, TimerKind.USER, TimerKind.TIME_WAIT):
                if kind in self.tcb.timers:
                    self.feed(Timeout(kind))
                    break
            return "ok"
        return f"error unknown command {name}"


def serve(stack: ModelStack, commands: int, replies: TextIO) -> None:
    """Answer commands (one line each) and take packets, until `quit` or end of input."""
    pending = b""
    while True:
        ready, _, _ = select.select([commands, stack.packets.fileno()], [], [])
        if stack.packets.fileno() in ready:
            stack.packet(stack.packets.recv(65536))
        if commands not in ready:
            continue
        chunk = os.read(commands, 65536)
        if not chunk:
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            words = line.decode(errors="replace").split()
            if words == ["quit"]:
                return
            if not words:
                continue
            try:
                reply = stack.command(words)
            except (ValueError, IndexError) as exc:
                reply = f"error {exc}"
            for event in stack.events:
                print(event, file=replies)
            stack.events = []
            print(reply, file=replies, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="rfc9293", choices=[p.value for p in Profile])
    parser.add_argument("--variant", choices=[v.value for v in Variant])
    parser.add_argument("--drop-resets", action="store_true", help="seed a bug: send no RST")
    parser.add_argument(
        "--rcv-wnd",
        type=int,
        default=MAX_FIELD_WND,
        help=f"the receive buffer in octets, 1..{MAX_FIELD_WND} ({MAX_FIELD_WND}; no window "
        "scaling, so no more than SEG.WND can say)",
    )
    args = parser.parse_args()
    if not 1 <= args.rcv_wnd <= MAX_FIELD_WND:
        parser.error(
            f"--rcv-wnd {args.rcv_wnd} is not in 1..{MAX_FIELD_WND}: a larger window needs "
            "window scaling (RFC 7323), which the agent does not negotiate"
        )
    fd = os.environ.get("SYNACK_PACKET_FD")
    if fd is None:
        print("model_agent: SYNACK_PACKET_FD is not set (run it through synack)", file=sys.stderr)
        return 2
    packets = socket.socket(fileno=int(fd))
    variant = Variant(args.variant) if args.variant else None
    cfg = fuzz_config(Profile(args.profile), variant).with_(rcv_wnd=args.rcv_wnd, mss=MSS)
    stack = ModelStack(cfg, packets, args.drop_resets)
    traits = "exact_windows=0 user_outputs=0 spontaneous_timers=0 holds_out_of_order=0"
    print(f"synack-agent 1 name=model-agent {traits} keeps_listener=1", flush=True)
    serve(stack, sys.stdin.fileno(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
