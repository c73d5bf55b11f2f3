"""ROVER on a tree MDP (He et al. 2025): greedy over the uniform-policy Q is optimal; its softmax trades success for diversity.

Instance (spec sheet rover_random_policy_valuation.md, toy (a), as audited): V = 4 tokens,
depth D = 6 (4096 leaves), P prompts. Each prompt draws a residue c in {0..3} and three
distinct depth-3 "strategy" nodes of unequal density: under the dense one a leaf is correct
iff (a4 + a5 + a6) mod 4 = c (16 leaves), under the medium one iff a4 = c and
(a5 + a6) mod 4 = c (4 leaves), under the sparse one iff a4 = a5 = a6 = c (1 leaf): 21
correct leaves. Policies: ROVER's softmax ``pi_rho = softmax(Q_u / rho)`` for rho on a fixed
grid, and the greedy policy over Q_u (ties uniform, and ties drawn at random).

Claims checked by :func:`verdict`:
- Identities, asserted exactly on the instance: Q_u's recursion equals its closed form
  (sum of rewards under s.a over V**(D-t-1)) to 1e-12; the sign lemma
  (Q_u(s, a) > 0) == (Q*(s, a) = 1) with no violation; greedy over Q_u is optimal,
  V^{pi_g}(root) = V*(root) = 1 to 1e-12 for both tie rules (Theorem 3.1); and, outside the
  theorem's assumptions, greedy is sub-optimal on the graded-reward and the
  stochastic-transition counterexamples (0.5 < 1).
- Empirical (reported, not asserted). The rule, fixed in advance from the spec sheet's
  audit note (16 prompts: rho = 0.003: success 0.993, 1.2% of the correct mass outside the
  densest strategy; rho = 0.01: 0.71, 11%; rho = 0.1: success 0.11): "trade-off reproduced"
  iff, with means over prompts, rho = 0.003 has success >= 0.99 and a positive share
  outside, rho = 0.01 has success in [0.6, 0.8] and share >= 5%, and rho = 0.1 has
  success <= 0.2. The verdict prints the audit's numbers next to ours.

Planted errors (config key ``plant``), one per asserted identity: ``no_1_over_V`` (Q_u by
the sum recursion: the closed form fails, and the temperatures no longer mean the same, so
the trade-off rule fails too), ``q_star_by_mean`` (Q* by the mean recursion: the sign lemma
fails), ``tie_tol`` (greedy with a tie tolerance of 1, i.e. uniform: not optimal),
``greedy_over_q_star`` (the graded counterexample's greedy policy taken over Q* instead of
Q_u: it no longer fails).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "rover-tree"
CLAIM = Claim(
    name=NAME,
    statement=(
        "On a tree MDP with binary terminal reward, greedy over the uniform-policy Q is "
        "optimal (sign lemma: Q_u > 0 exactly where Q* = 1), but not with graded rewards or "
        "stochastic transitions; ROVER's softmax over Q_u trades success for mass on sparser "
        "correct strategies as the temperature rho grows."
    ),
    source=(
        "He, Ye, Cai, Hu, Jiao, Jiang, Pan (2025), Random Policy Valuation is Enough for LLM "
        "Reasoning with Verifiable Rewards, arXiv 2509.24981, Theorem 3.1 (statement verified); "
        "sign lemma and counterexamples derived; the softmax trade-off is the spec sheet's "
        "audited toy (no formal softmax guarantee verified)."
    ),
    kind="identity",
)

_BASE = {
    "n_vocab": 4,
    "depth": 6,
    "rhos": [0.001, 0.003, 0.01, 0.03, 0.1, 1.0, 10.0],
    "n_samples": 32,
    "plant": "none",
}
CONFIGS = {
    "smoke": {**_BASE, "n_prompts": 8},
    "quick": {**_BASE, "n_prompts": 16},
    "paper": {**_BASE, "n_prompts": 16},
}

PLANTS = ("none", "no_1_over_V", "q_star_by_mean", "tie_tol", "greedy_over_q_star")
EXACT_TOL = 1e-12
# The audit's numbers (spec sheet, toy (a)): rho -> (success, share outside the densest
# strategy), None where the audit gives none; and the rule fixed from them in advance:
# rho -> ((success low, success high), share low, share strictly positive).
AUDIT = {0.003: (0.993, 0.012), 0.01: (0.71, 0.11), 0.1: (0.11, None)}
RULE = {0.003: ((0.99, 1.0), 0.0, True), 0.01: ((0.6, 0.8), 0.05, False),
        0.1: ((0.0, 0.2), 0.0, False)}


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    if config["n_vocab"] != 4 or config["depth"] != 6:
        raise ValueError("the audited instance needs n_vocab = 4 and depth = 6, got "
                         f"n_vocab={config['n_vocab']}, depth={config['depth']}")
    rhos = config["rhos"]
    if len(rhos) < 2 or any(not isinstance(r, (int, float)) or r <= 0 for r in rhos) \
            or sorted(rhos) != list(rhos):
        raise ValueError(f"rhos must be at least 2 increasing positive numbers, got {rhos}")
    missing = [r for r in RULE if r not in rhos]
    if missing:
        raise ValueError(f"rhos must contain the rule's temperatures {sorted(RULE)}; "
                         f"missing {missing}")
    for key in ("n_prompts", "n_samples"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {config[key]!r}")
    if config["plant"] not in PLANTS:
        raise ValueError(f"plant must be one of {PLANTS}, got {config['plant']!r}")


def strategy_tree(n_prompts: int, seed):
    """The instance: a TreeMDP and the strategy label of every leaf.

    Returns
    -------
    tree : TreeMDP
    label : numpy.ndarray, int64, (n_prompts, 4096)
        0 wrong, 1 dense (16 leaves), 2 medium (4), 3 sparse (1).
    """
    from proofs_check.seeding import as_generator
    from tabular.tree import TreeMDP

    rng = as_generator(seed)
    suffix = np.array(np.unravel_index(np.arange(64), (4, 4, 4))).T  # (64, 3): a4, a5, a6
    label = np.zeros((n_prompts, 4**6), dtype=np.int64)
    for x in range(n_prompts):
        c = rng.integers(4)
        nodes = rng.choice(64, size=3, replace=False)
        rules = ((suffix.sum(axis=1) % 4 == c),
                 (suffix[:, 0] == c) & ((suffix[:, 1] + suffix[:, 2]) % 4 == c),
                 (suffix == c).all(axis=1))
        for k, (node, rule) in enumerate(zip(nodes, rules)):
            label[x, node * 64 + np.flatnonzero(rule)] = k + 1
    return TreeMDP(label > 0, n_vocab=4, depth=6), label


def _distinct(p: np.ndarray, correct: np.ndarray, n: int) -> np.ndarray:
    """Expected number of distinct correct leaves in n samples, per prompt."""
    return (correct * (1.0 - (1.0 - p) ** n)).sum(axis=1)


def run_one(config, seed) -> dict:
    """Exact Q tables, the identities, and success/diversity of pi_rho on the rho grid."""
    from proofs_check.seeding import as_generator
    from tabular.rlvr.rover import (
        graded_reward_counterexample, greedy_policy, rover_policy, sign_lemma_violations,
        stochastic_transition_counterexample, uniform_q_closed_form,
    )
    from tabular.tree import evaluate, leaf_probs, optimal_q, uniform_q

    validate_config(config)
    plant = config["plant"]
    rng = as_generator(seed)
    tree, label = strategy_tree(config["n_prompts"], rng)
    Q_u = uniform_q(tree).Q
    if plant == "no_1_over_V":
        Q_u = Q_u.copy()
        for t in range(tree.depth):
            Q_u[:, tree.level(t)] *= tree.n_vocab ** (tree.depth - 1 - t)
    closed_error = float(np.abs(Q_u - uniform_q_closed_form(tree)).max())
    Q_star = Q_u if plant == "q_star_by_mean" else optimal_q(tree).Q
    violations = int(sign_lemma_violations(tree, Q_u=Q_u, Q_star=Q_star).sum())
    V_star = optimal_q(tree).root
    tol = 1.0 if plant == "tie_tol" else 1e-12
    V_greedy = evaluate(tree, greedy_policy(tree, Q_u, tol=tol)).root
    V_greedy_random = evaluate(tree, greedy_policy(tree, Q_u, tol=tol, seed=rng)).root

    correct = label > 0
    outside = label > 1

    def stats(pi):
        p = leaf_probs(tree, pi)
        mass = (p * correct).sum(axis=1)
        share = np.divide((p * outside).sum(axis=1), mass, out=np.zeros_like(mass),
                          where=mass > 0)
        return mass, share, _distinct(p, correct, config["n_samples"])

    rows = [stats(rover_policy(tree, rho, Q_u)) for rho in config["rhos"]]
    greedy_stats = stats(greedy_policy(tree, Q_u, tol=tol))
    graded = graded_reward_counterexample()
    graded_Q = optimal_q(graded).Q if plant == "greedy_over_q_star" else uniform_q(graded).Q
    stochastic = stochastic_transition_counterexample()
    return {
        "closed_form_error": np.float64(closed_error),
        "sign_violations": np.int64(violations),
        "V_star": V_star, "V_greedy": V_greedy, "V_greedy_random": V_greedy_random,
        "success": np.array([r[0] for r in rows]),  # (n_rhos, n_prompts)
        "share_outside": np.array([r[1] for r in rows]),
        "distinct": np.array([r[2] for r in rows]),
        "greedy_success": greedy_stats[0], "greedy_share": greedy_stats[1],
        "greedy_distinct": greedy_stats[2],
        "graded_V_greedy": np.float64(evaluate(graded, greedy_policy(graded, graded_Q)).root[0]),
        "graded_V_star": np.float64(optimal_q(graded).root[0]),
        "stochastic_V_greedy": np.float64(stochastic.V_greedy),
        "stochastic_V_star": np.float64(stochastic.V_star),
        "root_gap": np.sort(uniform_q(tree).Q[:, 0], axis=-1)[:, -2:] @ np.array([-1.0, 1.0]),
    }


def aggregate(runs_out, config) -> dict:
    """Prompt means of the sweep and every sub-claim's verdict."""
    run = runs_out[0]
    rhos = np.array(config["rhos"], dtype=float)
    res = {"rhos": rhos, "n_prompts": config["n_prompts"], "n_samples": config["n_samples"],
           "plant": config["plant"]}
    for key in ("success", "share_outside", "distinct"):
        res[key] = run[key].mean(axis=1)
    for key in ("greedy_success", "greedy_share", "greedy_distinct"):
        res[key] = float(run[key].mean())
    for key in ("graded_V_greedy", "graded_V_star", "stochastic_V_greedy", "stochastic_V_star"):
        res[key] = float(run[key])
    res["root_gap_range"] = np.array([run["root_gap"].min(), run["root_gap"].max()])
    claims = []
    err = float(run["closed_form_error"])
    claims.append(("Q_u closed form", err < EXACT_TOL,
                   f"max |recursion - closed form| = {err:.2g} (tolerance {EXACT_TOL:g})"))
    n_bad = int(run["sign_violations"])
    claims.append(("sign lemma", n_bad == 0, f"{n_bad} violating (s, a) pairs"))
    gap = max(np.abs(run["V_greedy"] - run["V_star"]).max(),
              np.abs(run["V_greedy_random"] - run["V_star"]).max())
    ok = bool(gap < EXACT_TOL and np.all(run["V_star"] == 1.0))
    claims.append(("greedy optimal", ok, (f"max |V^pi_g - V*| = {gap:.2g} over prompts and both "
                   f"tie rules; V* = {run['V_star'].min():g}")))
    for name in ("graded", "stochastic"):
        vg, vs = res[f"{name}_V_greedy"], res[f"{name}_V_star"]
        claims.append((f"{name} counterexample", vg < vs - 0.4,
                       f"V^pi_g = {vg:g} < V* = {vs:g}"))
    res["claims"] = [{"claim": c, "ok": bool(o), "text": t} for c, o, t in claims]
    res["tradeoff_checks"] = _tradeoff_checks(res)
    res["tradeoff"] = all(c["ok"] for c in res["tradeoff_checks"])
    return res


