"""nnframe.random: seeds vs generators, the global generator and its saved state."""

import json

import numpy as np
import pytest

from nnframe import random as nnrandom


def test_get_rng_returns_a_given_generator_itself():
    gen = np.random.default_rng(7)
    assert nnrandom.get_rng(gen) is gen


@pytest.mark.parametrize("seed", [0, 5, 2**40, np.int64(5), np.uint8(3)])
def test_get_rng_seed_gives_a_fresh_generator_equal_to_default_rng(seed):
    a, b = nnrandom.get_rng(seed), nnrandom.get_rng(seed)
    assert isinstance(a, np.random.Generator) and a is not b
    expected = np.random.default_rng(int(seed)).random(5)
    np.testing.assert_array_equal(a.random(5), expected)
    np.testing.assert_array_equal(b.random(5), expected)


def test_get_rng_seed_does_not_touch_the_global_generator():
    before = nnrandom.get_state()
    nnrandom.get_rng(3).random(10)
    assert nnrandom.get_state() == before


def test_get_rng_none_is_a_child_of_the_global_generator():
    nnrandom.set_seed(11)
    first = nnrandom.get_rng(None).random(4)
    second = nnrandom.get_rng().random(4)
    assert not np.array_equal(first, second)  # each call advances the global generator
    nnrandom.set_seed(11)
    np.testing.assert_array_equal(nnrandom.get_rng().random(4), first)
    np.testing.assert_array_equal(nnrandom.get_rng().random(4), second)
    # the documented derivation: a generator seeded with one draw from the global one
    nnrandom.set_seed(11)
    child_seed = np.random.default_rng(11).integers(0, 2**63 - 1)
    np.testing.assert_array_equal(nnrandom.get_rng().random(4), np.random.default_rng(child_seed).random(4))


@pytest.mark.parametrize("bad", [-1, np.int32(-2), True, False, 1.0, "3", [1], np.random.RandomState(0)])
def test_get_rng_rejects_other_values_quoting_them(bad):
    with pytest.raises(TypeError, match="expected an int seed, a numpy Generator or None, got"):
        nnrandom.get_rng(bad)


def test_global_generator_is_the_one_set_seed_resets():
    nnrandom.set_seed(5)
    gen = nnrandom.global_generator()
    assert isinstance(gen, np.random.Generator)
    assert nnrandom.global_generator() is gen  # the same object until the next set_seed
    np.testing.assert_array_equal(gen.random(3), np.random.default_rng(5).random(3))
    nnrandom.set_seed(5)
    assert nnrandom.global_generator() is not gen


def test_set_seed_makes_the_global_stream_reproducible():
    nnrandom.set_seed(42)
    a = nnrandom.global_generator().normal(size=8)
    nnrandom.set_seed(43)
    b = nnrandom.global_generator().normal(size=8)
    nnrandom.set_seed(np.int64(42))
    c = nnrandom.global_generator().normal(size=8)
    np.testing.assert_array_equal(a, c)
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("bad", [-1, True, 1.5, "0", None, np.int64(-3)])
def test_set_seed_rejects_anything_but_a_non_negative_int(bad):
    nnrandom.set_seed(9)
    with pytest.raises(TypeError, match=r"seed must be a non-negative integer, got"):
        nnrandom.set_seed(bad)
    np.testing.assert_array_equal(nnrandom.global_generator().random(2), np.random.default_rng(9).random(2))


def test_get_state_set_state_round_trip_gives_bit_identical_draws():
    nnrandom.set_seed(3)
    nnrandom.global_generator().random(17)  # somewhere in the middle of the stream
    state = nnrandom.get_state()
    gen = nnrandom.global_generator()
    first = (gen.random(5), gen.normal(size=5), gen.integers(0, 1000, 5), gen.permutation(9))
    nnrandom.set_state(state)
    gen = nnrandom.global_generator()
    again = (gen.random(5), gen.normal(size=5), gen.integers(0, 1000, 5), gen.permutation(9))
    for x, y in zip(first, again, strict=True):
        assert x.tobytes() == y.tobytes()


def test_get_state_is_a_snapshot_not_a_live_view():
    state = nnrandom.get_state()
    copy = json.loads(json.dumps(state))
    nnrandom.global_generator().random(100)
    assert state == copy  # drawing afterwards did not change the saved state


def test_state_survives_json_and_a_later_set_seed():
    nnrandom.set_seed(8)
    state = json.loads(json.dumps(nnrandom.get_state()))  # JSON-serialisable, as documented
    expected = nnrandom.global_generator().random(6)
    nnrandom.set_seed(99)  # a new global generator: set_state must still restore the stream
    nnrandom.set_state(state)
    np.testing.assert_array_equal(nnrandom.global_generator().random(6), expected)
    # get_rng(None) derives from the restored stream too: compare with a generator
    # restored by hand from the same state and advanced by the same six draws
    gen = np.random.default_rng()
    gen.bit_generator.state = state
    gen.random(6)
    child = np.random.default_rng(gen.integers(0, 2**63 - 1))
    np.testing.assert_array_equal(nnrandom.get_rng().random(3), child.random(3))
