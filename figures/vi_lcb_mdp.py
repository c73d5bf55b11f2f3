"""P4 of Rashidinejad et al. (2021): VI-LCB, plain model-based VI and behaviour cloning against the data size N, from expert to uniform data, on a six-state chain, with deterministic and with Bernoulli rewards.

Instance (fixed in advance): RiverSwim with S = 6 states, A = 2 actions (0 = swim left,
1 = swim right), gamma = 0.9, start state 0, rewards in [0, 1]
(:func:`tabular.generators.river_swim`, the Osband et al. 2013 variant). The optimal policy
swims right everywhere (V*(0) = 1.20); swimming left at state 0 earns the distractor reward
5e-3 forever (value 0.05). Data: N i.i.d. transitions ``(s, a) ~ mu``,
``mu = lam d^{pi*} + (1 - lam) uniform`` for lam in {1, 0.5, 0} (normalised occupancy, so
C* = 1 at lam = 1), under two data models declared in advance (one panel row each, all
else equal): deterministic rewards ``r = R(s, a)`` and Bernoulli rewards
``r ~ Bernoulli(R(s, a))`` (the paper's random rewards in [0, 1];
:func:`tabular.sampling.sample_transitions`). Methods: VI-LCB with the paper's (T + 1)-fold
split and ``pi_0 = action 0`` (:func:`tabular.offline.vi_lcb`) at the constants ``cs`` of
the configuration (the sheet's audit: c ~ 1e-3..1e-2, labelled on the plot), plain
model-based VI (:func:`tabular.offline.model_based_vi`) and behaviour cloning (per-state
majority action, :func:`tabular.offline.bc_greedy`). Metric: exact sub-optimality
``J(pi*) - J(pi_hat)`` from state 0, 20 datasets per (data model, lam, N).

Claims (the sheet's qualitative expectations; kind "empirical"):
- reported: VI-LCB is no worse than plain VI at lam in {0.5, 0}, for each data model: per
  dataset i the paired difference of sub-optimalities, averaged over the N grid;
  one-sided sign test (``scipy.stats.binomtest``) of "VI-LCB worse". Level 1e-3 for the
  figure's family, Bonferroni-split over the 2 data models x 2 lams x 2 constants = 8
  tests (1.25e-4 each): with 20 untied datasets it rejects only at >= 19 of 20 worse (the
  threshold is computed and printed for each cell). Not rejecting is only "no significant
  evidence that VI-LCB is worse", not evidence that it is no worse.
- reported: behaviour cloning plateaus at lam = 0 (each data model): its mean
  sub-optimality at the largest N is at least ``plateau_fraction`` (0.5) of that at the
  smallest N, which is positive.
- asserted: the guarantee of VI-LCB needs ``c >= 1/2``; at ``c_valid = 0.5`` VI-LCB never
  updates on this chain (``V_T = 0`` and ``pi_T = pi_0`` in every run, both data models),
  computed, not assumed; and C* = 1 at lam = 1 with the closed form
  ``C*(lam) = d_max / (lam d_max + (1 - lam) / (S A))`` elsewhere.
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim
from proofs_check.theorems.lcb_pessimism import VI_LCB_MDP_UPPER

NAME = "vi-lcb-mdp"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Offline six-state chain (RiverSwim, gamma = 0.9), data mu = lam d^pi* + (1 - lam) "
        "uniform, deterministic or Bernoulli rewards: VI-LCB is no worse than plain "
        "model-based VI under partial coverage (lam = 0.5, 0) and behaviour cloning plateaus "
        "at lam = 0; VI-LCB's guarantee needs c >= 1/2, at which this chain never updates "
        "(V_T = 0, pi_T = pi_0)."
    ),
    source=(
        "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline Reinforcement "
        "Learning and Imitation Learning: A Tale of Pessimism, NeurIPS; VI-LCB with data "
        "splitting (as recalled, constants not re-checked); qualitative expectations and "
        "the c >= 1/2 audit from the spec sheet (derived)."
    ),
    kind="empirical",
    bounds=(VI_LCB_MDP_UPPER,),
)

REWARD_MODELS = ("deterministic", "bernoulli")
_BASE = {
    "S": 6,
    "gamma": 0.9,
    "reward_models": list(REWARD_MODELS),
    "lams": [1.0, 0.5, 0.0],
    "Ns": [1000, 3000, 10000, 30000, 100000],
    "n_seeds": 20,
    "cs": [0.001, 0.01],
    "c_valid": 0.5,
    "level": 1e-3,
    "plateau_fraction": 0.5,
}
CONFIGS = {
    "smoke": {**_BASE, "Ns": [1000, 10000]},
    "quick": dict(_BASE),
    "paper": {**_BASE, "Ns": [1000, 1778, 3162, 5623, 10000, 17783, 31623, 56234, 100000]},
}
AGGREGATE_KEYS = ("level", "plateau_fraction")

PARTIAL = (0.5, 0.0)  # the lams of the sign test
COLORS = {"plain": "C1", "bc": "C2"}


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    Ns, lams, cs = config["Ns"], config["lams"], config["cs"]
    if (len(Ns) < 2 or len(set(Ns)) != len(Ns)
            or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in Ns)):
        raise ValueError(f"Ns must be at least 2 distinct positive ints, got {Ns}")
    if not lams or any(not 0 <= lam <= 1 for lam in lams):
        raise ValueError(f"lams must be numbers in [0, 1], got {lams}")
    models = config["reward_models"]
    if (not models or len(set(models)) != len(models)
            or any(m not in REWARD_MODELS for m in models)):
        raise ValueError(f"reward_models must be distinct entries of {list(REWARD_MODELS)}, "
                         f"got {models}")
    if not cs or any(c < 0 for c in cs) or config["c_valid"] < 0:
        raise ValueError(f"cs and c_valid must be >= 0, got cs={cs}, c_valid={config['c_valid']}")
    if config["n_seeds"] < 1:
        raise ValueError(f"n_seeds must be at least 1, got {config['n_seeds']}")
    if not 0 < config["gamma"] < 1 or config["S"] < 2:
        raise ValueError(f"need 0 < gamma < 1 and S >= 2, got gamma={config['gamma']}, "
                         f"S={config['S']}")
    if not 0 < config["level"] < 1 or not 0 < config["plateau_fraction"] <= 1:
        raise ValueError("level must lie in (0, 1) and plateau_fraction in (0, 1]")


def runs(config) -> list[dict]:
    """One run per (reward model, lam, N), each with ``n_seeds`` datasets."""
    validate_config(config)
    return [{"rewards": m, "lam": float(lam), "N": int(N)} for m in config["reward_models"]
            for lam in config["lams"] for N in config["Ns"]]


def instance(config):
    """The MDP, an optimal policy and its return ``J(pi*)`` from state 0."""
    from tabular.generators import river_swim
    from tabular.planning import expected_return, value_iteration

    mdp = river_swim(config["S"], gamma=config["gamma"])
    pi_star = value_iteration(mdp).pi
    return mdp, pi_star, expected_return(mdp, pi_star)


def run_one(config, seed) -> dict:
    """Sub-optimalities of VI-LCB (each c), plain VI and BC on ``n_seeds`` datasets.

    Returns
    -------
    dict
        ``subopt_vi_lcb`` (n_cs, n_seeds), ``subopt_plain`` and ``subopt_bc`` (n_seeds,);
        ``valid_V_max`` (n_seeds,): ``max_s V_T(s)`` of VI-LCB at ``c_valid``;
        ``valid_pi_is_pi0`` (n_seeds,) bool: whether its ``pi_T`` equals ``pi_0``.
    """
    from proofs_check.seeding import as_generator, spawn
    from tabular.offline import bc_greedy, model_based_vi, vi_lcb
    from tabular.planning import expected_return
    from tabular.sampling import (
        mixture_behaviour,
        sample_transitions,
        transition_statistics,
    )

    mdp, pi_star, J_star = instance(config)
    gamma, cs, n = config["gamma"], config["cs"], config["n_seeds"]
    mu = mixture_behaviour(mdp, pi_star, config["lam"])
    pi0 = np.zeros(mdp.S, dtype=np.int64)

    def subopt(pi):
        return J_star - expected_return(mdp, pi)

    out = {"subopt_vi_lcb": np.empty((len(cs), n)), "subopt_plain": np.empty(n),
           "subopt_bc": np.empty(n), "valid_V_max": np.empty(n),
           "valid_pi_is_pi0": np.empty(n, dtype=bool)}
    for i, child in enumerate(spawn(seed, n)):
        rng = as_generator(child)
        data = sample_transitions(mdp, mu, config["N"], rewards=config["rewards"], seed=rng)
        for j, c in enumerate(cs):
            out["subopt_vi_lcb"][j, i] = subopt(vi_lcb(data, gamma, c=c, pi0=pi0, seed=rng).pi)
        valid = vi_lcb(data, gamma, c=config["c_valid"], pi0=pi0, seed=rng)
        out["valid_V_max"][i] = valid.V.max()
        out["valid_pi_is_pi0"][i] = np.array_equal(valid.pi, pi0)
        out["subopt_plain"][i] = subopt(model_based_vi(data, gamma).pi)
        out["subopt_bc"][i] = subopt(bc_greedy(transition_statistics(data).counts))
    return out


def _sign_test(diff: np.ndarray):
    """One-sided sign test of "VI-LCB worse": (k_worse, k_better, p-value)."""
    from scipy.stats import binomtest

    worse, better = int(np.sum(diff > 0)), int(np.sum(diff < 0))
    if worse + better == 0:
        return worse, better, 1.0
    return worse, better, float(binomtest(worse, worse + better, 0.5, alternative="greater").pvalue)


def _rejection_threshold(n_untied: int, alpha: float) -> int | None:
    """The least number of "worse" among ``n_untied`` untied datasets at which the one-sided
    sign test rejects at level ``alpha`` (p < alpha), or None when no count does."""
    from scipy.stats import binom

    for k in range(n_untied + 1):
        if binom.sf(k - 1, n_untied, 0.5) < alpha:  # P(X >= k)
            return k
    return None


def _sign_test_text(worse: int, better: int, n: int, p: float, alpha: float, label: str,
                    rejects: bool) -> str:
    untied = worse + better
    k_min = _rejection_threshold(untied, alpha)
    rule = (f"rejects {'' if rejects else 'only '}at >= {k_min}/{untied} worse"
            if k_min is not None else f"cannot reject with {untied} untied datasets")
    head = ("significant evidence that VI-LCB is worse" if rejects else
            "no significant evidence that VI-LCB is worse")
    return (f"{head}: {worse}/{n} worse, {better} better, {n - untied} tied; one-sided sign "
            f"test p = {p:.2g}, level {label} = {alpha:.3g}, {rule}")


def _cells(runs_out, config):
    """Sub-optimality arrays: VI-LCB (nR, nL, nc, nN, n), plain VI and BC (nR, nL, nN, n),
    and the c_valid diagnostics (nR, nL, nN)."""
    nR, nL, nN = len(config["reward_models"]), len(config["lams"]), len(config["Ns"])
    cell = [[[runs_out[(m * nL + l) * nN + k] for k in range(nN)] for l in range(nL)]
            for m in range(nR)]
    lcb = np.array([[np.stack([r["subopt_vi_lcb"] for r in row], axis=1) for row in rows]
                    for rows in cell])
    plain, bc = (np.array([[[r[key] for r in row] for row in rows] for rows in cell])
                 for key in ("subopt_plain", "subopt_bc"))
    V_max = np.array([[[r["valid_V_max"].max() for r in row] for row in rows] for rows in cell])
    kept = np.array([[[r["valid_pi_is_pi0"].all() for r in row] for row in rows]
                     for rows in cell])
    return lcb, plain, bc, V_max, kept


def _asserted_C_star(config, lams) -> tuple[np.ndarray, tuple]:
    """C* of each mixture and the asserted comparison with the closed form."""
    from tabular.planning import C_star, occupancy
    from tabular.sampling import mixture_behaviour

    mdp, pi_star, _ = instance(config)
    d = occupancy(mdp, pi_star)
    u = 1.0 / (mdp.S * mdp.A)
    got = np.array([C_star(mdp, mixture_behaviour(mdp, pi_star, lam), pi_star) for lam in lams])
    closed = np.array([d.max() / (lam * d.max() + (1 - lam) * u) for lam in lams])
    ok = bool(np.allclose(got, closed, rtol=1e-9))
    text = ("C*(lam) = " + ", ".join(f"{c:.4g} (lam={lam:g})" for c, lam in zip(got, lams))
            + f"; closed form d_max/(lam d_max + (1-lam)/SA) {'matches' if ok else 'DIFFERS'}")
    return got, ("C* of the mixtures", ok, text)


def aggregate(runs_out, config) -> dict:
    """Means and standard errors per (reward model, lam, N), the sign tests, the plateau and
    the asserted checks."""
    models = list(config["reward_models"])
    lams, Ns, cs = np.array(config["lams"], float), np.array(config["Ns"]), np.array(config["cs"])
    n = config["n_seeds"]
    lcb, plain, bc, V_max, kept = _cells(runs_out, config)
    res = {"reward_models": models, "lams": lams, "Ns": Ns, "cs": cs, "n_seeds": n,
           "c_valid": config["c_valid"], "level": config["level"],
           "plateau_fraction": config["plateau_fraction"], "gamma": config["gamma"],
           "S": config["S"], "J_star": instance(config)[2]}
    for key, x in (("vi_lcb", lcb), ("plain", plain), ("bc", bc)):
        res[f"mean_{key}"] = x.mean(axis=-1)
        res[f"se_{key}"] = x.std(axis=-1, ddof=1) / np.sqrt(n) if n > 1 else np.zeros(x.shape[:-1])
        res[f"optimal_{key}"] = (x <= 1e-12).sum(axis=-1)  # datasets with an optimal policy
    res["C_star"], c_claim = _asserted_C_star(config, lams)
    asserted = [c_claim]
    # Asserted: at the valid constant VI-LCB never updates, under every data model.
    res["valid_V_max"], res["valid_pi_kept"] = V_max, kept
    ok = bool(np.all(V_max == 0.0) and np.all(kept))
    asserted.append((f"no update at c = {config['c_valid']:g}", ok,
                     f"at c = {config['c_valid']:g} (the constant the guarantee needs) VI-LCB "
                     + ("never updates: V_T = 0 and pi_T = pi_0 in all "
                        f"{kept.size * n} runs" if ok else
                        f"DOES update: max V_T = {V_max.max():.4g}, pi_T != pi_0 in "
                        f"{int((~kept).sum())} of {kept.size} (rewards, lam, N) cells")))
    # Reported: the sign tests, Bonferroni over every (reward model, lam, c) cell.
    partial = [l for l in range(lams.size) if float(lams[l]) in PARTIAL]
    n_tests = max(1, len(models) * len(partial) * cs.size)
    alpha = config["level"] / n_tests
    label = f"{config['level']:g}/{n_tests}"
    reported, res["sign_tests"] = [], []
    for m, model in enumerate(models):
        for l in partial:
            for j, c in enumerate(cs):
                diff = (lcb[m, l, j] - plain[m, l]).mean(axis=0)  # per dataset, mean over N
                worse, better, p = _sign_test(diff)
                rejects = p < alpha
                res["sign_tests"].append({"rewards": model, "lam": float(lams[l]), "c": float(c),
                                          "worse": worse, "better": better, "p": p,
                                          "ok": not rejects})
                claim = f"VI-LCB (c={c:g}) no worse than plain VI at lam={lams[l]:g}"
                reported.append((model, claim, not rejects,
                                 _sign_test_text(worse, better, n, p, alpha, label, rejects)))
        # Reported: behaviour cloning plateaus at lam = 0.
        for l in (l for l in range(lams.size) if float(lams[l]) == 0.0):
            first, last = res["mean_bc"][m, l, 0], res["mean_bc"][m, l, -1]
            ok = bool(first > 0 and last >= config["plateau_fraction"] * first)
            text = (f"BC mean sub-optimality {first:.3g} at N={Ns[0]}, {last:.3g} at N={Ns[-1]} "
                    f"(plateau: >= {config['plateau_fraction']:g} x the first)")
            reported.append((model, "BC plateaus at lam=0", ok, text))
    res["asserted"] = [{"claim": a, "ok": bool(b), "text": t} for a, b, t in asserted]
    res["reported"] = [{"rewards": m, "claim": a, "ok": bool(b), "text": t}
                       for m, a, b, t in reported]
    return res


_WHY = {
    "deterministic": (
        "plain VI never prefers unseen pairs (Q = -inf there) and with deterministic rewards "
        "rhat = R exactly on every seen pair, so there is nothing to be pessimistic about "
        "except transitions"),
    "bernoulli": (
        "plain VI still never prefers unseen pairs, and on RiverSwim Bernoulli noise "
        "reaches one pair only: R(0, left) = 0.005 (the other rewards are 0 or 1, "
        "Bernoulli(1) = 1); swimming left forever (rhat / (1 - gamma)) would beat swimming "
        "right (V*(0) = 1.2) only if rhat(0, left) came near 0.12, 24 times its mean, so "
        "random rewards leave pessimism nothing to correct here either"),
}


def _model_summary(results, m: int) -> str:
    """Outcome of one data model: per lam, mean sub-optimality at the largest N and how
    many (N, dataset) pairs each method solves optimally."""
    n_cells = results["Ns"].size * int(results["n_seeds"])
    parts = []
    for l, lam in enumerate(results["lams"]):
        lcb = ", ".join(
            f"VI-LCB(c={c:g}) {results['mean_vi_lcb'][m, l, j, -1]:.3g} "
            f"[{int(results['optimal_vi_lcb'][m, l, j].sum())}/{n_cells} optimal]"
            for j, c in enumerate(results["cs"]))
        parts.append(
            f"lam={lam:g}: plain VI {results['mean_plain'][m, l, -1]:.3g} "
            f"[{int(results['optimal_plain'][m, l].sum())}/{n_cells} optimal], BC "
            f"{results['mean_bc'][m, l, -1]:.3g}, {lcb}")
    return (f"mean sub-optimality at N={results['Ns'][-1]} (J* = {results['J_star']:.3f}; in "
            "brackets: optimal policies over all N and datasets): " + "; ".join(parts))


def verdict(results) -> tuple[bool | None, str]:
    """Asserted sub-claims decide the exit code; per data model, the sign tests and the
    plateau are reported as reproduced or not reproduced in this toy, with the outcome's
    numbers and its explanation."""
    failed = [a for a in results["asserted"] if not a["ok"]]
    blocks = []
    for m, model in enumerate(results["reward_models"]):
        mine = [r for r in results["reported"] if r["rewards"] == model]
        parts = []
        not_rep = [r for r in mine if not r["ok"]]
        rep = [r for r in mine if r["ok"]]
        if not_rep:
            parts.append("not reproduced in this toy: " + "; ".join(
                f"{r['claim']} ({r['text']})" for r in not_rep))
        if rep:
            parts.append("reproduced: " + "; ".join(f"{r['claim']} ({r['text']})" for r in rep))
        parts.append(_model_summary(results, m))
        parts.append(f"why: {_WHY[model]}")
        blocks.append(f"[{model} rewards] " + ". ".join(parts))
    note = ("VI-LCB keeps pi_0 = action 0 (swim left, the distractor) wherever its pessimistic "
            "value never becomes positive, and it estimates rewards from fold 0 alone "
            "(m = N // (T+1) samples), which at small N can miss the rewarding pair")
    text = (" || ".join(blocks) + ". Asserted: "
            + "; ".join(a["text"] for a in results["asserted"]) + f". Note: {note}.")
    if failed:
        names = ", ".join(a["claim"] for a in failed)
        return False, f"NOT SUPPORTED (asserted {names} failed). {text}"
    return True, text


def plot(results):
    """One row per reward model, one panel per lam: mean sub-optimality against N (log x),
    with standard errors."""
    import matplotlib.pyplot as plt

    models, lams, Ns, cs = results["reward_models"], results["lams"], results["Ns"], results["cs"]
    fig, axes = plt.subplots(len(models), lams.size, figsize=(5.0 * lams.size, 4.2 * len(models)),
                             layout="constrained", sharey=True, squeeze=False)
    styles = [("C0", "o", "-", 7), ("C4", "D", ":", 4), ("C9", "v", "-", 3), ("C6", "P", ":", 3)]
    for m, model in enumerate(models):
        for l, ax in enumerate(axes[m]):
            for j, c in enumerate(cs):
                color, marker, ls, size = styles[j % 4]
                ax.errorbar(Ns, results["mean_vi_lcb"][m, l, j], yerr=results["se_vi_lcb"][m, l, j],
                            color=color, marker=marker, ms=size, ls=ls, label=f"VI-LCB, c = {c:g}")
            ax.errorbar(Ns, results["mean_plain"][m, l], yerr=results["se_plain"][m, l],
                        color=COLORS["plain"], marker="s", ls="--", label="plain model-based VI")
            ax.errorbar(Ns, results["mean_bc"][m, l], yerr=results["se_bc"][m, l],
                        color=COLORS["bc"], marker="^", ls="-.",
                        label="behaviour cloning (majority action)")
            ax.set(xscale="log", xlabel="N (transitions)",
                   title=f"{model} rewards, lam = {lams[l]:g}  (C* = {results['C_star'][l]:.3g})")
            ax.legend(fontsize=7, loc="center left")
        axes[m, 0].set_ylabel(f"E[J(pi*) - J(pi_hat)] from state 0  ({int(results['n_seeds'])} "
                              "datasets)")
    fig.suptitle(
        f"VI-LCB vs plain VI vs behaviour cloning on RiverSwim (S = {int(results['S'])}, "
        f"gamma = {results['gamma']:g}); the guarantee needs c >= 1/2, where VI-LCB "
        f"never updates here (c = {results['c_valid']:g}: max V_T = "
        f"{results['valid_V_max'].max():.3g})", fontsize=9)
    return fig
