"""Zhou et al. (ICLR 2024) and Ghugare et al. (ICLR 2024): trajectory stitching on a tabular graph; RCSL fails, MBRCSL and value-based planning succeed.

Instance (fixed in advance; :func:`tabular.mixed_data.stitching_mdp`): deterministic,
horizon 2, start A. The data (``N`` trajectories, each from A or D with probability 1/2)
hold A->B->C (return 0.5) and D->B->E (return 1), never A->B->E (return 1.5, the optimum).

Learners, all tabular:
- RCSL, clipped: ``pi(a | s, return-to-go)`` counted from the data, acting with rule
  ``"clip"`` of :func:`tabular.mixed_data.rcsl_action_probabilities`: start target inf,
  lowered at every state to the largest return-to-go seen there, then reduced by each
  reward received; the action is that of the nearest seen return-to-go. This is our
  per-state extension of the in-support ("return coverage") conditioning analysed by
  Brandfonbrener et al. (2022); the papers do not fix a tabular acting rule.
- RCSL, unclipped: the same fit acting with rule ``"nearest"`` (no clipping, start target
  inf, the nearest seen return-to-go at each state: our stand-in for a learned policy's
  extrapolation to unseen targets).
- MBRCSL: ``n_rollouts`` rollouts of the cloned behaviour in the empirical model, those
  beating the largest dataset return (plus ``threshold_offset``, 0 by default) kept, RCSL
  on them (:func:`tabular.mixed_data.mbrcsl`), acting with the clipped rule.
- Value-based: plain model-based value iteration on the empirical model
  (:func:`tabular.offline.model_based_vi`).
Success: reaching E from A. Each seed draws a fresh dataset, computes each learner's exact
success probability, and one evaluation episode (a Bernoulli draw of it) per learner.

Claims:
- Empirical (sheets [5][6], decision rule fixed in advance): clipped RCSL's success rate
  has a Clopper-Pearson upper bound below 0.1, MBRCSL's and value iteration's lower bounds
  are above 0.9 (two-sided level 1e-3, Bonferroni over the four learners' intervals).
- Asserted (exact properties of the tabular learners; exit 1 if violated): clipped RCSL's
  success probability is 0 whenever the data contain trajectories from A (they all go
  A->B->C, so the clipped target at B is 0); unclipped RCSL's is 1 whenever the data
  contain both A->B and B->E (target inf at B: the nearest seen return-to-go is 1, towards
  E); value iteration's is 1 whenever the data contain B->E; MBRCSL's is 1 whenever its
  model rollouts contain A->B->E.
- Finding, reported in the verdict: RCSL's failure to stitch here is a property of the
  clipped acting rule; unclipped nearest-return RCSL stitches on this graph.
Pitfall (sheet [5][6]): tabular value-based methods stitch trivially. The papers' point
concerns function approximation (Q-learning with a realisable but not Bellman-complete
class can fail, RCSL needs no completeness) and outcome-conditioned policies; this toy
shows only the conditioning side.
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "stitching"
CLAIM = Claim(
    name=NAME,
    statement=(
        "On a tabular stitching graph whose data hold A->B->C and D->B->E but never the "
        "optimal A->B->E, return-conditioned supervised learning (RCSL) acting with its "
        "target clipped to the largest return-to-go seen at each state never reaches E from "
        "A, while model-based RCSL (MBRCSL, same rule) and value iteration on the empirical "
        "model do; unclipped RCSL (nearest seen return-to-go, target inf) does reach E, so "
        "the failure belongs to the clipped rule."
    ),
    source=(
        "Zhou, Zhu, Zhou, Cui, Gupta, Du (2024), Free from Bellman Completeness: Trajectory "
        "Stitching via Model-based Return-conditioned Supervised Learning, ICLR; Ghugare, "
        "Geist, Berseth, Eysenbach (2024), Closing the Gap between TD Learning and Supervised "
        "Learning, ICLR (stitching qualitative; the instance is the spec sheet's, rewards ours; "
        "both tabular acting rules are ours, the clipped one extending the return coverage "
        "of Brandfonbrener, Bietti, Buckman, Laroche, Bruna (2022), NeurIPS)."
    ),
    kind="empirical",
)

_BASE = {
    "N": 20,
    "share_from_A": 0.5,
    "n_rollouts": 100,
    "threshold_offset": 0.0,  # 1.0 plants an error: no rollout is ever kept
    "level": 1e-3,
}
CONFIGS = {
    "smoke": {**_BASE, "n_runs": 100},
    "quick": {**_BASE, "n_runs": 1000},
    "paper": {**_BASE, "n_runs": 5000},
}
AGGREGATE_KEYS = ("level",)
LEARNERS = ("rcsl", "rcsl_nearest", "mbrcsl", "vi")
LABELS = {"rcsl": "RCSL (clipped target)", "rcsl_nearest": "RCSL (unclipped, nearest return)",
          "mbrcsl": "MBRCSL (clipped target)", "vi": "value iteration (empirical model)"}
COLORS = {"rcsl": "C1", "rcsl_nearest": "C4", "mbrcsl": "C0", "vi": "C2"}
RCSL_UPPER, SUCCESS_LOWER = 0.1, 0.9


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key in ("N", "n_rollouts", "n_runs"):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{key} must be a positive int, got {value!r}")
    if not 0 < config["share_from_A"] < 1:
        raise ValueError(f"share_from_A must lie in (0, 1), got {config['share_from_A']}")
    if not 0 < config["level"] < 1:
        raise ValueError(f"level must be in (0, 1), got {config['level']}")


def runs(config) -> list[dict]:
    """``n_runs`` identical runs: one dataset and one evaluation per learner each."""
    validate_config(config)
    return [{} for _ in range(config["n_runs"])]


def _final_state(mdp, pi) -> np.ndarray:
    """Distribution of ``s_H`` under a (per-step) policy: the last step's occupancy pushed through P."""
    from tabular.planning import occupancy

    d_last = occupancy(mdp, pi)[mdp.H - 1]
    return np.einsum("sa,sat->t", d_last, mdp.P_h(mdp.H - 1))


