"""The seed convention: ints, SeedSequences and Generators; spawning never mutates the caller."""
import numpy as np
import pytest

from proofs_check.seeding import as_generator, spawn


def test_same_seed_sequence_gives_same_children_every_time():
    ss = np.random.SeedSequence(42)
    first = [c.generate_state(2).tolist() for c in spawn(ss, 3)]
    second = [c.generate_state(2).tolist() for c in spawn(ss, 3)]
    expected = [c.generate_state(2).tolist() for c in np.random.SeedSequence(42).spawn(3)]
    assert first == second == expected
    assert ss.n_children_spawned == 0
    assert [c.generate_state(2).tolist() for c in spawn(42, 3)] == expected


def test_generator_is_shared_and_bad_seeds_raise():
    rng = np.random.default_rng(0)
    assert as_generator(rng) is rng
    with pytest.raises(TypeError, match="seed must be an int"):
        as_generator(1.5)
    with pytest.raises(ValueError, match="non-negative"):
        as_generator(-1)
