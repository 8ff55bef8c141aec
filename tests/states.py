"""One TCB in each of the eleven states, reached through real events (no hand-made TCBs)."""

from __future__ import annotations

from synack.model import (
    CloseCall,
    Config,
    OpenCall,
    Profile,
    SegmentArrives,
    SendCall,
    Tcb,
    Variant,
    closed,
    step,
)

from .util import one_segment


def all_configs() -> list[Config]:
    base = Config(syn_retries=2, synack_retries=2, retries=2)
    configs = [base.with_(profile=p) for p in Profile]
    configs += [base.with_(variant=v) for v in Variant]
    configs.append(base.with_(user_timeout=True))
    return configs


def one_of_each_state(cfg: Config) -> dict[str, Tcb]:
    """Named TCBs covering all eleven states (and both kinds of SYN-RECEIVED)."""
    out: dict[str, Tcb] = {}
    a, b = closed(cfg, (100,)), closed(cfg, (300,))
    out["closed"] = a
    b, _ = step(b, OpenCall(active=False))
    out["listen"] = b
    out["listen-remote-named"], _ = step(closed(cfg, (500,)), OpenCall(active=False, remote=True))
    a, o = step(a, OpenCall(active=True))
    out["syn-sent"] = a
    syn = one_segment(o)
    b, o = step(b, SegmentArrives(syn))
    out["syn-received-passive"] = b
    synack = one_segment(o)
    # simultaneous open: a second active endpoint gets the client's bare SYN
    c, _ = step(closed(cfg, (700,)), OpenCall(active=True))
    c, _ = step(c, SegmentArrives(syn))
    out["syn-received-active"] = c
    a, o = step(a, SegmentArrives(synack))
    b, _ = step(b, SegmentArrives(one_segment(o)))
    a, data_out = step(a, SendCall(b"abc"))
    out["established"] = a
    out["established-passive"] = b
    fin_wait_1, o = step(a, CloseCall())
    out["fin-wait-1"] = fin_wait_1
    segs = [x.segment for x in data_out + o if hasattr(x, "segment")]
    close_wait = b
    for seg in segs:
        close_wait, o = step(close_wait, SegmentArrives(seg))
    out["close-wait"] = close_wait
    acks = [x.segment for x in o if hasattr(x, "segment")]
    fin_wait_2 = fin_wait_1
    for seg in acks:
        fin_wait_2, _ = step(fin_wait_2, SegmentArrives(seg))
    out["fin-wait-2"] = fin_wait_2
    last_ack, o = step(close_wait, CloseCall())
    out["last-ack"] = last_ack
    server_fin = one_segment(o)
    time_wait, _ = step(fin_wait_2, SegmentArrives(server_fin))
    out["time-wait"] = time_wait
    # CLOSING: the peer closes before our text and FIN reach it (FINs cross)
    _, o = step(out["established-passive"], CloseCall())
    closing, _ = step(fin_wait_1, SegmentArrives(one_segment(o)))
    out["closing"] = closing
    return out