def run_one(config, seed) -> dict:
    """One dataset; each learner's exact success probability and one evaluation draw.

    Returns
    -------
    dict
        ``p_{learner}`` float, ``success_{learner}`` bool; ``seen_BE`` (the data contain
        B->E), ``rollout_ABE`` (MBRCSL's rollouts contain A->B->E), ``n_kept``, ``n_from_A``.
    """
    from proofs_check.seeding import as_generator
    from tabular.mixed_data import (
        STITCH_STATES,
        evaluate_rcsl,
        fit_rcsl,
        mbrcsl,
        stitching_dataset,
        stitching_mdp,
        trajectory_returns,
    )
    from tabular.offline import model_based_vi
    from tabular.sampling import episodes_to_transitions

    rng = as_generator(seed)
    mdp = stitching_mdp()
    S, A = mdp.S, mdp.A
    A_, B, E = STITCH_STATES["A"], STITCH_STATES["B"], STITCH_STATES["E"]
    ep = stitching_dataset(config["N"], share_from_A=config["share_from_A"], seed=rng)
    threshold = float(trajectory_returns(ep).max()) + config["threshold_offset"]
    mb = mbrcsl(ep, S, A, config["n_rollouts"], threshold=threshold, seed=rng)
    vi = model_based_vi(episodes_to_transitions(ep, S, A, per_step=True))
    rcsl = fit_rcsl(ep, S, A)
    p = {
        "rcsl": evaluate_rcsl(mdp, rcsl, rule="clip").final_state[E],
        "rcsl_nearest": evaluate_rcsl(mdp, rcsl, np.inf, rule="nearest").final_state[E],
        "mbrcsl": evaluate_rcsl(mdp, mb.policy, rule="clip").final_state[E],
        "vi": _final_state(mdp, vi.pi)[E],
    }
    out = {f"p_{k}": np.float64(v) for k, v in p.items()}
    out.update({f"success_{k}": np.bool_(rng.random() < v) for k, v in p.items()})
    out["seen_BE"] = np.bool_(np.any((ep.states[:, 1] == B) & (ep.actions[:, 1] == 1)))
    path = mb.rollouts.states
    out["rollout_ABE"] = np.bool_(np.any((path[:, 0] == A_) & (path[:, 1] == B) & (path[:, 2] == E)))
    out["n_kept"] = np.int64(mb.kept.sum())
    out["n_from_A"] = np.int64(np.sum(ep.states[:, 0] == A_))
    return out


