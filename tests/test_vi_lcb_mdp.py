"""VI-LCB (Rashidinejad et al. 2021) with data splitting: folds, monotone V_t, pessimism
with probability at least 1 - delta (planted c = 0), bad input; the vi-lcb-mdp figure."""
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from figures import vi_lcb_mdp
from figures.cli import main
from proofs_check.stats import check_high_probability
from tabular.generators import garnet, river_swim
from tabular.offline import _vi_lcb_kernel, _vi_lcb_numpy, vi_lcb
from tabular.planning import evaluate_policy
from tabular.sampling import Transitions, sample_transitions
from figures.cli import EMPIRICAL_NOTE

LEVEL = 1e-3


def uniform_data(mdp, N, seed):
    return sample_transitions(mdp, np.full((mdp.S, mdp.A), 1 / (mdp.S * mdp.A)), N, seed=seed)


# --- data splitting ----------------------------------------------------------------------


def test_folds_are_disjoint_and_of_the_papers_size():
    mdp = garnet(4, 2, 3, gamma=0.9, seed=0)
    data = uniform_data(mdp, 5000, seed=1)
    result = vi_lcb(data, 0.9, c=0.01, seed=2)
    T = math.ceil(math.log(5000) / (1 - 0.9))
    m = 5000 // (T + 1)
    assert result.T == T == 86 and m == 57
    assert result.fold_indices.shape == (T + 1, m)
    np.testing.assert_array_equal(result.fold_sizes, np.full(T + 1, m))
    used = result.fold_indices.ravel()
    assert np.unique(used).size == used.size and used.min() >= 0 and used.max() < 5000
    assert result.V_history.shape == (T + 1, 4) and result.pi_history.shape == (T + 1, 4)
    again = vi_lcb(data, 0.9, c=0.01, seed=2)
    np.testing.assert_array_equal(again.fold_indices, result.fold_indices)


def vi_lcb_reference(data, gamma, c, delta, folds):
    """VI-LCB by explicit loops over the given folds (pool=True: every iteration uses the
    whole dataset, the planted error of no splitting)."""
    S, A = data.S, data.A
    T = folds.shape[0] - 1
    L_c = c * math.log(2 * (T + 1) * S * A / delta)
    V_max = 1 / (1 - gamma)

    def fold_stats(index):
        n = np.zeros((S, A))
        r = np.zeros((S, A))
        nxt = np.zeros((S, A, S))
        for i in index:
            n[data.s[i], data.a[i]] += 1
            r[data.s[i], data.a[i]] += data.r[i]
            nxt[data.s[i], data.a[i], data.s_next[i]] += 1
        return n, r, nxt

    n0, r0, _ = fold_stats(folds[0])
    rhat = np.divide(r0, n0, out=np.zeros_like(r0), where=n0 > 0)
    V, pi = np.zeros(S), np.zeros(S, dtype=int)
    history = [V.copy()]
    for t in range(1, T + 1):
        n, _, nxt = fold_stats(folds[t])
        V_new, pi_new = V.copy(), pi.copy()
        for s in range(S):
            best, arg = -np.inf, 0
            for a in range(A):
                if n[s, a] == 0:
                    continue
                q = rhat[s, a] - V_max * math.sqrt(L_c / n[s, a]) + gamma * nxt[s, a] @ V / n[s, a]
                if q > best:
                    best, arg = q, a
            if best > V[s]:
                V_new[s], pi_new[s] = best, arg
        V, pi = V_new, pi_new
        history.append(V.copy())
    return np.array(history), pi


def test_each_iteration_uses_only_its_fold():
    mdp = garnet(3, 2, 3, gamma=0.5, seed=3)
    data = uniform_data(mdp, 3000, seed=4)
    result = vi_lcb(data, 0.5, c=0.05, delta=0.1, seed=5)
    history, pi = vi_lcb_reference(data, 0.5, 0.05, 0.1, result.fold_indices)
    np.testing.assert_allclose(result.V_history, history, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.pi, pi)
    assert result.V.max() > 0
    # Planted error: without splitting (every iteration sees all folds) the values differ.
    pooled = np.tile(result.fold_indices.ravel(), (result.T + 1, 1))
    wrong, _ = vi_lcb_reference(data, 0.5, 0.05, 0.1, pooled)
    assert np.max(np.abs(wrong - result.V_history)) > 1e-3


