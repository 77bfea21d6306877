"""Global control and variant assignment: the hashed share is right within binomial error,
stable for a salt (in another process too), reshuffled by a new salt, independent of the
variant draw; assign() follows the weights."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from collections import Counter

import pytest

from omnicascade.errors import ConfigError
from omnicascade.experiments import assign, in_global_control
from omnicascade.experiments.hashing import unit

N = 100_000
IDS = [f"cust-{i}" for i in range(N)]


def _within_binomial(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 4 * (n * p * (1 - p)) ** 0.5  # 4 sd: ~1 in 16,000 false alarm


def test_the_global_control_share_is_right_and_stable_and_a_new_salt_reshuffles():
    first = [in_global_control(c, share=0.05, salt="2026-12") for c in IDS]
    assert _within_binomial(sum(first), N, 0.05)
    assert first == [in_global_control(c, share=0.05, salt="2026-12") for c in IDS]
    other = [in_global_control(c, share=0.05, salt="2027-01") for c in IDS]
    assert _within_binomial(sum(other), N, 0.05)
    both = sum(a and b for a, b in zip(first, other))
    assert _within_binomial(both, N, 0.05 * 0.05)  # independent: overlap is chance only
    # a larger share contains the smaller one (growing the group moves nobody out)
    ten = [in_global_control(c, share=0.10, salt="2026-12") for c in IDS]
    assert all(t for f, t in zip(first, ten) if f)


def test_the_hash_is_the_same_in_another_process():
    """HMAC-SHA256, not hash(): PYTHONHASHSEED differs per process; these answers do not."""
    ids = IDS[:2000]
    here = "".join("1" if in_global_control(c, share=0.3, salt="s") else "0" for c in ids)
    code = ("from omnicascade.experiments import in_global_control as g, assign as a; "
            "ids = [f'cust-{i}' for i in range(2000)]; "
            "print(''.join('1' if g(c, share=0.3, salt='s') else '0' for c in ids)); "
            "print(','.join(a(c, {'x': 1, 'y': 2}, salt='s') for c in ids[:50]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={"PYTHONHASHSEED": "123"})
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == here
    assert lines[1] == ",".join(assign(c, {"x": 1, "y": 2}, salt="s") for c in ids[:50])


def test_a_known_answer_pins_the_algorithm():
    """Literal answers: a change of hash, prefix or bit layout would silently reshuffle every
    shop's control group and every stored split, so it must fail here first."""
    digest = hmac.new(b"salt", b"global_control\x00cust-1", hashlib.sha256).digest()
    assert unit("cust-1", salt="salt", purpose="global_control") == \
        (int.from_bytes(digest[:8], "big") >> 11) / 2**53 == 0.6473243223419658
    assert unit("cust-1", salt="salt", purpose="assign") == 0.22802674796384603
    assert [assign(f"cust-{i}", {"a": 1, "b": 1, "c": 1}, salt="salt") for i in range(8)] == \
        ["a", "a", "c", "b", "b", "b", "b", "a"]


def test_assign_matches_the_weights_and_is_deterministic():
    weights = {"control": 0.2, "sms_first": 0.5, "email_only": 0.3}
    got = Counter(assign(f"run-7:{c}", weights, salt="s") for c in IDS)
    for arm, w in weights.items():
        assert _within_binomial(got[arm], N, w), (arm, got)
    assert [assign(c, weights, salt="s") for c in IDS[:500]] == \
        [assign(c, dict(reversed(weights.items())), salt="s") for c in IDS[:500]]
    # weights need not sum to 1; a zero weight is never picked
    got = Counter(assign(c, {"a": 3, "b": 1, "off": 0}, salt="s") for c in IDS[:20_000])
    assert got["off"] == 0 and _within_binomial(got["a"], 20_000, 0.75)


def test_the_variant_draw_is_independent_of_the_global_control_draw():
    control = [c for c in IDS if in_global_control(c, share=0.10, salt="same")]
    got = Counter(assign(c, {"a": 1, "b": 1}, salt="same") for c in control)
    assert _within_binomial(got["a"], len(control), 0.5)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: in_global_control("c", share=1.0, salt="s"), "below 100%"),
    (lambda: in_global_control("c", share=-0.01, salt="s"), "at least 0%"),
    (lambda: in_global_control("c", share=0.05, salt=""), "needs a salt"),
    (lambda: assign("c", {}, salt="s"), "no variants"),
    (lambda: assign("c", {"a": -1, "b": 2}, salt="s"), "0 or more"),
    (lambda: assign("c", {"a": 0}, salt="s"), "not all be 0"),
])
def test_mistakes_are_clear_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
