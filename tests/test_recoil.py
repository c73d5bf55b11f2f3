"""tabular.recoil: ReCOIL's primal (sheet property 7), the occupancy-ratio baseline and the occupancy estimates."""
import numpy as np
import pytest

from tabular import (
    garnet,
    gridworld,
    occupancy,
    recoil,
    sample_episodes,
    value_iteration,
)
from tabular.lp import flow_matrix


def _expert_instance(seed=0):
    mdp = garnet(6, 3, 3, gamma=0.9, seed=seed)
    pi_E = value_iteration(mdp).pi
    dS = occupancy(mdp, np.full((mdp.S, mdp.A), 1.0 / mdp.A))
    return mdp, pi_E, dS


@pytest.mark.parametrize("seed", [0, 5])
def test_recoil_exact_expert_occupancy_property_7(seed):
    """Sheet property 7: d = dE attains divergence 0, the unique minimiser; pi = pi_E on
    supp(dE). Tolerances: the KL is flat at its minimum, so by Pinsker a gap g leaves
    ||d - dE||_1 up to sqrt(2 g) / beta: about 3e-4 at Clarabel's 1e-8."""
    mdp, pi_E, dS = _expert_instance(seed)
    soft = np.exp(3.0 * value_iteration(mdp).Q)
    for pi, beta in ((np.eye(mdp.A)[pi_E], 0.5), (soft / soft.sum(axis=1, keepdims=True), 1.0)):
        dE = occupancy(mdp, pi)
        res = recoil.recoil(mdp, dE, dS, beta=beta)
        assert res.ok and abs(res.objective) <= 1e-7
        assert np.abs(res.d - dE).sum() <= 1e-3
        assert dE.sum(axis=1) @ np.abs(res.pi - pi).sum(axis=1) <= 1e-3
        assert res.flow_residual <= 1e-8


def test_recoil_property_7_catches_planted_discount():
    mdp, pi_E, dS = _expert_instance()
    dE_wrong = occupancy(mdp.replace(gamma=0.8), pi_E)  # not an occupancy of the 0.9 MDP
    res = recoil.recoil(mdp, dE_wrong, dS)
    assert res.ok and res.objective > 1e-3
    assert np.abs(res.d - dE_wrong).sum() > 1e-2


def test_recoil_solution_is_the_occupancy_of_its_policy():
    mdp = gridworld("S...\n....\n...G", gamma=0.9, slip=0.2)
    pi_E = value_iteration(mdp).pi
    demos = sample_episodes(mdp, pi_E, 3, H=60, seed=4)
    dE = recoil.discounted_occupancy_estimate(mdp, demos)
    dS = occupancy(mdp, np.full((mdp.S, mdp.A), 0.25))
    res = recoil.recoil(mdp, dE, dS, beta=0.5)
    assert res.ok
    F, b = flow_matrix(mdp)
    assert np.max(np.abs(F @ res.d.ravel() - b)) <= 1e-8
    assert np.allclose(occupancy(mdp, res.pi), res.d, atol=1e-7)
    # a perturbed policy has another occupancy (the check can fail)
    other = 0.9 * res.pi + 0.1 * np.roll(res.pi, 1, axis=1)
    assert not np.allclose(occupancy(mdp, other), res.d, atol=1e-7)


def test_coverage_failure_ratio_infeasible_recoil_finite():
    """dO = 0 at every expert state, including the start: the dO-ratio primal has no
    feasible point, while ReCOIL's mixture target keeps the problem finite."""
    mdp = gridworld("S...\n....\n...G", gamma=0.9, slip=0.1)
    pi_E = value_iteration(mdp).pi
    dE = occupancy(mdp, pi_E)
    on_path = np.zeros(mdp.S, dtype=bool)
    on_path[np.unique(sample_episodes(mdp, pi_E, 1, H=30, seed=0).states)] = True
    dO = occupancy(mdp, np.full((mdp.S, mdp.A), 0.25))
    dO[on_path] = 0.0
    dO /= dO.sum()
    ratio = recoil.ratio_imitation(mdp, dE, dO)
    assert ratio.status == "infeasible" and ratio.pi is None and not ratio.ok
    res = recoil.recoil(mdp, dE, dO)
    assert res.ok and np.isfinite(res.objective)


