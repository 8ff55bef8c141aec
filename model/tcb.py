"""The transmission control block (RFC 9293 section 3.3.1) as a frozen value."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .config import DEFAULT_CONFIG, Config
from .seq import seq_add, seq_sub
from .types import State, TimerKind
from .values import cached_hash

NO_TIMERS: frozenset[TimerKind] = frozenset()


@cached_hash
@dataclass(frozen=True, slots=True)
class Tcb:
    """One endpoint of one connection.  CLOSED means "no TCB exists".

    Send side: SND.UNA, SND.NXT, SND.WND, SND.WL1, SND.WL2, ISS, plus
    `syn_acked` (our SYN has been acknowledged: SND.UNA = ISS alone cannot
    say so, since SND.UNA comes back to ISS after 2**32 octets), `snd_buf`,
    the text not yet acknowledged (sent or not, starting at the first
    unacknowledged octet), `fin_queued` (the user has called CLOSE)
    and `fin_sent`.  Receive side: IRS, RCV.NXT, RCV.UP and `rcv_buf`, text
    accepted but not yet handed to the user; RCV.WND is derived from the
    buffer space left.  `eof_queued` (linux profile only): the peer's FIN
    still sits in the receive queue, the application not having read the end
    of the stream, which makes Linux's sequence test stricter.  `iss_pool`
    stands for the ISN generator (3.4.1): the values it will produce, in
    order; the last one repeats.  `remote_specified`: the passive OPEN named
    the remote socket, so a SEND in LISTEN may turn the connection active.
    """

    state: State = State.CLOSED
    cfg: Config = DEFAULT_CONFIG
    passive_open: bool = False
    remote_specified: bool = False
    iss_pool: tuple[int, ...] = (0,)
    iss: int = 0
    irs: int = 0
    snd_una: int = 0
    syn_acked: bool = False
    snd_nxt: int = 0
    snd_wnd: int = 0
    snd_wl1: int = 0
    snd_wl2: int = 0
    max_snd_wnd: int = 0
    rcv_nxt: int = 0
    rcv_up: int = 0
    snd_buf: bytes = b""
    fin_queued: bool = False
    fin_sent: bool = False
    rcv_buf: bytes = b""
    recv_pending: bool = False
    eof_queued: bool = False
    timers: frozenset[TimerKind] = NO_TIMERS
    retries: int = 0
    _hash: int = field(default=0, init=False, repr=False, compare=False)

    # ------------------------------------------------------------ derived

    @property
    def rcv_wnd(self) -> int:
        """RCV.WND: the buffer space left for text from the peer."""
        return max(0, self.cfg.rcv_wnd - len(self.rcv_buf))

    @property
    def wnd_field(self) -> int:
        """SEG.WND of our segments: RCV.WND as far as the 16-bit field can say it (the
        model has no window scaling; RCV.WND exceeds 65535 only when a fuzz oracle has
        learned a real stack's larger buffer)."""
        return min(self.rcv_wnd, 0xFFFF)

    @property
    def syn_unacked(self) -> bool:
        """Our SYN is in the sequence space and not yet acknowledged."""
        return self.state not in (State.CLOSED, State.LISTEN) and not self.syn_acked

    @property
    def fin_acked(self) -> bool:
        """Our FIN has been sent and acknowledged (SND.UNA = SND.NXT)."""
        return self.fin_sent and self.snd_una == self.snd_nxt

    @property
    def in_flight(self) -> int:
        """Octets of text sent but not acknowledged."""
        outstanding = seq_sub(self.snd_nxt, self.snd_una)
        outstanding -= self.syn_unacked + (self.fin_sent and not self.fin_acked)
        return outstanding

    @property
    def unsent(self) -> bytes:
        """Text queued by SEND and not yet segmentized."""
        return self.snd_buf[self.in_flight :]

    def take_iss(self) -> tuple[int, tuple[int, ...]]:
        """Select an ISS: the generator's next value, and the generator after it."""
        pool = self.iss_pool
        return pool[0], pool[1:] if len(pool) > 1 else pool

    def with_timer(self, kind: TimerKind) -> Tcb:
        return replace(self, timers=self.timers | {kind})

    def without_timer(self, kind: TimerKind) -> Tcb:
        return replace(self, timers=self.timers - {kind})

    def describe(self) -> str:
        """A one-line summary: state and the sequence variables that matter."""
        if self.state in (State.CLOSED, State.LISTEN):
            return str(self.state)
        return (
            f"{self.state} iss={self.iss} snd.una={self.snd_una} snd.nxt={self.snd_nxt} "
            f"irs={self.irs} rcv.nxt={self.rcv_nxt}"
        )


def closed(cfg: Config = DEFAULT_CONFIG, iss_pool: tuple[int, ...] = (0,)) -> Tcb:
    """A CLOSED endpoint (no TCB) whose ISN generator will produce `iss_pool`."""
    return Tcb(cfg=cfg, iss_pool=iss_pool)


def deleted(tcb: Tcb) -> Tcb:
    """Delete the TCB: CLOSED, everything flushed; the ISN generator runs on."""
    return Tcb(cfg=tcb.cfg, iss_pool=tcb.iss_pool)


def listening(tcb: Tcb) -> Tcb:
    """A fresh LISTEN TCB (passive OPEN, or SYN-RECEIVED returning to LISTEN).

    The passive OPEN's remote socket, if it named one, is kept.
    """
    return Tcb(
        state=State.LISTEN,
        cfg=tcb.cfg,
        iss_pool=tcb.iss_pool,
        passive_open=True,
        remote_specified=tcb.remote_specified,
    )


def rcv_window_end(tcb: Tcb) -> int:
    return seq_add(tcb.rcv_nxt, tcb.rcv_wnd)
