"""Hong et al. (ICLR 2023): behaviour cloning on return- or advantage-weighted resamples of a mixed dataset, against uniform sampling.

Instance (fixed in advance): a deterministic MDP with stochastic initial states. ``K``
start states with a start bonus ``b_k = start_bonus * k / (K - 1)`` (the reward of either
action at start k) lead into a shared chain of ``L`` states, where action 1 earns 1 and
action 0 earns 0, both moving on; horizon ``H = L + 1``, ``mu0`` uniform over the starts.
A dataset holds ``N = 200`` trajectories (sheet [1]): ``round(share * N)`` from the expert
(always action 1) and the rest from a low-return behaviour (action 1 with probability
``q_low``), each from a uniform start. The start bonus makes part of a trajectory's return
depend on its start alone: the case that advantage weighting (AW) corrects and return
weighting (RW) does not.

Learners: BC (maximum likelihood, :func:`tabular.offline.behaviour_cloning`) on the dataset
(uniform sampling) and on N trajectories resampled with RW or AW probabilities at the fixed
temperature ``alpha = 0.1`` on max-min normalised returns (the paper's default is not
verified; 0.1 lies inside the sheet's sweep logspace(-2, 1) and, returns being normalised
to [0, 1], lets the best trajectory outweigh the worst by e^10 while keeping every weight
positive). Score: exact expected return of the learned policy under ``mu0``, normalised as
``(J - J_low) / (J* - J_low)`` (0 the low behaviour, 1 the optimum), with ``J*`` and
``J_low`` computed once, by planning (:func:`reference_returns`).

Claims (every decision rule below was fixed before any run, with no tuning):
- Empirical, the CLAIM (sheet [1]): at every share, RW and AW score above uniform sampling,
  by a one-sided exact sign test over seeds at level 1e-3 (Bonferroni over shares and the
  two weightings). The verdict's head ("reproduced" / "not reproduced in this toy") is this
  claim's.
- Empirical, the sheet's figure [1] ("monotone rise to the best trajectory return as
  alpha -> 0"), on the sweep at share 5%, for RW and AW: *rise* if the score at the
  smallest alpha beats the score at the largest (one-sided exact sign test); *monotone*
  unless, for some neighbouring pair alpha_j < alpha_{j+1}, the score at alpha_{j+1}
  significantly beats the score at alpha_j (one-sided sign test: a fall as alpha -> 0).
  All ``2 * n_alphas`` tests at level 1e-3, Bonferroni. Reproduced iff both rises are
  significant and no fall is. The limit value is reported, not tested.
- Empirical, the paper's RPSV claim (the improvement of reweighting correlates with the
  return positive-sided variance, abstract): pooled over shares the correlation is
  confounded by the share (both vary with it), so the test is within shares. For each
  share, Spearman's rho over seeds between the dataset's RPSV and RW's gain
  ``J_RW - J_uniform``; under independence each rho has permutation variance 1/(n - 1), so
  ``Z = sqrt(n - 1) * sum_k rho_k / sqrt(K)`` over the K shares where neither is constant is
  about standard normal. Reproduced iff the one-sided p-value ``1 - Phi(Z)`` is at most
  1e-3; the pooled Spearman correlation is reported as descriptive only.
- Asserted (exit 1 if violated; property [1], exact): the RW-weighted data's mean return is
  at least the uniform mean, ``sum_i w_i G_i >= mean(G)`` (weights comonotone with returns,
  Chebyshev's sum inequality), for every run, share and temperature; for AW the same holds
  within each start state. Tolerance ``1e-10 * max(1, max |G|)``.
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "trajectory-weighting"
CLAIM = Claim(
    name=NAME,
    statement=(
        "On a mixed dataset (few high-return trajectories) of a deterministic MDP with "
        "stochastic initial states, behaviour cloning on return- or advantage-weighted "
        "resamples (alpha = 0.1) beats uniform sampling at every share of high-return "
        "trajectories; the weighted data's mean return is never below the uniform mean."
    ),
    source=(
        "Hong, Agrawal, Tachet des Combes, Laroche (2023), Harnessing Mixed Offline RL "
        "Datasets via Trajectory Weighting, ICLR: return- and advantage-weighted sampling "
        "(exponential weights per the spec sheet; default temperature not verified); the "
        "weighted-mean inequality is derived (Chebyshev's sum inequality)."
    ),
    kind="empirical",
)

_BASE = {
    "N": 200,
    "shares": [0.01, 0.02, 0.05, 0.1, 0.2, 0.5],
    "K": 10,
    "L": 10,
    "start_bonus": 5.0,
    "q_low": 0.3,
    "alpha": 0.1,
    "sweep_share": 0.05,
    "sweep_alphas": [0.01, 0.0316, 0.1, 0.316, 1.0, 3.16, 10.0],
    "weight_sign": 1.0,  # -1.0 plants an error: weights decreasing in the return
    "level": 1e-3,
}
CONFIGS = {
    "smoke": {**_BASE, "n_runs": 20},
    "quick": {**_BASE, "n_runs": 100},
    "paper": {**_BASE, "n_runs": 500},
}
AGGREGATE_KEYS = ("level",)
METHODS = ("uniform", "rw", "aw")
LABELS = {"uniform": "uniform sampling", "rw": "return-weighted (RW)",
          "aw": "advantage-weighted (AW)"}
STYLE = {"uniform": {"color": "C7", "marker": "s", "ls": "--"},
         "rw": {"color": "C0", "marker": "o", "ls": "-"},
         "aw": {"color": "C3", "marker": "^", "ls": "-"}}


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key in ("N", "K", "L", "n_runs"):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 2:
            raise ValueError(f"{key} must be an int >= 2, got {value!r}")
    shares = config["shares"]
    if not shares or any(not 0 < s <= 1 or round(s * config["N"]) < 1 for s in shares):
        raise ValueError(f"shares must lie in (0, 1] with round(share * N) >= 1, got {shares}")
    if not 0 < config["sweep_share"] <= 1 or round(config["sweep_share"] * config["N"]) < 1:
        raise ValueError(f"sweep_share must lie in (0, 1] with at least one expert trajectory, "
                         f"got {config['sweep_share']}")
    if not 0 <= config["q_low"] < 1:
        raise ValueError(f"q_low must lie in [0, 1), got {config['q_low']}")
    if config["start_bonus"] < 0:
        raise ValueError(f"start_bonus must be non-negative, got {config['start_bonus']}")
    alphas = config["sweep_alphas"]
    if config["alpha"] <= 0 or any(a <= 0 for a in alphas):
        raise ValueError("alpha and sweep_alphas must be positive")
    if len(alphas) < 2 or any(a >= b for a, b in zip(alphas, alphas[1:])):
        raise ValueError(f"sweep_alphas must hold at least two increasing values, got {alphas}")
    if config["weight_sign"] not in (1.0, -1.0):
        raise ValueError(f"weight_sign must be 1.0 or -1.0, got {config['weight_sign']}")
    if not 0 < config["level"] < 1:
        raise ValueError(f"level must be in (0, 1), got {config['level']}")


def runs(config) -> list[dict]:
    """``n_runs`` identical runs (seeds), each over every share."""
    validate_config(config)
    return [{} for _ in range(config["n_runs"])]


def start_bonus_chain(K: int, L: int, start_bonus: float):
    """The instance: K start states with bonuses, then a shared chain of L states.

    States ``0..K-1`` are the starts, ``K..K+L-1`` the chain, ``K+L`` an absorbing end.
    Returns the finite-horizon :class:`~tabular.mdp.TabularMDP` (``H = L + 1``, ``A = 2``).
    """
    from tabular.mdp import TabularMDP

    S = K + L + 1
    P = np.zeros((S, 2, S))
    R = np.zeros((S, 2))
    R[:K] = (start_bonus * np.arange(K) / (K - 1))[:, None]
    P[:K, :, K] = 1.0
    for j in range(L):
        P[K + j, :, K + j + 1] = 1.0
        R[K + j, 1] = 1.0
    P[K + L, :, K + L] = 1.0
    mu0 = np.zeros(S)
    mu0[:K] = 1.0 / K
    return TabularMDP(P, R, mu0, H=L + 1)


def _behaviour(mdp, q: float) -> np.ndarray:
    """Action 1 with probability q in every state, (S, A)."""
    return np.tile([1.0 - q, q], (mdp.S, 1))


def reference_returns(config) -> tuple[float, float]:
    """``(J_star, J_low)``: the optimal expected return and that of the low behaviour.

    Computed by planning on the instance (:func:`tabular.planning.backward_induction`,
    :func:`tabular.planning.expected_return`); in closed form ``J* = start_bonus / 2 + L``
    and ``J_low = start_bonus / 2 + q_low L`` (checked in the tests).
    """
    from tabular.planning import backward_induction, expected_return

    mdp = start_bonus_chain(config["K"], config["L"], config["start_bonus"])
    J_star = float(mdp.mu0 @ backward_induction(mdp).V[0])
    return J_star, float(expected_return(mdp, _behaviour(mdp, config["q_low"])))


def _dataset(mdp, config, share, rng):
    from tabular.sampling import Episodes, sample_episodes

    N = config["N"]
    n_good = int(round(share * N))
    good = sample_episodes(mdp, _behaviour(mdp, 1.0), n_good, seed=rng)
    low = sample_episodes(mdp, _behaviour(mdp, config["q_low"]), N - n_good, seed=rng)
    return Episodes(*(np.concatenate([getattr(good, f), getattr(low, f)])
                      for f in ("states", "actions", "rewards", "lengths")))


def _gaps(G, s0, w_rw, w_aw) -> tuple[float, float]:
    """``sum_i (w_i - 1/n)(G_i - mean G)`` for RW, and its minimum within start states for AW."""
    gap_rw = float(np.sum((w_rw - 1.0 / G.size) * (G - G.mean())))
    gap_aw = np.inf
    for s in np.unique(s0):
        m = s0 == s
        Gm, wm = G[m], w_aw[m] / w_aw[m].sum()
        gap_aw = min(gap_aw, float(np.sum((wm - 1.0 / Gm.size) * (Gm - Gm.mean()))))
    return gap_rw, gap_aw


def _learn(mdp, ep, config, alpha, rng, uniform=True):
    """Expected returns J of BC under uniform (if asked), RW and AW sampling, and the gaps."""
    from tabular.mixed_data import (
        advantage_weights,
        resampled_behaviour_cloning,
        return_weights,
        state_action_counts,
        trajectory_returns,
    )
    from tabular.offline import behaviour_cloning
    from tabular.planning import expected_return

    S, A = mdp.S, mdp.A
    G, s0 = trajectory_returns(ep), ep.states[:, 0]
    sign = config["weight_sign"]
    w_rw = return_weights(sign * G, alpha)
    w_aw = advantage_weights(sign * G, s0, alpha)
    J = {}
    if uniform:
        J["uniform"] = expected_return(mdp, behaviour_cloning(state_action_counts(ep, S, A)))
    for key, w in (("rw", w_rw), ("aw", w_aw)):
        J[key] = expected_return(mdp, resampled_behaviour_cloning(ep, S, A, w, seed=rng))
    return J, _gaps(G, s0, w_rw, w_aw), G


def run_one(config, seed) -> dict:
    """One seed: every share at ``alpha``, and the alpha sweep at ``sweep_share``.

    Returns
    -------
    dict
        ``J_{method}`` (n_shares,) expected returns; ``gap_rw``, ``gap_aw`` (n_shares,) the
        weighted-minus-uniform mean returns of the data (AW: minimum over start states);
        ``rpsv``, ``mean_G``, ``max_G`` (n_shares,); ``sweep_J_{rw,aw}``,
        ``sweep_gap_{rw,aw}`` (n_alphas,); ``tol`` (n_shares + 1,) the tolerance of each
        dataset's asserted check.
    """
    from proofs_check.seeding import as_generator
    from tabular.mixed_data import rpsv

    rng = as_generator(seed)
    mdp = start_bonus_chain(config["K"], config["L"], config["start_bonus"])
    shares = config["shares"]
    out = {f"J_{m}": np.zeros(len(shares)) for m in METHODS}
    for key in ("gap_rw", "gap_aw", "rpsv", "mean_G", "max_G"):
        out[key] = np.zeros(len(shares))
    tol = []
    for i, share in enumerate(shares):
        ep = _dataset(mdp, config, share, rng)
        J, (gap_rw, gap_aw), G = _learn(mdp, ep, config, config["alpha"], rng)
        for m in METHODS:
            out[f"J_{m}"][i] = J[m]
        out["gap_rw"][i], out["gap_aw"][i] = gap_rw, gap_aw
        out["rpsv"][i], out["mean_G"][i], out["max_G"][i] = rpsv(G), G.mean(), G.max()
        tol.append(1e-10 * max(1.0, float(np.abs(G).max())))
    ep = _dataset(mdp, config, config["sweep_share"], rng)
    n_alphas = len(config["sweep_alphas"])
    for key in ("sweep_J_rw", "sweep_J_aw", "sweep_gap_rw", "sweep_gap_aw"):
        out[key] = np.zeros(n_alphas)
    for j, alpha in enumerate(config["sweep_alphas"]):
        J, (gap_rw, gap_aw), G = _learn(mdp, ep, config, alpha, rng, uniform=False)
        out["sweep_J_rw"][j], out["sweep_J_aw"][j] = J["rw"], J["aw"]
        out["sweep_gap_rw"][j], out["sweep_gap_aw"][j] = gap_rw, gap_aw
    tol.append(1e-10 * max(1.0, float(np.abs(G).max())))
    out["tol"] = np.array(tol)
    return out


def sign_test_p(diffs: np.ndarray) -> float:
    """One-sided exact sign test of ``P(diff > 0) > 1/2`` (zeros dropped); 1.0 if all zero."""
    from scipy.stats import binomtest

    pos, neg = int(np.sum(diffs > 0)), int(np.sum(diffs < 0))
    if pos + neg == 0:
        return 1.0
    return float(binomtest(pos, pos + neg, 0.5, alternative="greater").pvalue)


def _sweep_tests(sweep: np.ndarray) -> tuple[float, np.ndarray]:
    """Sign-test p-values on sweep scores (n_runs, n_alphas), alphas increasing: the rise
    (smallest alpha beats largest) and, per neighbouring pair, a fall as alpha -> 0."""
    p_rise = sign_test_p(sweep[:, 0] - sweep[:, -1])
    p_fall = np.array([sign_test_p(sweep[:, j + 1] - sweep[:, j])
                       for j in range(sweep.shape[1] - 1)])
    return p_rise, p_fall


def rpsv_within_shares(rpsv_values: np.ndarray, gain: np.ndarray) -> tuple[float, float, int]:
    """Stratified Spearman test of a positive RPSV-gain association, within shares.

    Parameters
    ----------
    rpsv_values, gain : numpy.ndarray, float (n_runs, n_shares)

    Returns
    -------
    (Z, p, K)
        ``Z = sqrt(n - 1) * sum_k rho_k / sqrt(K)`` over the K shares where neither column
        is constant (each rho_k has permutation variance 1/(n - 1) under independence), and
        the one-sided normal p-value ``1 - Phi(Z)``; ``(nan, nan, 0)`` when K = 0.
    """
    from scipy.stats import norm, spearmanr

    n = rpsv_values.shape[0]
    rhos = [spearmanr(rpsv_values[:, k], gain[:, k])[0] for k in range(gain.shape[1])
            if np.ptp(rpsv_values[:, k]) > 0 and np.ptp(gain[:, k]) > 0]
    if not rhos:
        return float("nan"), float("nan"), 0
    Z = float(np.sqrt(n - 1) * np.sum(rhos) / np.sqrt(len(rhos)))
    return Z, float(norm.sf(Z)), len(rhos)


def aggregate(runs_out, config) -> dict:
    """Scores per share and method, sign tests, the alpha-sweep and RPSV tests, the asserted checks."""
    from scipy.stats import spearmanr

    J_star, J_low = reference_returns(config)
    stack = {key: np.stack([r[key] for r in runs_out]) for key in runs_out[0]}
    score = {m: (stack[f"J_{m}"] - J_low) / (J_star - J_low) for m in METHODS}
    shares = np.array(config["shares"], float)
    n_tests = 2 * shares.size
    level = config["level"]
    res = {"shares": shares, "alpha": config["alpha"], "J_star": J_star, "J_low": J_low,
           "n_runs": len(runs_out), "level": level, "N": config["N"],
           "sweep_alphas": np.array(config["sweep_alphas"], float),
           "sweep_share": config["sweep_share"], "weight_sign": config["weight_sign"]}
    for m in METHODS:
        res[f"score_{m}"] = score[m].mean(axis=0)
        res[f"score_se_{m}"] = score[m].std(axis=0, ddof=1) / np.sqrt(len(runs_out))
    for m in ("rw", "aw"):
        res[f"p_{m}"] = np.array([sign_test_p(score[m][:, i] - score["uniform"][:, i])
                                  for i in range(shares.size)])
        sweep = (stack[f"sweep_J_{m}"] - J_low) / (J_star - J_low)
        res[f"sweep_score_{m}"] = sweep.mean(axis=0)
        res[f"sweep_score_se_{m}"] = sweep.std(axis=0, ddof=1) / np.sqrt(len(runs_out))
        res[f"p_rise_{m}"], res[f"p_fall_{m}"] = _sweep_tests(sweep)
    res["rejected"] = bool(np.all(res["p_rw"] <= level / n_tests)
                           and np.all(res["p_aw"] <= level / n_tests))
    sweep_level = level / (2 * res["sweep_alphas"].size)
    res["sweep_level"] = sweep_level
    res["sweep_reproduced"] = bool(
        all(res[f"p_rise_{m}"] <= sweep_level for m in ("rw", "aw"))
        and not any(np.any(res[f"p_fall_{m}"] <= sweep_level) for m in ("rw", "aw")))
    res["rpsv"] = stack["rpsv"].mean(axis=0)
    gain = stack["J_rw"] - stack["J_uniform"]
    res["rpsv_Z"], res["rpsv_p"], res["rpsv_strata"] = rpsv_within_shares(stack["rpsv"], gain)
    res["rpsv_pooled_spearman"] = float(spearmanr(stack["rpsv"].ravel(), gain.ravel())[0])
    # Asserted: sum_i w_i G_i >= mean(G) for RW; within each start state for AW.
    tol_shares, tol_sweep = stack["tol"][:, :-1], stack["tol"][:, -1:]
    slack = np.concatenate([(stack["gap_rw"] + tol_shares).ravel(),
                            (stack["gap_aw"] + tol_shares).ravel(),
                            (stack["sweep_gap_rw"] + tol_sweep).ravel(),
                            (stack["sweep_gap_aw"] + tol_sweep).ravel()])
    res["n_checks"] = int(slack.size)
    res["n_violations"] = int(np.sum(slack < 0))
    res["min_gap_rw"] = float(min(stack["gap_rw"].min(), stack["sweep_gap_rw"].min()))
    res["min_gap_aw"] = float(min(stack["gap_aw"].min(), stack["sweep_gap_aw"].min()))
    return res


def _fmt(values) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


def _sub_verdict(reproduced: bool) -> str:
    return "reproduced" if reproduced else "not reproduced in this toy"


def verdict(results) -> tuple[bool | None, str]:
    """Empirical verdicts (the claim, the alpha sweep, RPSV) plus the asserted weighted-mean inequality."""
    shares = ", ".join(f"{100 * s:g}%" for s in results["shares"])
    n, level = results["n_runs"], results["level"]
    numbers = (
        f"mean normalised score over {n} seeds at shares [{shares}] (0 = low behaviour, "
        f"1 = optimum): uniform {_fmt(results['score_uniform'])}, RW {_fmt(results['score_rw'])}, "
        f"AW {_fmt(results['score_aw'])} (alpha = {results['alpha']:g}); largest one-sided "
        f"sign-test p-value RW {results['p_rw'].max():.2g}, AW {results['p_aw'].max():.2g} "
        f"(threshold {level / (2 * results['shares'].size):.2g} = {level:g} / "
        f"{2 * results['shares'].size})."
    )
    sweep = (
        f"Sheet's alpha sweep (monotone rise as alpha -> 0), share "
        f"{100 * results['sweep_share']:g}%, alpha {_fmt(results['sweep_alphas'])}: RW "
        f"{_fmt(results['sweep_score_rw'])}, AW {_fmt(results['sweep_score_aw'])}; "
        f"{_sub_verdict(results['sweep_reproduced'])} (rise, smallest vs largest alpha: "
        f"p = {results['p_rise_rw']:.2g} RW, {results['p_rise_aw']:.2g} AW; smallest p of a "
        f"fall as alpha -> 0 between neighbours: {results['p_fall_rw'].min():.2g} RW, "
        f"{results['p_fall_aw'].min():.2g} AW; threshold {results['sweep_level']:.2g})."
    )
    if results["rpsv_strata"] == 0:
        rpsv_head = "not tested (RPSV or RW's gain constant over seeds in every share)"
    else:
        rpsv_head = (f"{_sub_verdict(results['rpsv_p'] <= level)} (Z = "
                     f"{results['rpsv_Z']:.2f}, one-sided p = {results['rpsv_p']:.2g} over "
                     f"{results['rpsv_strata']} shares, threshold {level:g})")
    rpsv = (
        f"Paper's RPSV claim, tested within shares (Spearman of RPSV with RW's gain): "
        f"{rpsv_head}; mean RPSV {_fmt(results['rpsv'])}; pooled Spearman "
        f"{results['rpsv_pooled_spearman']:.2f} (descriptive only: confounded by the share)."
    )
    asserted = (f"Asserted E_w[G] >= mean(G) (RW; AW within each start): "
                f"{results['n_checks'] - results['n_violations']} of {results['n_checks']} "
                f"checks hold (min gap RW {results['min_gap_rw']:.3g}, AW "
                f"{results['min_gap_aw']:.3g}).")
    if results["n_violations"]:
        return False, (f"NOT SUPPORTED (the weighted mean return fell below the uniform mean). "
                       f"{asserted} {numbers} {sweep} {rpsv}")
    return True, f"{_sub_verdict(results['rejected'])}: {numbers} {sweep} {rpsv} {asserted}"


def plot(results):
    """Score against the share of high-return trajectories; score against alpha."""
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.6), layout="constrained")
    x = 100 * results["shares"]
    for m in METHODS:
        ax.errorbar(x, results[f"score_{m}"], yerr=results[f"score_se_{m}"], **STYLE[m],
                    label=LABELS[m] + ("" if m == "uniform" else f", alpha = {results['alpha']:g}"))
    ax.axhline(1.0, color="k", lw=0.8, ls=":", label="optimum")
    ax.set(xscale="log", xlabel="share of high-return trajectories (%)",
           ylabel="normalised return of the BC policy\n(0 = low behaviour, 1 = optimum)",
           title=f"N = {results['N']} trajectories, {results['n_runs']} seeds (mean ± s.e.)")
    ax.set_xticks(x, [f"{v:g}" for v in x])
    ax.legend(fontsize=8)
    for m in ("rw", "aw"):
        ax2.errorbar(results["sweep_alphas"], results[f"sweep_score_{m}"],
                     yerr=results[f"sweep_score_se_{m}"], **STYLE[m], label=LABELS[m])
    ax2.axhline(1.0, color="k", lw=0.8, ls=":")
    ax2.set(xscale="log", xlabel="temperature alpha (normalised returns)",
            ylabel="normalised return of the BC policy",
            title=f"share {100 * results['sweep_share']:g}%: weighting against alpha")
    ax2.legend(fontsize=8)
    fig.suptitle("Trajectory weighting on a mixed dataset (Hong et al. 2023), deterministic "
                 "MDP with stochastic starts", fontsize=10)
    return fig