def _tradeoff_checks(res) -> list:
    """The rule fixed from the audit, per rule temperature: {rho, ok, text (ours vs audit)}."""
    rhos = list(res["rhos"])
    checks = []
    for rho, ((lo, hi), share_min, positive) in RULE.items():
        i = rhos.index(rho)
        succ, share = float(res["success"][i]), float(res["share_outside"][i])
        ok = lo <= succ <= hi and share >= share_min and (share > 0 or not positive)
        audit_succ, audit_share = AUDIT[rho]
        audit = f"{audit_succ:g}" + ("" if audit_share is None else f"/{100 * audit_share:g}%")
        want = f"success in [{lo:g}, {hi:g}]"
        if share_min > 0:
            want += f", share >= {100 * share_min:g}%"
        elif positive:
            want += ", share > 0"
        checks.append({"rho": rho, "ok": bool(ok),
                       "text": f"rho={rho:g}: ours {succ:.3f}/{100 * share:.1f}%, audit {audit} "
                               f"(rule: {want})"})
    return checks


def _tradeoff_text(results) -> str:
    rhos, succ, share = results["rhos"], results["success"], results["share_outside"]
    head = "reproduced" if results["tradeoff"] else "not reproduced in this toy"
    rule = "; ".join(c["text"] + ("" if c["ok"] else " FAILS")
                     for c in results["tradeoff_checks"])
    cells = ", ".join(f"rho={r:g}: {s:.3f}/{100 * f:.1f}%" for r, s, f in zip(rhos, succ, share))
    return (f"trade-off {head} (success/share of correct mass outside the densest strategy, "
            f"means over {results['n_prompts']} prompts): {rule}. All temperatures: {cells}; "
            f"greedy {results['greedy_success']:.3f}/{100 * results['greedy_share']:.1f}%")


