"""An agent that wraps another agent and seeds a bug into its stack's behaviour.

    python -m synack.harness.fuzz.targets.agent_filter --drop-resets -- CMD [ARGS ...]

It speaks the agent contract (docs/agent-protocol.md) to synack and runs
CMD, a real agent, behind it: command lines and replies pass through
unchanged, and so do packets, except that with `--drop-resets` every
packet the stack sends with RST set is dropped (a stack that never resets
anything).  The fuzzer must catch that; tests/test_stacks.py shows it does
on a real stack.  The hello's name gets a `+drop-resets` suffix so that
reports say which stack was tested.
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys

from synack.harness.common.children import die_with_parent
from synack.harness.fuzz.targets.wire import MalformedPacket, decode

RST = 0x04


def is_reset(raw: bytes) -> bool:
    try:
        return bool(decode(raw).segment.bits & RST)
    except MalformedPacket:
        return False  # synack reports what it cannot parse: pass it on


def _hello(line: bytes, suffix: str) -> bytes:
    words = line.decode(errors="replace").split()
    named = [f"{w}{suffix}" if w.startswith("name=") else w for w in words]
    return (" ".join(named) + "\n").encode()


def relay(
    outer: socket.socket, inner: socket.socket, agent: subprocess.Popen[bytes], drop_resets: bool
) -> int:
    """Pass lines and packets between synack and the agent until either side ends."""
    assert agent.stdin is not None and agent.stdout is not None
    stdin, replies = sys.stdin.fileno(), agent.stdout.fileno()
    hello_seen = False
    pending = b""
    while True:
        ready, _, _ = select.select([stdin, replies, outer, inner], [], [])
        if outer in ready:
            inner.send(outer.recv(65536))
        if inner in ready:
            raw = inner.recv(65536)
            if not (drop_resets and is_reset(raw)):
                outer.send(raw)
        if replies in ready:
            chunk = os.read(replies, 65536)
            if not chunk:
                return agent.wait()
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                if not hello_seen:
                    hello_seen = True
                    line = _hello(line, "+drop-resets" if drop_resets else "")[:-1]
                os.write(sys.stdout.fileno(), line + b"\n")
        if stdin in ready:
            chunk = os.read(stdin, 65536)
            try:
                if not chunk:
                    agent.stdin.close()
                    return agent.wait(timeout=5)
                agent.stdin.write(chunk)
                agent.stdin.flush()
            except (BrokenPipeError, subprocess.TimeoutExpired):
                return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drop-resets", action="store_true", help="drop every RST the stack sends")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS]: the real agent")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    fd = os.environ.get("SYNACK_PACKET_FD")
    if fd is None or not command:
        print("agent_filter: run through synack, with -- CMD [ARGS] after it", file=sys.stderr)
        return 2
    outer = socket.socket(fileno=int(fd))
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    env = {**os.environ, "SYNACK_PACKET_FD": str(theirs.fileno())}
    try:
        agent = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, pass_fds=(theirs.fileno(),),
            env=env, preexec_fn=die_with_parent(),
        )  # fmt: skip
    except OSError as exc:
        print(f"agent_filter: cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 2
    theirs.close()
    try:
        return relay(outer, mine, agent, args.drop_resets)
    finally:
        if agent.poll() is None:
            agent.kill()


if __name__ == "__main__":
    sys.exit(main())
