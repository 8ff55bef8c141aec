"""The independent stacks synack ships agents for: `--target lwip|gvisor|slirp`.

Each is a small shim (harness/shims/) that puts a stack from a Debian
package behind the agent contract (docs/agent-protocol.md).  A shim is
compiled on first use into a cache directory, keyed by a hash of its
source, its build command and the toolchain's and package's versions, so
an edit or an upgrade builds afresh and nothing else does.  Builds are
serialised by a lock file (parallel test workers share the cache) and
land by an atomic rename, so a build cut short leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from synack.harness.common.children import die_with_parent
from synack.harness.fuzz.targets.base import TargetError

SHIMS = Path(__file__).resolve().parent / "shims"
BUILD_TIMEOUT = 300.0  # a cold Go build of netstack takes seconds; a hung toolchain never ends


@dataclass(frozen=True)
class Stack:
    name: str
    title: str
    source: str  # in harness/shims/
    packages: str  # Debian packages the build needs
    needs: tuple[tuple[str, str], ...]  # (check, what is missing) pairs, see `missing_parts`
    build: Callable[[Path, Path, Path], list[str]]  # (source, binary, workdir) -> argv
    env: Callable[[Path], dict[str, str]] = lambda work: {}
    versions: tuple[tuple[str, ...], ...] = ()  # commands whose output keys the cache


def _cc(flags: Callable[[], list[str]]) -> Callable[[Path, Path, Path], list[str]]:
    def argv(source: Path, binary: Path, work: Path) -> list[str]:
        return ["cc", "-O2", "-Wall", "-Wextra", "-std=gnu11", "-o", str(binary), str(source),
                *flags()]  # fmt: skip

    return argv


def _lwip_flags() -> list[str]:
    return [*_output(["pkg-config", "--cflags", "--libs", "lwip"]).split(), "-lpthread"]


def _slirp_flags() -> list[str]:
    # Not pkg-config: slirp.pc requires glib-2.0.pc, which libslirp.h does not need.
    return ["-I/usr/include/slirp", "-lslirp"]


def _go(source: Path, binary: Path, work: Path) -> list[str]:
    return ["go", "build", "-o", str(binary), str(source)]


def _go_env(work: Path) -> dict[str, str]:
    # Offline, in GOPATH mode, against the Debian-packaged sources.
    return {
        "GO111MODULE": "off",
        "GOPATH": f"{work / 'gopath'}:/usr/share/gocode",
        "GOPROXY": "off",
        "GOFLAGS": "",
        "GOCACHE": str(work / "gocache"),
    }


STACKS: dict[str, Stack] = {
    "lwip": Stack(
        "lwip",
        "lwIP 2.1.3 (C), sockets API over a raw-IPv4 netif",
        "lwip_agent.c",
        "liblwip-dev",
        (
            ("tool:cc", "a C compiler (gcc)"),
            ("tool:pkg-config", "pkg-config"),
            ("pkg:lwip", "lwIP's headers (liblwip-dev)"),
        ),
        _cc(_lwip_flags),
        versions=(("cc", "--version"), ("pkg-config", "--modversion", "lwip")),
    ),
    "gvisor": Stack(
        "gvisor",
        "gVisor netstack (Go), tcpip endpoints over a link endpoint on the fd",
        "gvisor_agent.go",
        "golang-go golang-gvisor-gvisor-dev",
        (
            ("tool:go", "the Go toolchain (golang-go)"),
            (
                "dir:/usr/share/gocode/src/gvisor.dev/gvisor/pkg/tcpip",
                "gVisor's sources (golang-gvisor-gvisor-dev)",
            ),
        ),
        _go,
        _go_env,
        versions=(("go", "version"), ("dpkg-query", "-W", "golang-gvisor-gvisor-dev")),
    ),
    "slirp": Stack(
        "slirp",
        "libslirp 4.7 (C, BSD-derived TCP), as a guest sees it, in a private namespace",
        "slirp_agent.c",
        "libslirp-dev",
        (
            ("tool:cc", "a C compiler (gcc)"),
            ("file:/usr/include/slirp/libslirp.h", "libslirp's headers (libslirp-dev)"),
        ),
        _cc(_slirp_flags),
        versions=(("cc", "--version"), ("dpkg-query", "-W", "libslirp-dev")),
    ),
}


def _output(argv: list[str], env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=env,
            preexec_fn=die_with_parent(),
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def missing_parts(stack: Stack) -> list[str]:
    missing = []
    for check, what in stack.needs:
        kind, _, arg = check.partition(":")
        if kind == "tool":
            ok = shutil.which(arg) is not None
        elif kind == "pkg":
            ok = shutil.which("pkg-config") is not None and (
                subprocess.run(
                    ["pkg-config", "--exists", arg], timeout=30, preexec_fn=die_with_parent()
                ).returncode
                == 0
            )
        elif kind == "file":
            ok = Path(arg).is_file()
        else:
            ok = Path(arg).is_dir()
        if not ok:
            missing.append(what)
    return missing


def cache_root() -> Path:
    """Where built agents live: $SYNACK_AGENT_CACHE, else ~/.cache/synack/agents."""
    if "SYNACK_AGENT_CACHE" in os.environ:
        return Path(os.environ["SYNACK_AGENT_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synack" / "agents"


def _key(stack: Stack, source: Path) -> str:
    digest = hashlib.blake2b(digest_size=10)
    digest.update(source.read_bytes())
    for argv in stack.versions:
        digest.update(_output(list(argv)).encode())
    digest.update(repr(stack.build(Path("S"), Path("B"), Path("W"))).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def agent_binary(name: str) -> Path:
    """The built agent for stack `name`, compiling it first if the cache lacks it."""
    stack = STACKS[name]
    source = SHIMS / stack.source
    if not source.is_file():
        raise TargetError(f"{name}: the shim's source {source} is missing (a broken install?)")
    missing = missing_parts(stack)
    if missing:
        raise TargetError(
            f"{name}: cannot build its agent without {', '.join(missing)}; "
            f"install with: apt-get install {stack.packages}"
        )
    root = cache_root()
    binary = root / f"{name}-{_key(stack, source)}" / f"{name}_agent"
    if binary.is_file():
        return binary
    try:
        with _locked(root / f".{name}.lock"):
            if not binary.is_file():
                _build(stack, source, binary, root)
    except OSError as exc:
        raise TargetError(f"{name}: cannot use the agent cache {root}: {exc}") from None
    return binary


def _build(stack: Stack, source: Path, binary: Path, root: Path) -> None:
    work = root / f".work-{stack.name}"  # the Go build cache survives between builds
    work.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{stack.name}-", dir=root))
    staging.chmod(0o755)
    try:
        argv = stack.build(source, staging / binary.name, work)
        env = {**os.environ, **stack.env(work)}
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=BUILD_TIMEOUT, env=env, cwd=work,
                preexec_fn=die_with_parent(),
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            raise TargetError(
                f"{stack.name}: building its agent took over {BUILD_TIMEOUT:g} s"
            ) from None
        if done.returncode != 0:
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise TargetError(
                f"{stack.name}: building its agent failed ({' '.join(argv[:2])} ...): "
                + (lines[0][:300] if lines else f"exit {done.returncode}")
            )
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(binary.parent)
        staging.rename(binary.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def agent_command(name: str) -> str:
    """The `agent:` command line that runs stack `name`'s agent."""
    return str(agent_binary(name))