def test_ratio_baseline_recovers_expert_under_coverage():
    # dO = dE: the log-ratio is 0 and the closest occupancy to dO is dO itself.
    mdp, pi_E, _ = _expert_instance(1)
    dE = occupancy(mdp, pi_E)
    res = recoil.ratio_imitation(mdp, dE, dE)
    assert res.ok and abs(res.objective) <= 1e-7
    assert dE.sum(axis=1) @ np.abs(res.pi - np.eye(mdp.A)[pi_E]).sum(axis=1) <= 1e-3


def test_feasible_support_prunes_to_closed_sets():
    # Chain 0 - 1 - 2, start at 0. Action 1 (right) at 0 leads to 1, where nothing is
    # allowed: (0, left) survives, a self-loop at the left end, and so does (2, right),
    # the self-loop at the right end (closed, though the start never reaches it).
    from tabular import chain

    mdp = chain(3, gamma=0.9)
    allowed = np.array([[True, True], [False, False], [True, True]])
    keep = recoil.feasible_support(mdp, allowed)
    assert keep.tolist() == [[True, False], [False, False], [False, True]]
    allowed[0, 0] = False
    assert not recoil.feasible_support(mdp, allowed).any()  # the start has no way to stay


def test_occupancy_estimate_exact_for_deterministic_rollouts():
    mdp = gridworld("S...\n....\n...G", gamma=0.9)  # no slip: one deterministic path
    pi_E = value_iteration(mdp).pi
    eps = sample_episodes(mdp, pi_E, 2, H=40, seed=0)
    d_hat, d = recoil.discounted_occupancy_estimate(mdp, eps), occupancy(mdp, pi_E)
    live = ~mdp.terminal  # at the terminal state the estimate splits the mass over actions
    assert np.allclose(d_hat[live], d[live], rtol=0, atol=1e-14)
    assert np.allclose(d_hat.sum(axis=1), d.sum(axis=1), rtol=0, atol=1e-14)
    assert np.allclose(d_hat[mdp.terminal], d[mdp.terminal].sum() / mdp.A, rtol=0, atol=1e-14)


def test_recoil_bad_input():
    mdp, pi_E, dS = _expert_instance()
    dE = occupancy(mdp, pi_E)
    with pytest.raises(ValueError, match="needs a discounted MDP"):
        recoil.recoil(gridworld("S.G"), np.full((3, 4), 1 / 12), np.full((3, 4), 1 / 12))
    with pytest.raises(ValueError, match="dE has shape"):
        recoil.recoil(mdp, dE[:2], dS)
    with pytest.raises(ValueError, match="dS sums to"):
        recoil.recoil(mdp, dE, 2 * dS)
    with pytest.raises(ValueError, match="beta = 0.0 must be positive"):
        recoil.recoil(mdp, dE, dS, beta=0.0)
    with pytest.raises(ValueError, match=r"beta = 1.5 must lie in \(0, 1\]"):
        recoil.recoil(mdp, dE, dS, beta=1.5)
    with pytest.raises(ValueError, match=r"dE\[0, 0\] = -0.1 is negative"):
        bad = dE.copy()
        bad[0, 0] = -0.1
        bad[0, 1] += 0.1
        recoil.recoil(mdp, bad, dS)
    with pytest.raises(ValueError, match=r"clip = 0.5 must lie in"):
        recoil.ratio_imitation(mdp, dE, dS, clip=0.5)
    with pytest.raises(ValueError, match="boolean mask"):
        recoil.feasible_support(mdp, np.ones((mdp.S, mdp.A)))


def test_episode_helpers_reject_episodes_of_another_mdp():
    small = gridworld("S.G", gamma=0.9)
    big = gridworld("S...\n....\n...G", gamma=0.9)
    eps = sample_episodes(big, np.zeros(big.S, dtype=np.int64) + 1, 2, H=5, seed=0)
    with pytest.raises(ValueError, match="episodes visit state"):
        recoil.discounted_occupancy_estimate(small, eps)