def test_crafted_folds_give_their_own_estimates():
    """Two states, one action: state 0 pays 1 and moves to 0 or 1 at random; state 1 pays 0
    and stays. By hand: V_1(0) = max(0, 1 - b_1), V_2(0) = max(V_1(0), 1 - b_2 + gamma p_2 V_1(0))
    with b_t = Vmax sqrt(L_c / m_t(0)) and p_2 the share of fold 2's state-0 samples that stay."""
    rng = np.random.default_rng(0)
    N = 4000
    s = rng.integers(0, 2, N)
    s_next = np.where(s == 0, rng.integers(0, 2, N), 1)
    data = Transitions(s=s, a=np.zeros(N, int), r=(s == 0).astype(float), s_next=s_next, S=2, A=1)
    gamma, c, delta = 0.5, 0.01, 0.1
    result = vi_lcb(data, gamma, c=c, delta=delta, seed=1)
    L_c = c * math.log(2 * (result.T + 1) * 2 * 1 / delta)

    def fold(t):
        idx = result.fold_indices[t]
        at0 = idx[data.s[idx] == 0]
        return at0.size, np.mean(data.s_next[at0] == 0)

    m1, _ = fold(1)
    m2, p2 = fold(2)
    V1 = max(0.0, 1 - 2 * math.sqrt(L_c / m1))
    V2 = max(V1, 1 - 2 * math.sqrt(L_c / m2) + gamma * p2 * V1)
    assert result.V_history[1, 0] == pytest.approx(V1, abs=1e-12)
    assert result.V_history[2, 0] == pytest.approx(V2, abs=1e-12)
    assert result.V_history[1, 1] == 0.0  # state 1 earns nothing: never improves on V_0 = 0