def aggregate(runs_out, config) -> dict:
    """Success counts with Clopper-Pearson intervals, and the exact per-seed checks."""
    from proofs_check.stats import clopper_pearson

    level = config["level"]
    n = len(runs_out)
    col = {key: np.array([r[key] for r in runs_out]) for key in runs_out[0]}
    res = {"n_runs": n, "level": level, "N": config["N"], "n_rollouts": config["n_rollouts"],
           "threshold_offset": config["threshold_offset"]}
    for k in LEARNERS:
        successes = int(col[f"success_{k}"].sum())
        lo, hi = clopper_pearson(successes, n, level / len(LEARNERS))
        res[f"successes_{k}"], res[f"lo_{k}"], res[f"hi_{k}"] = successes, float(lo), float(hi)
        res[f"p_mean_{k}"] = float(col[f"p_{k}"].mean())
    res["reproduced"] = bool(res["hi_rcsl"] < RCSL_UPPER and res["lo_mbrcsl"] > SUCCESS_LOWER
                             and res["lo_vi"] > SUCCESS_LOWER)
    from_A = col["n_from_A"] > 0
    checks = [
        ("clipped RCSL reaches E w.p. 0 when the data contain A", from_A, col["p_rcsl"] == 0.0),
        ("unclipped RCSL reaches E w.p. 1 when the data contain A->B and B->E",
         from_A & col["seen_BE"], col["p_rcsl_nearest"] == 1.0),
        ("value iteration reaches E w.p. 1 when the data contain B->E", col["seen_BE"],
         col["p_vi"] == 1.0),
        ("MBRCSL reaches E w.p. 1 when its rollouts contain A->B->E", col["rollout_ABE"],
         col["p_mbrcsl"] == 1.0),
    ]
    res["checks"] = [{"claim": name, "n": int(cond.sum()), "violations": int(np.sum(cond & ~ok))}
                     for name, cond, ok in checks]
    res["mean_kept"] = float(col["n_kept"].mean())
    return res


def verdict(results) -> tuple[bool | None, str]:
    """Empirical verdict on the success rates plus the exact per-seed checks."""
    n, level = results["n_runs"], results["level"]
    rates = "; ".join(
        f"{LABELS[k]} {results[f'successes_{k}']}/{n} [{results[f'lo_{k}']:.3f}, "
        f"{results[f'hi_{k}']:.3f}] (mean exact probability {results[f'p_mean_{k}']:.3f})"
        for k in LEARNERS)
    m = len(LEARNERS)
    numbers = (f"success from A to E over {n} seeds, Clopper-Pearson two-sided at "
               f"{level:g}/{m}: {rates}. Rule: clipped RCSL upper < {RCSL_UPPER}, MBRCSL and "
               f"value iteration lower > {SUCCESS_LOWER}. MBRCSL kept "
               f"{results['mean_kept']:.1f} of {results['n_rollouts']} rollouts on average.")
    if results["lo_rcsl_nearest"] > SUCCESS_LOWER:
        finding = ("Finding: unclipped RCSL (nearest seen return-to-go, target inf) stitches "
                   "on this graph (lower bound above "
                   f"{SUCCESS_LOWER}), so RCSL's failure here belongs to the clipped acting "
                   "rule, not to return conditioning as such.")
    else:
        finding = ("Finding: unclipped RCSL (nearest seen return-to-go, target inf) does not "
                   f"clearly stitch here either (lower bound {results['lo_rcsl_nearest']:.3f}).")
    checks = "; ".join(f"{c['claim']}: {c['n'] - c['violations']}/{c['n']} seeds"
                       for c in results["checks"])
    caveat = ("Tabular value iteration stitches trivially; the papers' point concerns "
              "function approximation (Bellman completeness) and outcome conditioning, "
              "which this toy does not test.")
    failed = [c["claim"] for c in results["checks"] if c["violations"]]
    if failed:
        return False, f"NOT SUPPORTED (asserted: {', '.join(failed)} failed). {checks}. {numbers}"
    head = "reproduced" if results["reproduced"] else "not reproduced in this toy"
    return True, f"{head}: {numbers} {finding} Asserted, exact: {checks}. {caveat}"