def verdict(results) -> tuple[bool | None, str]:
    """Every identity must hold; the trade-off is reported (empirical)."""
    claims = results["claims"]
    failed = [c for c in claims if not c["ok"]]
    summary = "; ".join(f"{c['claim']}: {c['text']}" for c in claims)
    tail = _tradeoff_text(results)
    if failed:
        names = ", ".join(c["claim"] for c in failed)
        return False, f"NOT SUPPORTED ({names} failed). {summary}. {tail}"
    return True, f"SUPPORTED (all {len(claims)} identities hold). {summary}. {tail}"


def plot(results):
    """Success, share outside the densest strategy and distinct correct leaves against rho."""
    import matplotlib.pyplot as plt

    rhos = results["rhos"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8), layout="constrained")
    panels = (("success", "greedy_success", "success V^pi(root) (mean over prompts)"),
              ("share_outside", "greedy_share", "share of correct mass outside densest strategy"),
              ("distinct", "greedy_distinct",
               f"E[distinct correct leaves in {results['n_samples']} samples]"))
    for ax, (key, ref, ylabel) in zip(axes, panels):
        ax.plot(rhos, results[key], "o-", color="C0", label="softmax(Q_u / rho)")
        ax.axhline(results[ref], color="C1", ls="--", label="greedy over Q_u (ties uniform)")
        ax.set(xscale="log", xlabel="temperature rho", ylabel=ylabel)
        ax.legend(fontsize=8)
    lo, hi = results["root_gap_range"]
    axes[0].set_title(f"root Q_u gaps {lo:.1e} to {hi:.1e}", fontsize=9)
    lines = [f"{c['claim']}: {'holds' if c['ok'] else 'FAILS'} ({c['text']})"
             for c in results["claims"]]
    axes[0].text(0.22, 0.88, "\n".join(lines), transform=axes[0].transAxes, va="top",
                 fontsize=5.5)
    fig.suptitle(f"ROVER on a V=4, D=6 tree, {results['n_prompts']} prompts, strategies of "
                 "16/4/1 correct leaves (He et al. 2025)", fontsize=10)
    return fig
