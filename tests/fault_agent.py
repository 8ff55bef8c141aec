"""An agent that breaks down on purpose: the reference model agent with a fault.

    python tests/fault_agent.py [--drop-resets] [--marker M]
        [--ready PATH (--ready-after N | --ready-at-rst N)] FAULT [N]

It speaks the agent contract (docs/agent-protocol.md) with one model
endpoint behind it (harness/fuzz/targets/model_agent.py's ModelStack), exactly as
`python -m synack.harness.fuzz.targets.model_agent` does, until its fault strikes.
`--drop-resets` seeds a real bug as well (the stack's RSTs never leave it),
so that findings can come before the fault.  `--marker` is ignored: it puts
a unique word in the argv, by which the tests find leftover processes.
`--ready PATH` creates PATH once the agent has answered N commands or sent
its N-th RST: the tests wait for it instead of sleeping.

Faults (N counts commands, 1 is the first after the hello):

    none               no fault
    hang-hello         alive, silent, never says hello
    hang-after N       after N commands: alive, reads and says nothing
    hang-at-rst N      the N-th RST the stack sends: alive, silent from then on
                       (with --drop-resets, RSTs are what the fuzzer shrinks:
                       2 hangs while shrinking or on hypothesis's final replay)
    exit-after N       after N commands: a message on stderr, exit status 3
    exit-random SEED   exit-after a number of commands from 1 to 150 drawn from SEED
    garbage-after N    from command N+1 on, every reply is a garbage line
    wrong-after N      from command N+1 on, every reply is "accepted"
    number-after N     from command N+1 on, "ok N" replies name a malformed number
    long-line-after N  at command N+1, a line of 1 MiB
    events-after N     at command N+1, event lines without end
    flood-after N      from command N+1 on, the next packet is sent again without end
    flood-reply-after N  the same, but the flood starts while a command is answered
    malformed-after N  from command N+1 on, every packet has a wrong TCP checksum
    ignore-eof         ignores SIGTERM, SIGINT, `quit` and the end of its input
"""

from __future__ import annotations

import argparse
import os
import random
import select
import signal
import socket
import sys
from typing import NoReturn

from synack.harness.fuzz.targets.model import fuzz_config
from synack.harness.fuzz.targets.model_agent import MSS, ModelStack
from synack.harness.fuzz.targets.wire import decode
from synack.model.config import Profile

FAULTS = (
    "none", "hang-hello", "hang-after", "hang-at-rst", "exit-after", "exit-random",
    "garbage-after", "wrong-after", "number-after", "long-line-after", "events-after",
    "flood-after", "flood-reply-after", "malformed-after", "ignore-eof",
)  # fmt: skip


def hang() -> NoReturn:
    """Alive and silent: reads nothing, writes nothing, until killed."""
    while True:
        signal.pause()


class Packets:
    """The packet socket as ModelStack sees it, with the packet faults."""

    def __init__(self, sock: socket.socket, args: argparse.Namespace) -> None:
        self.sock, self.args = sock, args
        self.resets = 0
        self.flood = self.malformed = False
        self.in_command = False  # a flood starts with a packet that answers a packet

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, size: int) -> bytes:
        return self.sock.recv(size)

    def send(self, raw: bytes) -> None:
        if decode(raw).segment.rst:
            self.resets += 1
            if self.resets == self.args.ready_at_rst:
                ready(self.args)
            if self.args.fault == "hang-at-rst" and self.resets == self.args.n:
                hang()
            if self.args.drop_resets:
                return
        if self.malformed:
            raw = raw[:36] + bytes([raw[36] ^ 0xFF]) + raw[37:]  # the TCP checksum
        self.sock.send(raw)
        while self.flood and self.in_command == (self.args.fault == "flood-reply-after"):
            self.sock.send(raw)  # blocks while synack does not read


def ready(args: argparse.Namespace) -> None:
    if args.ready:
        with open(args.ready, "w") as f:
            f.write(f"{os.getpid()}\n")


def reply_for(args: argparse.Namespace, packets: Packets, count: int, reply: str) -> str:
    """The reply to command number `count` once the fault is applied."""
    fault, n = args.fault, args.n
    if count == args.ready_after:
        ready(args)
    if count <= n or fault in ("none", "hang-at-rst", "ignore-eof"):
        return reply
    if fault == "hang-after":
        hang()
    if fault in ("exit-after", "exit-random"):
        print(f"fault_agent: simulated crash after {n} commands", file=sys.stderr, flush=True)
        os._exit(3)
    if fault == "garbage-after":
        return f"banana {count} ~~ \x01 {'z' * 300}"
    if fault == "wrong-after":
        return "accepted"
    if fault == "number-after" and reply.startswith("ok "):
        return "ok 1e3"
    if fault == "long-line-after":
        sys.stdout.write("x" * (1 << 20))
        sys.stdout.flush()
        hang()
    if fault == "events-after":
        while True:
            print(f"event the stack has a lot to say ({count})", flush=True)
    packets.flood = fault in ("flood-after", "flood-reply-after")
    packets.malformed = fault == "malformed-after"
    return reply


def serve(stack: ModelStack, packets: Packets, args: argparse.Namespace) -> None:
    stdin = sys.stdin.fileno()
    pending = b""
    count = 0
    while True:
        ready, _, _ = select.select([stdin, packets.fileno()], [], [])
        if packets.fileno() in ready:
            stack.packet(packets.recv(65536))
        if stdin not in ready:
            continue
        chunk = os.read(stdin, 65536)
        if not chunk:
            if args.fault == "ignore-eof":
                hang()
            return
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            words = line.decode(errors="replace").split()
            if words == ["quit"]:
                if args.fault == "ignore-eof":
                    hang()
                return
            if not words:
                continue
            count += 1
            packets.in_command = True
            try:
                reply = stack.command(words)
            except (ValueError, IndexError) as exc:
                reply = f"error {exc}"
            packets.in_command = False
            reply = reply_for(args, packets, count, reply)
            for event in stack.events:
                print(event)
            stack.events = []
            print(reply, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop-resets", action="store_true")
    parser.add_argument("--marker", default="")
    parser.add_argument("--ready", default="")
    parser.add_argument("--ready-after", type=int, default=0)
    parser.add_argument("--ready-at-rst", type=int, default=0)
    parser.add_argument("fault", choices=FAULTS)
    parser.add_argument("n", type=int, nargs="?", default=0)
    args = parser.parse_args()
    if args.fault == "exit-random":
        args.n = random.Random(args.n).randint(1, 150)
    if args.fault == "ignore-eof":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if args.fault == "hang-hello":
        hang()
    sock = socket.socket(fileno=int(os.environ["SYNACK_PACKET_FD"]))
    packets = Packets(sock, args)
    cfg = fuzz_config(Profile.RFC9293).with_(rcv_wnd=0xFFFF, mss=MSS)
    stack = ModelStack(cfg, packets, drop_resets=False)  # type: ignore[arg-type]
    traits = "exact_windows=0 user_outputs=0 spontaneous_timers=0 holds_out_of_order=0"
    print(f"synack-agent 1 name=fault-{args.fault} {traits} keeps_listener=1", flush=True)
    serve(stack, packets, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