def plot(results):
    """Success rates from A to E with Clopper-Pearson intervals, and the stitching graph."""
    import matplotlib.pyplot as plt

    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11.5, 4.4), layout="constrained",
                                  gridspec_kw={"width_ratios": [1.3, 1]})
    n = results["n_runs"]
    for i, k in enumerate(LEARNERS):
        rate = results[f"successes_{k}"] / n
        err = [[rate - results[f"lo_{k}"]], [results[f"hi_{k}"] - rate]]
        ax.bar(i, rate, color=COLORS[k], alpha=0.8)
        ax.errorbar(i, rate, yerr=err, color="k", capsize=6)
        ax.text(i, results[f"hi_{k}"] + 0.02, f"{results[f'successes_{k}']}/{n}", ha="center")
    ticks = {"rcsl": "RCSL\nclipped target", "rcsl_nearest": "RCSL\nunclipped (nearest)",
             "mbrcsl": "MBRCSL\nclipped target", "vi": "value iteration\n(empirical model)"}
    ax.set_xticks(range(len(LEARNERS)), [ticks[k] for k in LEARNERS], fontsize=9)
    ax.set(ylim=(0, 1.1), ylabel="success rate from A to E",
           title=f"{n} seeds, N = {results['N']} trajectories each\n(Clopper-Pearson, "
                 f"two-sided {results['level']:g}/{len(LEARNERS)})")
    pos = {"A": (0, 1), "D": (0, -1), "B": (1, 0), "C": (2, 1), "E": (2, -1)}
    edges = [("A", "B", "0.5", "C0"), ("B", "C", "0", "C0"), ("D", "B", "0", "C3"),
             ("B", "E", "1", "C3")]
    for u, v, r, c in edges:
        ax2.annotate("", xy=pos[v], xytext=pos[u],
                     arrowprops={"arrowstyle": "->", "color": c, "lw": 2, "shrinkA": 12,
                                 "shrinkB": 12})
        mid = np.add(pos[u], pos[v]) / 2
        ax2.text(mid[0], mid[1] + 0.12, f"r={r}", ha="center", fontsize=9)
    for name, (x, y) in pos.items():
        ax2.text(x, y, name, ha="center", va="center", fontsize=13,
                 bbox={"boxstyle": "circle", "fc": "w", "ec": "k"})
    ax2.text(1, -1.6, "data: A->B->C (0.5), D->B->E (1)\noptimum from A: A->B->E (1.5), "
             "never in the data", ha="center", fontsize=9)
    ax2.set(xlim=(-0.5, 2.5), ylim=(-2, 1.5), title="the stitching graph (start A)")
    ax2.axis("off")
    fig.suptitle("Trajectory stitching: RCSL vs MBRCSL vs value iteration "
                 "(Zhou et al. 2024; Ghugare et al. 2024)", fontsize=10)
    return fig
