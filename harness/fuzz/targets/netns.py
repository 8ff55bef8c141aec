"""A private, anonymous network namespace with one TUN device in it.

The Linux target talks to the kernel's TCP through a TUN device: each
segment the fuzzer injects is written to the device as an IPv4 packet, and
each packet the kernel sends to the peer is read back from it.  All of this
happens in a network namespace of its own, so that nothing ever touches the
host's interfaces, routes or sysctls, and only addresses in 198.18.0.0/15
(RFC 2544 benchmarking space) are used.

Why the namespace is anonymous
------------------------------
The namespace is not created with `ip netns add` (which pins it with a bind
mount under /run/netns that outlives the process).  Instead the calling
thread

1. keeps a fd of the namespace it is in (`/proc/thread-self/ns/net`),
2. calls unshare(CLONE_NEWNET), which moves only that thread into a new,
   empty namespace,
3. keeps a fd of the new namespace, configures it (TUN device, address,
   route, sysctls), and
4. calls setns() with the first fd to go back.

From then on the namespace is referenced only by open fds of this process:
the namespace fd, the TUN fd and sockets created in it.  The kernel frees a
network namespace, and with it every device in it, as soon as the last such
reference goes away, and it drops every fd of a process when the process
exits for whatever reason, SIGKILL included.  So nothing can outlive the
process: there is no cleanup to forget, no stale device, no /run/netns entry.
`close()` merely makes this happen earlier.

Namespaces are per thread: a thread is inside the namespace only between
`setns()` calls, that is, during `with ns.inside():`, and only that thread.
A child process forked by that thread (`ip`, run by `subprocess`) starts in
the thread's namespace; a socket stays in the namespace it was created in,
wherever it is used later; /proc/sys/net shows the namespace of the thread
that opens the file.

Nothing is registered globally (no signal handlers, no atexit hooks): a
KeyboardInterrupt unwinds `with` blocks like any other exception.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import ipaddress
import os
import select
import shutil
import socket as _socket
import struct
import subprocess
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from types import TracebackType

from synack.harness.common.children import die_with_parent

__all__ = ["DEFAULT_SYSCTLS", "SetupError", "TunNamespace", "preflight"]

CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
IFNAMSIZ = 16

ALLOWED_NETWORK = ipaddress.IPv4Network("198.18.0.0/15")
"""The only addresses this module ever configures (RFC 2544 benchmarking)."""

COMMAND_TIMEOUT = 10.0
"""Seconds any subprocess (or preflight's trial thread) may take."""

READ_SIZE = 65536
"""Larger than any packet the device can hold (no GSO without IFF_VNET_HDR)."""

DRAIN_LIMIT = 10000
"""drain() stops after this many packets, so that it always returns."""

DEFAULT_SYSCTLS: dict[str, str] = {
    # Fewer, fixed TCP options, so that segments are small and predictable:
    # no timestamps (they carry a clock reading), no SACK (the model has no
    # selective acknowledgments), no window scaling, no ECN negotiation.
    "net.ipv4.tcp_timestamps": "0",
    "net.ipv4.tcp_sack": "0",
    "net.ipv4.tcp_window_scaling": "0",
    "net.ipv4.tcp_ecn": "0",
    # Give up on an unanswered SYN or SYN,ACK after two retransmissions, so
    # that a run that loses one ends in seconds, not minutes.
    "net.ipv4.tcp_syn_retries": "2",
    "net.ipv4.tcp_synack_retries": "2",
    # A full backlog drops SYNs, as the model does, instead of switching to
    # stateless SYN cookies.
    "net.ipv4.tcp_syncookies": "0",
    # Active opens back off exponentially from the first SYN retransmission
    # (the default, 4, retransmits the first four after a fixed RTO; no
    # effect on SYN,ACKs).  Newer kernels only: skipped where missing.
    "net.ipv4.tcp_syn_linear_timeouts": "0",
    # tcp_fin_timeout (FIN-WAIT-2 lifetime, default 60 s) is left as it is:
    # the fuzzer waits on timers explicitly, and changing it would make the
    # kernel differ from the defaults everyone else runs.
    #
    # RFC 1337 off (the default): an RST in TIME-WAIT ends it, as RFC 9293
    # has it, rather than being ignored.
    "net.ipv4.tcp_rfc1337": "0",
    # Few data retransmissions before a connection is given up, so that
    # timeouts end runs quickly; orphaned (closed by the application)
    # connections are given up after one.
    "net.ipv4.tcp_retries2": "3",
    "net.ipv4.tcp_orphan_retries": "1",
    # Send small writes at once instead of holding them back to coalesce.
    "net.ipv4.tcp_autocorking": "0",
    # No tail loss probes: a probe would retransmit 2*SRTT (microseconds
    # here) after data is sent, long before the fuzzer's next segment.
    "net.ipv4.tcp_early_retrans": "0",
    # Answer every out-of-window segment with an ACK, as RFC 9293 says;
    # by default Linux sends at most one such ACK per 500 ms (and the same
    # limit applies to RFC 5961 challenge ACKs).
    "net.ipv4.tcp_invalid_ratelimit": "0",
    "net.ipv4.tcp_challenge_ack_limit": "2147483647",
    # Whatever the host uses: reno has no pacing or timers of its own.
    "net.ipv4.tcp_congestion_control": "reno",
    # No path-MTU probing: segment sizes depend only on MSS.
    "net.ipv4.tcp_mtu_probing": "0",
    # Do not remember RTT/ssthresh of closed connections, so that each
    # connection starts like the first.
    "net.ipv4.tcp_no_metrics_save": "1",
    # No IPv6 in the namespace: otherwise the kernel sends router
    # solicitations and MLD reports on the TUN device as it comes up.
    "net.ipv6.conf.all.disable_ipv6": "1",
    "net.ipv6.conf.default.disable_ipv6": "1",
}
"""Per-namespace settings applied by TunNamespace unless told otherwise."""


class SetupError(RuntimeError):
    """The namespace could not be set up or used; the message is one line."""


# --- system calls -------------------------------------------------------------


def _libc() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    lib.unshare.argtypes = [ctypes.c_int]
    lib.unshare.restype = ctypes.c_int
    lib.setns.argtypes = [ctypes.c_int, ctypes.c_int]
    lib.setns.restype = ctypes.c_int
    return lib


_LIBC = _libc()


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise SetupError(f"{what} failed: {os.strerror(err)} (errno {err})")


def _unshare_net() -> None:
    _check(_LIBC.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")


def _setns(fd: int) -> None:
    _check(_LIBC.setns(fd, CLONE_NEWNET), "setns(CLONE_NEWNET)")


def _current_ns_fd() -> int:
    """A fd of the calling thread's network namespace (not the process's)."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


def _open_tun(name: str) -> int:
    """Create TUN device `name` in the calling thread's namespace; a non-blocking fd."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    try:
        ifreq = struct.pack("16sH22x", name.encode(), IFF_TUN | IFF_NO_PI)
        fcntl.ioctl(fd, TUNSETIFF, ifreq)
        os.set_blocking(fd, False)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _ip_command() -> str | None:
    return shutil.which("ip") or next(
        (p for p in ("/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip") if os.access(p, os.X_OK)), None
    )


def _sysctl_path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --- preflight ----------------------------------------------------------------


def _trial() -> str | None:
    """In a throwaway thread: unshare, create a TUN device, go back."""
    try:
        original = _current_ns_fd()
    except OSError as exc:
        return f"cannot open /proc/thread-self/ns/net: {exc.strerror}"
    try:
        try:
            _unshare_net()
        except SetupError as exc:
            return f"cannot create a network namespace: {exc}"
        try:
            os.close(_open_tun("synack-pf0"))
        except OSError as exc:
            return f"cannot create a TUN device in a new namespace: {exc.strerror}"
        finally:
            # If this fails, the thread ends anyway, and its namespace with it.
            _setns(original)
        return None
    finally:
        os.close(original)


def preflight() -> str | None:
    """None if TunNamespace can work here, otherwise why not (one line)."""
    if os.geteuid() != 0:
        return "not running as root (creating a network namespace and a TUN device needs it)"
    if not os.path.exists("/dev/net/tun"):
        return "/dev/net/tun does not exist (no TUN driver, or not visible in this container)"
    if _ip_command() is None:
        return "the iproute2 'ip' command was not found"
    outcome: list[str | None] = []

    def run() -> None:
        try:
            outcome.append(_trial())
        except Exception as exc:
            outcome.append(_one_line(f"namespace trial failed: {exc}"))

    thread = threading.Thread(target=run, name="synack-netns-preflight", daemon=True)
    thread.start()
    thread.join(COMMAND_TIMEOUT)
    if not outcome:
        return "namespace trial did not finish in time"
    return outcome[0]


# --- the namespace ------------------------------------------------------------


class TunNamespace:
    """An anonymous network namespace holding one TUN device, `name`.

    The device has address `local`/`prefix`; `peer` is the far end, which is
    this process: packets the kernel sends to it come out of `read()`, and
    packets from it go in through `write()`.  Use as a context manager, or
    call `open()` and `close()`.

    `sysctls` (default DEFAULT_SYSCTLS) replaces, not extends, the defaults;
    keys the kernel does not have in the namespace are skipped and listed in
    `skipped_sysctls`.
    """

    def __init__(
        self,
        name: str = "synack0",
        local: str = "198.18.0.1",
        peer: str = "198.18.0.2",
        prefix: int = 24,
        sysctls: Mapping[str, str] | None = None,
    ) -> None:
        if not name or len(name.encode()) >= IFNAMSIZ or "/" in name or name.strip() != name:
            raise SetupError(f"bad interface name {name!r}")
        try:
            interface = ipaddress.IPv4Interface(f"{local}/{prefix}")
            peer_address = ipaddress.IPv4Address(peer)
        except ValueError as exc:
            raise SetupError(f"bad address: {exc}") from None
        network = interface.network
        if not network.subnet_of(ALLOWED_NETWORK):
            raise SetupError(f"{network} is not inside {ALLOWED_NETWORK}")
        if peer_address not in network:
            raise SetupError(f"peer {peer_address} is not in {network}")
        if peer_address == interface.ip:
            raise SetupError(f"local and peer are the same address {peer_address}")
        self.name = name
        self.local = str(interface.ip)
        self.peer = str(peer_address)
        self.prefix = prefix
        self.network = str(network)
        self.sysctls: dict[str, str] = dict(DEFAULT_SYSCTLS if sysctls is None else sysctls)
        self.skipped_sysctls: tuple[str, ...] = ()
        self._ns_fd: int | None = None
        self._tun_fd: int | None = None
        self._sockets: weakref.WeakSet[_socket.socket] = weakref.WeakSet()
        self._poll = select.poll()

    # -- life cycle --

    def open(self) -> TunNamespace:
        """Create and configure the namespace; the calling thread ends up where it was."""
        if self._ns_fd is not None:
            raise SetupError("namespace is already open")
        ip = _ip_command()
        if ip is None:
            raise SetupError("the iproute2 'ip' command was not found")
        original = _current_ns_fd()
        try:
            _unshare_net()
            self._ns_fd = _current_ns_fd()
            self._configure(ip)
            _setns(original)
        except BaseException:
            # Back where the thread was (a no-op if it never left), then
            # drop every fd of the new namespace so the kernel frees it.
            try:
                _setns(original)
            finally:
                self.close()
            raise
        finally:
            os.close(original)
        return self

    def _configure(self, ip: str) -> None:
        """Set up the namespace the calling thread has just moved into."""
        # Sysctls first: with IPv6 off before the device exists, it never
        # sends anything the caller did not ask for.
        self._apply_sysctls()
        self._run(ip, "link", "set", "lo", "up")
        try:
            self._tun_fd = _open_tun(self.name)
        except OSError as exc:
            raise SetupError(f"cannot create TUN device {self.name}: {exc.strerror}") from None
        self._poll.register(self._tun_fd, select.POLLIN)
        # noprefixroute: the only route to the peer network is ours,
        # with quickack (ACK at once, no delayed ACKs towards the peer).
        self._run(
            ip, "addr", "add", f"{self.local}/{self.prefix}", "dev", self.name, "noprefixroute"
        )
        self._run(ip, "link", "set", "dev", self.name, "mtu", "1500", "up")
        route = ["route", "replace", self.network, "dev", self.name, "proto", "kernel"]
        route += ["scope", "link", "src", self.local, "quickack", "1"]
        self._run(ip, *route)

    def close(self) -> None:
        """Close every fd that holds the namespace, so the kernel frees it.  Idempotent."""
        for sock in list(self._sockets):
            sock.close()
        self._sockets.clear()
        if self._tun_fd is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._poll.unregister(self._tun_fd)
            fd, self._tun_fd = self._tun_fd, None
            os.close(fd)
        if self._ns_fd is not None:
            fd, self._ns_fd = self._ns_fd, None
            os.close(fd)

    def __enter__(self) -> TunNamespace:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._ns_fd is not None

    @property
    def inode(self) -> int:
        """The namespace's inode number (as in `readlink /proc/PID/ns/net`)."""
        return os.fstat(self._require_ns()).st_ino

    # -- inside the namespace --

    @contextlib.contextmanager
    def inside(self) -> Iterator[None]:
        """The calling thread is in the namespace for the `with` body, and only then."""
        ns_fd = self._require_ns()
        saved = _current_ns_fd()
        try:
            _setns(ns_fd)
            yield
        finally:
            try:
                _setns(saved)
            finally:
                os.close(saved)

    def socket(
        self, family: int = _socket.AF_INET, type: int = _socket.SOCK_STREAM
    ) -> _socket.socket:
        """A socket in the namespace; close() closes it if the caller has not."""
        with self.inside():
            sock = _socket.socket(family, type)
        self._sockets.add(sock)
        return sock

    def sysctl(self, key: str) -> str:
        """The namespace's value of sysctl `key` (e.g. "net.ipv4.tcp_sack")."""
        with self.inside():
            return self._read_sysctl(key)

    # -- the TUN device --

    def fileno(self) -> int:
        return self._require_tun()

    def write(self, packet: bytes) -> None:
        """Hand one IPv4 packet from the peer to the kernel."""
        fd = self._require_tun()
        try:
            written = os.write(fd, packet)
        except OSError as exc:
            raise SetupError(f"TUN write of {len(packet)} bytes failed: {exc.strerror}") from None
        if written != len(packet):
            raise SetupError(f"TUN write took {written} of {len(packet)} bytes")

    def read(self, timeout: float) -> bytes | None:
        """One packet the kernel sent to the peer, or None if none came within `timeout` s.

        Never waits longer than `timeout` (to the millisecond poll() works in).
        """
        fd = self._require_tun()
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                return os.read(fd, READ_SIZE)
            except BlockingIOError:
                pass
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            # Whole milliseconds, rounded down, so as never to overshoot; a
            # wait shorter than that is a last non-blocking look.
            if not self._poll.poll(int(remaining * 1000)) and remaining < 0.001:
                return None

    def drain(self) -> list[bytes]:
        """Every packet waiting now, without waiting for more."""
        fd = self._require_tun()
        packets: list[bytes] = []
        while len(packets) < DRAIN_LIMIT:
            try:
                packets.append(os.read(fd, READ_SIZE))
            except BlockingIOError:
                break
        return packets

    # -- helpers --

    def _require_ns(self) -> int:
        if self._ns_fd is None:
            raise SetupError("namespace is not open")
        return self._ns_fd

    def _require_tun(self) -> int:
        if self._tun_fd is None:
            raise SetupError("TUN device is not open")
        return self._tun_fd

    def _run(self, *argv: str) -> str:
        """Run argv from the calling thread (whose namespace the child inherits)."""
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=True,
                stdin=subprocess.DEVNULL,
                preexec_fn=die_with_parent(),
                env={
                    "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
                    "LC_ALL": "C",
                },
            )
        except subprocess.CalledProcessError as exc:
            detail = _one_line(exc.stderr or exc.stdout or f"exit status {exc.returncode}")
            raise SetupError(f"{' '.join(argv)}: {detail}") from None
        except subprocess.TimeoutExpired:
            raise SetupError(f"{' '.join(argv)}: timed out after {COMMAND_TIMEOUT} s") from None
        except OSError as exc:
            raise SetupError(f"{' '.join(argv)}: {exc.strerror}") from None
        return done.stdout

    def _read_sysctl(self, key: str) -> str:
        try:
            with open(_sysctl_path(key)) as f:
                return f.read().strip()
        except OSError as exc:
            raise SetupError(f"cannot read sysctl {key}: {exc.strerror}") from None

    def _apply_sysctls(self) -> None:
        """Write self.sysctls; the calling thread must be inside the namespace."""
        skipped: list[str] = []
        for key, value in self.sysctls.items():
            path = _sysctl_path(key)
            if "/" in key or "" in key.split(".") or not os.path.exists(path):
                skipped.append(key)
                continue
            try:
                with open(path, "w") as f:
                    f.write(value)
            except OSError as exc:
                raise SetupError(f"cannot set sysctl {key}={value}: {exc.strerror}") from None
            actual = self._read_sysctl(key)
            if actual.split() != value.split():
                raise SetupError(f"sysctl {key} reads {actual!r} after writing {value!r}")
        self.skipped_sysctls = tuple(skipped)