@given(st.integers(1, 5), st.integers(1, 4), st.integers(1, 30), st.integers(0, 2**32 - 1))
def test_kernel_matches_numpy_reference(S, A, T1, seed):
    rng = np.random.default_rng(seed)
    trans = rng.integers(0, 4, size=(T1, S, A, S)) * (rng.random((T1, S, A, 1)) < 0.8)
    counts = trans.sum(axis=-1)
    rhat = rng.random((S, A))
    pi0 = rng.integers(0, A, S)
    args = (rhat, counts, trans, 0.8, 5.0, float(rng.choice([0.0, 1e-3, 0.1])), pi0)
    V, pi, Q = _vi_lcb_kernel(*args)
    V_ref, pi_ref, Q_ref = _vi_lcb_numpy(*args)
    np.testing.assert_allclose(V, V_ref, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(pi, pi_ref)
    np.testing.assert_allclose(Q, Q_ref, rtol=0, atol=1e-12)


@given(st.integers(0, 10**6), st.sampled_from([0.0, 0.01, 0.3]), st.sampled_from([0.5, 0.9]))
def test_V_t_is_non_decreasing(seed, c, gamma):
    mdp = garnet(4, 3, 2, gamma=gamma, seed=seed)
    result = vi_lcb(uniform_data(mdp, 2000, seed), gamma, c=c, seed=seed)
    assert np.all(np.diff(result.V_history, axis=0) >= 0.0)
    np.testing.assert_array_equal(result.V, result.V_history[-1])
    np.testing.assert_array_equal(result.pi, result.pi_history[-1])


def test_unseen_state_keeps_its_initial_value_and_action():
    mdp = garnet(3, 2, 3, gamma=0.5, seed=0)
    mu = np.array([[0.25, 0.25], [0.25, 0.25], [0.0, 0.0]])  # state 2 never sampled
    data = sample_transitions(mdp, mu, 20_000, seed=0)
    pi0 = np.array([1, 1, 1])
    result = vi_lcb(data, 0.5, c=0.01, pi0=pi0, seed=0)
    assert result.pi[2] == 1 and result.V[2] == 0.0
    assert np.all(result.Q[2] == -np.inf) and not np.isnan(result.V).any()


# --- pessimism with probability at least 1 - delta (sheet property 7) -------------------

MDP = garnet(3, 2, 3, gamma=0.5, seed=0)  # rewards in [0, 1); V* about 1.5
DELTA = 0.1


def pessimism_gaps(c, runs):
    gaps, values = np.empty(runs), np.empty(runs)
    for i in range(runs):
        result = vi_lcb(uniform_data(MDP, 30_000, seed=i), 0.5, c=c, delta=DELTA, seed=10**6 + i)
        gaps[i] = np.max(result.V - evaluate_policy(MDP, result.pi).V)
        values[i] = result.V[0]
    return gaps, values


def test_pessimism_with_probability_one_minus_delta_and_planted_c_zero():
    """V_T <= V^{pi_T} + 1e-9 (all states) in at least 1 - delta of the runs, certified by a
    one-sided Clopper-Pearson bound; V_T(s0) > 0 so the check is not vacuous. The planted
    error c = 0 (no pessimism) must be rejected."""
    gaps, values = pessimism_gaps(0.5, 100)
    check = check_high_probability(gaps, 1e-9, DELTA, alpha=LEVEL / 2)
    assert check.certified, check.text
    assert np.all(values > 0.5), values.min()
    planted, _ = pessimism_gaps(0.0, 40)
    bad = check_high_probability(planted, 1e-9, DELTA, alpha=LEVEL / 2)
    assert not bad.consistent, bad.text


# --- bad input ----------------------------------------------------------------------------


def test_vi_lcb_bad_input():
    data = uniform_data(MDP, 200, seed=0)
    with pytest.raises(ValueError, match="empty"):
        vi_lcb(data.subset(np.zeros(0, dtype=int)), 0.5)
    with pytest.raises(ValueError, match=r"N = 3 transitions cannot fill T \+ 1 = 4 folds"):
        vi_lcb(data.subset(np.arange(3)), 0.5)
    with pytest.raises(ValueError, match="has steps|have steps"):
        vi_lcb(Transitions(s=[0], a=[0], r=[0.0], s_next=[0], S=1, A=1, h=[0], H=1), 0.5)
    with pytest.raises(ValueError, match=r"rewards in \[0, 1\]"):
        vi_lcb(Transitions(s=[0, 0], a=[0, 0], r=[0.0, 1.5], s_next=[0, 0], S=1, A=1), 0.5)
    with pytest.raises(ValueError, match="gamma"):
        vi_lcb(data, 1.0)
    with pytest.raises(ValueError, match="c = -1.0"):
        vi_lcb(data, 0.5, c=-1.0)
    with pytest.raises(ValueError, match="delta"):
        vi_lcb(data, 0.5, delta=1.0)
    one = data.subset(np.arange(1))
    with pytest.raises(ValueError, match=r"delta defaults to 1 / N, which is 1 at N = 1"):
        vi_lcb(one, 0.5)
    assert vi_lcb(one, 0.5, delta=0.1).T == 0  # explicit delta: T = ceil(log 1 / 0.5) = 0
    with pytest.raises(ValueError, match="pi0"):
        vi_lcb(data, 0.5, pi0=[0, 2, 0])
    with pytest.raises(TypeError, match="Transitions"):
        vi_lcb(np.zeros((3, 2)), 0.5)


# --- the vi-lcb-mdp figure ------------------------------------------------------------------


def test_sign_test_counts_and_ties():
    assert vi_lcb_mdp._sign_test(np.ones(20)) == (20, 0, pytest.approx(2.0**-20))
    worse, better, p = vi_lcb_mdp._sign_test(np.array([0.0, 0.0, -1.0, 1.0]))
    assert (worse, better) == (1, 1) and p == pytest.approx(0.75)
    assert vi_lcb_mdp._sign_test(np.zeros(5)) == (0, 0, 1.0)


def test_sign_test_rejection_threshold_and_wording():
    """Thresholds from the binomial tail sum_{j >= k} C(n, j) / 2^n, computed here."""
    def tail(k, n):
        return sum(math.comb(n, j) for j in range(k, n + 1)) / 2**n

    for n, alpha in ((20, 1e-3 / 4), (20, 1e-3 / 8), (15, 1e-3 / 8), (12, 1e-3 / 8)):
        expected = next((k for k in range(n + 1) if tail(k, n) < alpha), None)
        assert vi_lcb_mdp._rejection_threshold(n, alpha) == expected
    assert tail(18, 20) < 1e-3 / 4 < tail(17, 20) and tail(19, 20) < 1e-3 / 8 < tail(18, 20)
    assert vi_lcb_mdp._rejection_threshold(20, 1e-3 / 8) == 19
    assert vi_lcb_mdp._rejection_threshold(12, 1e-3 / 8) is None  # 2^-12 > 1.25e-4
    text = vi_lcb_mdp._sign_test_text(3, 15, 20, 0.99, 1e-3 / 8, "0.001/8", False)
    assert text.startswith("no significant evidence that VI-LCB is worse: 3/20 worse, 15 better, 2 tied")
    assert "rejects only at >= 17/18 worse" in text
    text = vi_lcb_mdp._sign_test_text(20, 0, 20, 2.0**-20, 1e-3 / 8, "0.001/8", True)
    assert text.startswith("significant evidence that VI-LCB is worse: 20/20 worse")
    assert "rejects at >= 19/20 worse" in text
    assert "cannot reject with 4 untied" in vi_lcb_mdp._sign_test_text(2, 2, 20, 0.7, 1e-4, "x", False)


def test_config_rejects_unknown_reward_model():
    with pytest.raises(ValueError, match="reward_models"):
        vi_lcb_mdp.validate_config({**vi_lcb_mdp.CONFIGS["smoke"], "reward_models": ["gaussian"]})


def test_valid_constant_never_updates_on_the_chain():
    """The audit's statement, computed directly: at c = 1/2 and N = 1e5 the penalty
    Vmax sqrt(L_c / m_t) exceeds every attainable gain, so V_T = 0 and pi_T = pi_0."""
    mdp = river_swim(6, gamma=0.9)
    pi_star = np.ones(6, dtype=np.int64)
    from tabular.sampling import mixture_behaviour

    for lam in (1.0, 0.5, 0.0):
        data = sample_transitions(mdp, mixture_behaviour(mdp, pi_star, lam), 100_000, seed=7)
        result = vi_lcb(data, 0.9, c=0.5, seed=8)
        assert result.V.max() == 0.0 and np.all(result.pi == 0), lam


def test_figure_smoke_check_exits_0(tmp_path, capsys):
    code = main(["check", "vi-lcb-mdp", "--config", "smoke", "--out", str(tmp_path),
                 "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 0, out
    assert "never updates: V_T = 0 and pi_T = pi_0" in out and "C*(lam) = 1 (lam=1)" in out
    assert "BC plateaus at lam=0" in out
    assert "[deterministic rewards]" in out and "[bernoulli rewards]" in out
    assert "nothing to be pessimistic about except transitions" in out
    assert "level 0.001/8" in out  # 2 data models x 2 lams x 2 constants


def test_figure_planted_wrong_valid_constant_is_caught(tmp_path, capsys):
    """Planted error: claiming c = 0.001 is the valid constant. VI-LCB does update at that
    constant, so the asserted sub-claim must fail: exit 1 (reduced sizes; this also draws
    and writes the figure)."""
    code = main(["reproduce", "vi-lcb-mdp", "--config", "smoke", "--set", "c_valid=0.001",
                 "--set", "Ns=[30000, 100000]", "--set", "lams=[1.0, 0.0]", "--set", "n_seeds=3",
                 "--set", "cs=[0.001]", "--set", 'reward_models=["bernoulli"]',
                 "--out", str(tmp_path), "--no-progress"])
    out = capsys.readouterr().out.removeprefix(EMPIRICAL_NOTE + "\n")
    assert code == 1, out
    assert out.startswith("NOT SUPPORTED") and "DOES update" in out
    for name in ("vi-lcb-mdp.png", "vi-lcb-mdp.pdf", "results.json", "verdict.txt"):
        assert (tmp_path / name).stat().st_size > 0
