"""The z3 layer: fidelity to the Python model, proofs, and refutations that replay.

A proof about an encoding that differs from the model proves nothing, so
the z3 functions are evaluated on concrete values (hypothesis, with values
near the 2**32 wrap) and must agree with model/seq.py and, for the RST
decision, with the real `step`.  Each lemma is proved, and false claims
(the other profile's RST rule, completeness without the length bound) are
refuted with counterexamples the Python model confirms.  `synack prove`
refuses, in one line, a configuration the z3 encoding does not cover.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import pytest
import z3
from hypothesis import given
from hypothesis import strategies as st

from synack.harness.prove import prove, relation, z3seq
from synack.harness.prove.prove import (
    BY_NAME,
    CLAIMS,
    MAX_WND,
    MODEL_MAX_WND,
    Claim,
    Verdict,
    _len_ok,
    _overlap,
    _py_overlap,
    _py_rst_claim,
    _py_rst_resets,
    _rst_claim,
    _window_ok,
    check,
    claims_for,
)
from synack.harness.prove.z3tcb import check_encoded
from synack.model import Config, Profile, Variant
from synack.model import seq as pyseq


class _Stop(Exception):
    """Raised where `synack prove` would start its solvers."""


class _NoWorkers:
    def __enter__(self) -> None:
        raise _Stop

    def __exit__(self, *exc: object) -> None:
        return None


EDGE = st.sampled_from([0, 1, 2, (1 << 31) - 1, 1 << 31, (1 << 32) - 2, (1 << 32) - 1])
u32 = st.integers(0, (1 << 32) - 1) | EDGE
small = st.integers(0, 20) | st.sampled_from([MAX_WND, 65535])


def bv(x: int) -> z3.BitVecRef:
    return z3.BitVecVal(x, 32)


def truth(expr: z3.BoolRef) -> bool:
    value = z3.simplify(expr)
    assert z3.is_true(value) or z3.is_false(value), value
    return bool(z3.is_true(value))


@given(u32, u32, u32)
def test_comparisons_match_the_model(a: int, b: int, c: int) -> None:
    assert truth(z3seq.seq_lt(bv(a), bv(b))) == pyseq.seq_lt(a, b)
    assert truth(z3seq.seq_le(bv(a), bv(b))) == pyseq.seq_le(a, b)
    assert truth(z3seq.seq_between(bv(a), bv(b), bv(c))) == pyseq.seq_between(a, b, c)


@given(u32, small, u32, small)
def test_acceptability_matches_the_model(rcv_nxt: int, wnd: int, seq: int, length: int) -> None:
    encoded = z3seq.acceptable(bv(rcv_nxt), bv(wnd), bv(seq), bv(length))
    assert truth(encoded) == pyseq.acceptable(rcv_nxt, wnd, seq, length)


@pytest.mark.parametrize("rfc5961", [False, True])
@given(u32, st.integers(1, 64), st.integers(-3, 70) | u32)
def test_rst_decision_matches_the_model_step(
    rfc5961: bool, rcv_nxt: int, wnd: int, offset: int
) -> None:
    """The z3 RST rule agrees with what `step` does to an ESTABLISHED TCB."""
    seq = pyseq.seq_add(rcv_nxt, offset & 0xFFFFFFFF)
    values = {"rcv_nxt": rcv_nxt, "wnd": wnd, "seq": seq}
    encoded = z3seq.rst_resets(rfc5961, bv(rcv_nxt), bv(wnd), bv(seq))
    assert truth(encoded) == _py_rst_resets(rfc5961, values)


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.name)
def test_every_claim_is_proved(claim: Claim) -> None:
    result = check(claim)
    assert result.verdict is Verdict.PROVED, result


def test_each_profile_gets_its_rst_lemma() -> None:
    assert BY_NAME["blind-rst-one-value"] in claims_for(Profile.LINUX)
    assert BY_NAME["blind-rst-one-value"] not in claims_for(Profile.RFC9293)
    assert BY_NAME["blind-rst-whole-window"] in claims_for(Profile.RFC9293)


@pytest.mark.parametrize("rfc5961", [False, True])
def test_the_other_profiles_rst_rule_is_refuted_with_a_real_counterexample(rfc5961: bool) -> None:
    """Both ways: claim the RST rule of the other profile; z3 must refute it and the
    Python model must confirm the counterexample (one RST sequence value vs the window)."""
    claim = Claim(
        "wrong-rst-rule",
        "the other profile's rule",
        "test",
        ("rcv_nxt", "wnd", "seq"),
        _rst_claim(rfc5961, one_value=not rfc5961),
        _py_rst_claim(rfc5961, one_value=not rfc5961),
    )
    result = check(claim)
    assert result.verdict is Verdict.REFUTED, result
    v = result.counterexample
    assert 0 < v["wnd"] <= MODEL_MAX_WND
    resets = _py_rst_resets(rfc5961, v)
    if rfc5961:  # claimed: the whole window resets; shown: a value that does not
        assert not resets and v["seq"] != v["rcv_nxt"]
        assert pyseq.seq_between(v["rcv_nxt"], v["seq"], pyseq.seq_add(v["rcv_nxt"], v["wnd"]))
    else:  # claimed: only RCV.NXT resets; shown: another value that does
        assert resets and v["seq"] != v["rcv_nxt"]


def test_completeness_without_the_length_bound_is_refuted() -> None:
    """Table 6 checks only a segment's first and last octets: a segment longer than the
    window that covers all of it is rejected.  z3 finds one; the model agrees."""
    complete = BY_NAME["acceptability-complete"]
    unbounded = replace(
        complete,
        name="acceptability-complete-any-length",
        formula=lambda v: z3.Implies(
            z3.And(_window_ok(v), _len_ok(v), _overlap(v)),
            z3seq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"]),
        ),
        concrete=lambda v: (
            not (0 < v["wnd"] <= MAX_WND and 0 < v["len"] <= MAX_WND and _py_overlap(v))
            or pyseq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"])
        ),
    )
    result = check(unbounded)
    assert result.verdict is Verdict.REFUTED
    v = result.counterexample
    assert v["len"] > v["wnd"]
    assert not pyseq.acceptable(v["rcv_nxt"], v["wnd"], v["seq"], v["len"])


def test_a_counterexample_the_model_does_not_confirm_is_not_reported_as_refuted() -> None:
    """If the encoding and the model disagree, the verdict is unknown (spurious)."""
    lying = Claim(
        "spurious",
        "z3 says false, the model says true",
        "test",
        ("a",),
        lambda v: v["a"] == 0,  # false for most a ...
        lambda v: True,  # ... but the 'model' holds everywhere
    )
    result = check(lying)
    assert result.verdict is Verdict.UNKNOWN and "spurious" in result.reason


def _prove(*words: str) -> int:
    parser = argparse.ArgumentParser()
    prove.add_arguments(parser)
    return prove.cmd_prove(parser.parse_args(list(words)))


def test_prove_refuses_a_configuration_it_does_not_encode(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`synack prove` on a configuration outside the encoding: one line naming the field
    and its value, exit 2, and no solver started; the lemmas alone still run."""
    unencoded = relation.PROOF_CONFIG.with_(retries=200)
    monkeypatch.setattr(relation, "PROOF_CONFIG", unencoded)
    started: list[object] = []
    monkeypatch.setattr(prove.induction, "Workers", lambda: started.append(1))
    assert _prove("--property", "ack-before-close") == prove.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("synack prove: error: ")
    assert "retries=200" in err and not started
    assert _prove("--property", "no-old-syn-connection", "--profile", "linux") == prove.EXIT_USAGE
    assert "retries=200" in capsys.readouterr().err


def test_prove_accepts_every_encoded_profile_and_variant(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The other way: the configurations `synack prove` runs pass the same check."""
    monkeypatch.chdir(tmp_path)  # the latest report goes to .synack/ here
    checked: list[Config] = []
    monkeypatch.setattr(prove, "check_encoded", checked.append)
    for profile in Profile:
        assert _prove("--property", "seq-order-total", "--profile", profile.value) == 0
    assert not checked  # lemmas alone: no transition relation, nothing to refuse
    monkeypatch.setattr(prove.induction, "Workers", _NoWorkers)
    for args in [("--profile", p.value) for p in Profile] + [
        ("--variant", v.value) for v in Variant
    ]:
        before = len(checked)
        with pytest.raises(_Stop):
            _prove("--property", "ack-before-close", *args)
        assert len(checked) == before + 1
        check_encoded(checked[-1])  # accepted: does not raise
