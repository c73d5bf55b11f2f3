"""pass@k, support and entropy of a base policy and of regularised RLVR policies, exactly, on the reasoning-boundary tree (Yue et al. 2025; Wu et al. 2025; Li et al. 2025).

Instance (spec sheet ``passk_reasoning_boundary.md``, fixed by ``instance_seed``): a tree
with ``V`` tokens and depth ``D``, ``P`` prompts, logits ``z[x][s] = z_shared[s] + c
z_prompt[x][s]`` (``z_shared ~ N(0, 2^2)``, ``z_prompt ~ N(0, 1)`` frozen, ``c = 0.3``). Correct
leaves: a popular family (the leaves under the depth-3 node whose prompt-averaged base reach
is closest to 0.1), correct for 45/64 of the prompts, plus 1-3 private leaves per prompt with
base probability in (2e-3, 2e-2); and one correct leaf per prompt under a masked token
(logit -inf in the base: the exact leash). Answer map for H_ans: the last token.

Policies: the base ``q``; the exact per-prompt maximisers of ``E[r] - coef D(pi || q)`` for
reverse KL (closed form), forward KL and JS (1-d roots, :mod:`tabular.rlvr.divergences`),
over all leaf distributions on ``supp(q)``; and four policies trained in the SHARED class
(``z_shared`` only, ``z_prompt`` frozen) by exact gradient ascent on the population limit of
GRPO (n -> inf: ``dz = (lr/D) mean_x [grad p_x / sqrt(p_x(1-p_x)) - coef grad D_x]``, lr 0.3,
300 steps, coefficients of the DPH sheet: reverse KL 0.05, forward KL 0.03, JS 0.1, and none),
with the sequence-level divergences to ``q`` (the token-mean surrogates of the papers equal
them in expectation only for KL).

Asserted (identities and theorems, exact): per-prompt optima are stationary points of their
objective (``r - coef f'(pi/q)`` constant on supp q, to 1e-9 of its scale; this is what makes
pi/q constant on each reward level, so proportions within C are kept), are > 0 on all of
supp q (no underflow at these coefficients), raise every p_x and hence pass@k at every k
(single-prompt dominance), roots accurate to 1e-12; trained policies keep masked leaves at
exactly 0 (pass@inf never grows); exact pass@k is non-decreasing and concave in k; the
estimator ``1 - C(n-c,k)/C(n,k)`` has expectation exactly pass@k (1e-10, by summing over
the binomial law of c); H_ans <= H_seq and H_tok D = H_seq; a crossing of mean pass@k
curves comes with prompts where p_RL < p_base. (Zero mass on masked leaves and pi/q
constant per class hold by construction of the optima, pi = q * ratio(gap), and are not
asserted separately.)
Empirical (reported, not asserted): the sampled estimator's mean over the prompts against
the exact curve (z-scores, normal approximation); Yue's crossing (RL above the base at
k = 1, below at k = k_max) for the unregularised policy; DPH's claim that mass-covering
divergences (forward KL, JS) keep pass@k_max above reverse KL and none; the Invisible
Leash's |S| > |E|; token entropy rising while answer entropy falls.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from proofs_check.claims import Claim, asserted_verdict

NAME = "passk-exact"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Exact per-prompt optima of E[r] - coef D(pi || q) for reverse KL, forward KL and JS "
        "are stationary (r - coef f'(pi/q) constant on supp q), stay > 0 on supp q and raise "
        "pass@k at every k; masked leaves stay at 0 under training; the unbiased pass@k "
        "estimator is exact in expectation. Reported: the sampled estimator, the pass@k "
        "crossing, DPH's divergence ranking, support shrinkage and entropies in a "
        "shared-parameter tree."
    ),
    source=(
        "Yue et al. (2025) arXiv 2504.13837 (pass@k crossing); Wu et al. (2025) arXiv "
        "2507.14843 v1 (support, NSCR denominator not verified); Li et al. (2025) arXiv "
        "2509.07430 (DPH-RL divergences); Chen et al. (2021) arXiv 2107.03374 sec. 2.1 "
        "(estimator); optima and identities derived (project spec sheets)."
    ),
    kind="identity",
)

METHODS = ("none", "reverse_kl", "forward_kl", "js")
OPTIMA = ("reverse_kl", "forward_kl", "js")

_BASE = {
    "V": 4, "D": 6, "P": 64, "c": 0.3, "shared_scale": 2.0, "prompt_scale": 1.0,
    "family_depth": 3, "family_reach": 0.1, "family_share": 45 / 64,
    "private_lo": 2e-3, "private_hi": 2e-2, "private_max": 3, "masked": True,
    "instance_seed": 0,
    "lr": 0.3, "steps": 300, "checkpoints": [0, 100, 300],
    "coef_reverse_kl": 0.05, "coef_forward_kl": 0.03, "coef_js": 0.1,
    "optimum_coefs": [0.03, 0.1, 0.3, 1.0],
    "k_max": 1024, "epsilons": [1e-2, 1e-3],
    "n_samples": 256, "estimator": "unbiased", "level": 1e-3,
    "optimum_solve_scale": 1.0,  # != 1: planted error, optima solved at coef * scale
}
CONFIGS = {
    "smoke": {**_BASE, "D": 4, "P": 16, "steps": 60, "checkpoints": [0, 20, 60], "n_samples": 64},
    "quick": {**_BASE, "D": 5},
    "paper": {**_BASE},
}
AGGREGATE_KEYS = ("level",)

TOL_EXACT = 1e-9  # identities on float64 sums of up to 4096 leaves
TOL_UNBIASED = 1e-10
_INSTANCE_KEYS = ("V", "D", "P", "c", "shared_scale", "prompt_scale", "family_depth",
                  "family_reach", "family_share", "private_lo", "private_hi", "private_max",
                  "masked", "instance_seed")


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key, low in (("V", 2), ("D", 4), ("P", 1), ("steps", 1), ("n_samples", 1), ("k_max", 2)):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {config[key]!r}")
    k_max = config["k_max"]
    if k_max & (k_max - 1):
        raise ValueError(f"k_max must be a power of 2 (pass@k is shown at k = 1, 2, 4, ..., "
                         f"k_max), got {k_max}")
    if not 1 <= config["family_depth"] < config["D"]:
        raise ValueError(f"family_depth must lie in [1, D), got {config['family_depth']}")
    if sorted(config["checkpoints"]) != config["checkpoints"] or config["checkpoints"][-1] != config["steps"]:
        raise ValueError(f"checkpoints must be increasing and end at steps = {config['steps']}, "
                         f"got {config['checkpoints']}")
    if config["estimator"] not in ("unbiased", "plug_in"):
        raise ValueError(f"estimator must be 'unbiased' or 'plug_in' (a planted error), got "
                         f"{config['estimator']!r}")
    for key in ("coef_reverse_kl", "coef_forward_kl", "coef_js", "lr", "c", "optimum_solve_scale"):
        if not config[key] > 0:
            raise ValueError(f"{key} must be positive, got {config[key]!r}")
    if not 0 < config["private_lo"] < config["private_hi"] < 1:
        raise ValueError("need 0 < private_lo < private_hi < 1")


def runs(config) -> list[dict]:
    """One run for the exact per-prompt optima and the estimator, one per trained method."""
    validate_config(config)
    return [{"method": "optima"}] + [{"method": m} for m in METHODS]


def build_instance(config):
    """The tree, the base policy (a TreePolicy) and the masked correct leaves ``(P,)``.

    Built once per process and instance keys (the tree is immutable; the policy's arrays and
    ``masked`` are fresh copies at every call).
    """
    from tabular.tree import TreePolicy

    tree, z_shared, z_prompt, c, masked = _build_instance(tuple(config[k] for k in _INSTANCE_KEYS))
    return tree, TreePolicy(z_shared.copy(), z_prompt.copy(), c), masked.copy()


@lru_cache(maxsize=4)
def _build_instance(key):
    from tabular.tree import TreeMDP, TreePolicy, leaf_probs

    config = dict(zip(_INSTANCE_KEYS, key))
    V, D, P = config["V"], config["D"], config["P"]
    rng = np.random.default_rng(config["instance_seed"])
    n_nodes = (V**D - 1) // (V - 1)
    z_shared = config["shared_scale"] * rng.standard_normal((n_nodes, V))
    z_prompt = config["prompt_scale"] * rng.standard_normal((P, n_nodes, V))
    masked = np.full(P, -1)
    if config["masked"]:  # one leaf per prompt behind a -inf logit at its last decision
        masked = rng.integers(V**D, size=P)
        for x, y in enumerate(masked):
            parent = (V ** (D - 1) - 1) // (V - 1) + y // V
            z_prompt[x, parent, y % V] = -np.inf
    policy = TreePolicy(z_shared, z_prompt, config["c"])
    blank = TreeMDP(np.zeros((P, V**D)), n_vocab=V, depth=D)
    q = leaf_probs(blank, policy.pi(blank))
    t = config["family_depth"]
    reach = q.reshape(P, V**t, V ** (D - t)).sum(axis=2).mean(axis=0)
    node = int(np.argmin(np.abs(reach - config["family_reach"])))
    family = np.zeros(V**D, dtype=bool)
    family[node * V ** (D - t):(node + 1) * V ** (D - t)] = True
    R = np.zeros((P, V**D))
    with_family = rng.permutation(P)[:round(config["family_share"] * P)]
    R[np.ix_(with_family, np.flatnonzero(family))] = 1.0
    for x in range(P):
        pool = np.flatnonzero(~family & (q[x] > config["private_lo"]) & (q[x] < config["private_hi"]))
        k = min(int(rng.integers(1, config["private_max"] + 1)), pool.size)
        R[x, rng.choice(pool, k, replace=False)] = 1.0
        if masked[x] >= 0:
            R[x, masked[x]] = 1.0
    for arr in (z_shared, z_prompt, masked):  # shared by every call: callers get copies
        arr.flags.writeable = False
    return TreeMDP(R, n_vocab=V, depth=D), z_shared, z_prompt, config["c"], masked


def _accuracy(leaves, C) -> np.ndarray:
    """``p_x = sum_{y in C(x)} pi(y|x)``, clipped at 1 (a float64 sum may exceed it by an ulp)."""
    return np.minimum((leaves * C).sum(axis=1), 1.0)


def _ks(config) -> np.ndarray:
    return 2 ** np.arange(int(np.log2(config["k_max"])) + 1)


def _estimator(config, n, c, k):
    from tabular.rlvr.passk import pass_at_k_estimator

    if config["estimator"] == "plug_in":  # planted error: the biased 1 - (1 - c/n)^k
        return 1.0 - (1.0 - np.asarray(c) / n) ** k
    return pass_at_k_estimator(n, c, k)


def _entropies(tree, pi, leaves):
    from tabular.rlvr.passk import answer_distribution, entropy, token_entropy

    answer_of = tree.leaf_tokens(np.arange(tree.n_leaves))[:, -1]
    return (token_entropy(tree, pi), entropy(answer_distribution(leaves, answer_of, tree.n_vocab)),
            entropy(leaves))


def _stationarity_gap(pi, q, R, coef, kind) -> float:
    """max over prompts of the spread of ``r - coef f'(pi/q)`` on supp q, relative to its scale.

    At an interior optimum of ``E_pi[r] - coef D_f(pi || q)`` on the simplex over supp q this
    is a constant (the Lagrange multiplier of ``sum pi = 1``); inf if ``pi`` vanishes there.
    """
    from tabular.rlvr.divergences import divergence_gradient

    live = q > 0
    if np.any(pi[live] == 0):
        return float("inf")
    g = R - coef * divergence_gradient(pi, q, kind)
    hi = np.where(live, g, -np.inf).max(axis=1)
    lo = np.where(live, g, np.inf).min(axis=1)
    scale = np.maximum(1.0, np.where(live, np.abs(g), 0.0).max(axis=1))
    return float(np.max((hi - lo) / scale))


def _run_optima(config, seed) -> dict:
    """Per-prompt exact optima for every divergence and coefficient, and the estimator."""
    from scipy.stats import binom

    from tabular.rlvr import divergences as dv
    from tabular.rlvr.passk import pass_at_k
    from tabular.tree import leaf_probs, sample_leaves

    tree, policy, _ = build_instance(config)
    q = leaf_probs(tree, policy.pi(tree))
    C = tree.correct
    p = _accuracy(q, C)
    ks = _ks(config)
    coefs = np.array(config["optimum_coefs"], dtype=float)
    solve = {"reverse_kl": dv.reverse_kl_optimum, "forward_kl": dv.forward_kl_optimum,
             "js": dv.js_optimum}
    out = {"p_base": p}
    base_pass = pass_at_k(p[:, None], ks[None, :])
    for kind in OPTIMA:
        p_opt = np.zeros((coefs.size, tree.n_prompts))
        worst = {name: 0.0 for name in ("stationarity", "residual", "dominance")}
        positive = True
        live = q > 0
        for i, coef in enumerate(coefs):
            opt = solve[kind](q, tree.R, coef * config["optimum_solve_scale"])
            pi = opt.pi
            p_opt[i] = _accuracy(pi, C)
            positive &= bool(np.all(pi[live] > 0))
            worst["stationarity"] = max(worst["stationarity"],
                                        _stationarity_gap(pi, q, tree.R, coef, kind))
            worst["residual"] = max(worst["residual"], float(np.max(opt.residual)))
            opt_pass = pass_at_k(p_opt[i][:, None], ks[None, :])
            worst["dominance"] = max(worst["dominance"], float(np.max(base_pass - opt_pass)))
        out[f"p_opt_{kind}"] = p_opt
        out[f"positive_{kind}"] = np.array(positive)
        for name, value in worst.items():
            out[f"worst_{name}_{kind}"] = np.array(value)
    # the estimator: exact expectation (binomial sum) and a sampled mean over prompts
    n = config["n_samples"]
    ks_est = ks[ks <= n]
    c = np.arange(n + 1)
    pmf = binom.pmf(c[None, :], n, p[:, None])  # (P, n+1)
    est_table = np.stack([_estimator(config, n, c, int(k)) for k in ks_est])  # (n_k, n+1)
    mean_exact = pmf @ est_table.T  # (P, n_k): E[estimator] per prompt
    var = pmf @ (est_table.T ** 2) - mean_exact ** 2
    out["estimator_expectation_gap"] = np.array(np.max(np.abs(mean_exact - pass_at_k(p[:, None], ks_est[None, :]))))
    leaves = sample_leaves(tree, policy.pi(tree), n, seed=seed)
    counts = np.take_along_axis(C, leaves, axis=1).sum(axis=1)
    out["estimate"] = np.array([_estimator(config, n, counts, int(k)).mean() for k in ks_est])
    out["estimate_se"] = np.sqrt(var.sum(axis=0)) / tree.n_prompts
    out["ks_est"] = ks_est
    out["counts"] = counts
    return out


def _run_training(config, method) -> dict:
    """Exact-gradient ascent in the shared class (z_shared only) for one method."""
    from tabular.rlvr.divergences import divergence_gradient
    from tabular.rlvr.passk import support_categories, support_metrics
    from tabular.tree import TreePolicy, leaf_probs, logit_gradient

    tree, base, masked = build_instance(config)
    q = leaf_probs(tree, base.pi(tree))
    C, P, D = tree.correct, tree.n_prompts, tree.depth
    coef = config.get(f"coef_{method}", 0.0)
    policy = TreePolicy(base.z_shared.copy(), base.z_prompt, base.c)
    checkpoints = list(config["checkpoints"])
    out = {key: [] for key in ("p", "H_tok", "H_ans", "H_seq", "masked_max")}
    for step in range(config["steps"] + 1):
        pi = policy.pi(tree)
        leaves = leaf_probs(tree, pi)
        p = _accuracy(leaves, C)
        if step in checkpoints:
            H_tok, H_ans, H_seq = _entropies(tree, pi, leaves)
            for key, value in (("p", p), ("H_tok", H_tok), ("H_ans", H_ans), ("H_seq", H_seq)):
                out[key].append(value)
            out["masked_max"].append(leaves[np.arange(P), masked].max() if masked[0] >= 0 else 0.0)
        if step == config["steps"]:
            break
        sigma = np.sqrt(p * (1 - p))
        G = np.where(sigma[:, None] > 0, np.where(C, 1.0, 0.0) / np.where(sigma > 0, sigma, 1.0)[:, None], 0.0)
        if method != "none":
            G = G - coef * divergence_gradient(leaves, q, method)
        dz = logit_gradient(tree, pi, G / (P * D))
        policy.z_shared = policy.z_shared + config["lr"] * dz.sum(axis=0)
    result = {key: np.array(value) for key, value in out.items()}
    for i, eps in enumerate(config["epsilons"]):
        m = support_metrics(support_categories(q, leaves, C, eps))
        result[f"support_{i}"] = np.array([m[f"n_{k}"].sum() for k in "PSEO"])
    result["p_final"] = p
    return result


def run_one(config, seed) -> dict:
    """One run: ``method = "optima"`` (exact optima and estimator) or a trained method."""
    if config["method"] == "optima":
        return _run_optima(config, seed)
    return _run_training(config, config["method"])


def aggregate(runs_out, config) -> dict:
    """pass@k curves of every policy and the verdict of every sub-claim."""
    from tabular.rlvr.passk import pass_at_k_curve

    ks = _ks(config)
    opt = runs_out[0]
    trained = dict(zip(METHODS, runs_out[1:]))
    res = {"ks": ks, "p_base": opt["p_base"], "base_curve": pass_at_k_curve(opt["p_base"], ks),
           "checkpoints": np.array(config["checkpoints"]), "optimum_coefs": np.array(config["optimum_coefs"]),
           "epsilons": np.array(config["epsilons"]), "ks_est": opt["ks_est"],
           "estimate": opt["estimate"], "estimate_se": opt["estimate_se"], "D": config["D"]}
    claims = _optima_claims(opt, config, res) + _training_claims(trained, opt["p_base"], config, res)
    res["claims"] = [{"claim": name, "ok": bool(ok), "text": text} for name, ok, text in claims]
    res["reports"] = [{"claim": name, "text": text} for name, text in _reports(res, config)]
    return res


def _optima_claims(opt, config, res) -> list[tuple[str, bool, str]]:
    """Exact per-prompt optima, the shape of exact pass@k and the estimator's expectation."""
    from tabular.rlvr.passk import pass_at_k, pass_at_k_curve

    ks, p_base = res["ks"], res["p_base"]
    claims = []
    for kind in OPTIMA:
        p_opt = opt[f"p_opt_{kind}"]
        res[f"optimum_curves_{kind}"] = np.stack([pass_at_k_curve(row, ks) for row in p_opt])
        worst = {name: float(opt[f"worst_{name}_{kind}"]) for name in
                 ("stationarity", "residual", "dominance")}
        positive = bool(opt[f"positive_{kind}"])
        ok = (positive and worst["stationarity"] <= TOL_EXACT and worst["residual"] <= 1e-12
              and worst["dominance"] <= 1e-15 and bool(np.all(p_opt >= p_base - 1e-15)))
        claims.append((f"{kind} optima: stationarity, support, dominance", ok,
                       f"spread of r - coef f'(pi/q) on supp q, relative: {worst['stationarity']:.1e} "
                       f"(tolerance {TOL_EXACT:g}); pi > 0 on all of supp q: {positive}; root "
                       f"residual {worst['residual']:.1e}; max base-minus-optimum pass@k "
                       f"{worst['dominance']:.1e} (coefs {config['optimum_coefs']})"))
    ks_all = np.arange(1, config["k_max"] + 1)
    fine = pass_at_k(p_base[:, None], ks_all[None, :]).mean(axis=0)
    shape_ok = bool(np.all(np.diff(fine) >= -1e-15) and np.all(np.diff(fine, 2) <= 1e-15))
    claims.append(("exact pass@k non-decreasing and concave in k", shape_ok,
                   f"base, k = 1..{config['k_max']}: min first difference {np.diff(fine).min():.2e}, "
                   f"max second difference {np.diff(fine, 2).max():.2e}"))
    gap = float(opt["estimator_expectation_gap"])
    claims.append(("estimator exactly unbiased", gap <= TOL_UNBIASED,
                   f"max over prompts and k <= {config['n_samples']} of |E[estimator] - (1 - (1-p)^k)| = "
                   f"{gap:.1e} (tolerance {TOL_UNBIASED:g}; estimator: {config['estimator']})"))
    return claims


def _training_claims(trained, p_base, config, res) -> list[tuple[str, bool, str]]:
    """Masked leaves, entropy identities and crossings of the trained policies."""
    from tabular.rlvr.passk import pass_at_k_curve

    masked_max = max(float(run["masked_max"].max()) for run in trained.values())
    claims = [("masked leaves stay at 0 under training", masked_max == 0.0,
               f"largest probability of a masked correct leaf over methods and checkpoints: {masked_max:g}")]
    worst_dp, worst_chain = 0.0, 0.0
    for run in trained.values():
        worst_dp = max(worst_dp, float(np.max(run["H_ans"] - run["H_seq"])))
        worst_chain = max(worst_chain, float(np.max(np.abs(run["H_tok"] * config["D"] - run["H_seq"]))))
    claims.append(("H_ans <= H_seq and H_tok D = H_seq", worst_dp <= 1e-12 and worst_chain <= TOL_EXACT,
                   f"max H_ans - H_seq {worst_dp:.1e}; max |H_tok D - H_seq| {worst_chain:.1e}"))
    for m, run in trained.items():
        res[f"p_{m}"] = run["p"]
        res[f"curves_{m}"] = np.stack([pass_at_k_curve(p, res["ks"]) for p in run["p"]])
        res[f"H_tok_{m}"], res[f"H_ans_{m}"] = run["H_tok"].mean(axis=1), run["H_ans"].mean(axis=1)
        for i in range(len(config["epsilons"])):
            res[f"support_{m}_{i}"] = run[f"support_{i}"]
        diff = res[f"curves_{m}"][-1] - res["base_curve"]
        losers = int(np.sum(run["p_final"] < p_base))
        res[f"losers_{m}"] = losers
        if diff.max() > 0 and diff.min() < 0:
            claims.append((f"{m}: crossing comes with prompts that lost accuracy", losers > 0,
                           f"{losers} of {len(p_base)} prompts have p_RL < p_base"))
    return claims


def _reports(res, config) -> list[tuple[str, str]]:
    """The empirical findings: sampled estimator, crossing, DPH ranking, support, entropies."""
    from scipy.stats import norm

    from tabular.rlvr.passk import pass_at_k_curve

    ks, base, n_prompts = res["ks"], res["base_curve"], len(res["p_base"])
    exact_est = pass_at_k_curve(res["p_base"], res["ks_est"])
    se = res["estimate_se"]
    z = (res["estimate"] - exact_est) / np.where(se > 0, se, np.inf)
    z_crit = float(norm.isf(config["level"] / (2 * len(z))))
    reports = [("sampled unbiased estimator against exact pass@k (base policy)",
                f"n = {config['n_samples']} samples per prompt, mean over {n_prompts} prompts: max |z| = "
                f"{np.abs(z).max():.2f} over {len(z)} values of k (normal approximation; the "
                f"Bonferroni bound at two-sided level {config['level']:g} would be {z_crit:.2f}; not "
                "asserted: the exact expectation above is the claim)")]
    final = {m: res[f"curves_{m}"][-1] for m in METHODS}
    none = final["none"]
    cross_k = ks[np.argmax(none < base)] if np.any(none < base) else None
    yue = none[0] > base[0] and none[-1] < base[-1]
    reports.append(("Yue et al. crossing (no regulariser)",
                    f"{'reproduced' if yue else 'not reproduced in this toy'}: pass@1 base "
                    f"{base[0]:.3f} -> RL {none[0]:.3f}; pass@{ks[-1]} base {base[-1]:.3f} vs RL "
                    f"{none[-1]:.3f}; base above RL from k = {cross_k}; "
                    f"{res['losers_none']} of {n_prompts} prompts lose accuracy"))
    dph = min(final["forward_kl"][-1], final["js"][-1]) >= max(final["reverse_kl"][-1], none[-1])
    reports.append(("DPH-RL: forward KL and JS keep pass@k_max above reverse KL and none",
                    f"{'reproduced' if dph else 'not reproduced in this toy'}: pass@{ks[-1]} "
                    + ", ".join(f"{m} {final[m][-1]:.4f}" for m in METHODS)
                    + "; pass@1 " + ", ".join(f"{m} {final[m][0]:.3f}" for m in METHODS)))
    parts = []
    shrink = True
    for i, eps in enumerate(config["epsilons"]):
        n_P, n_S, n_E, n_O = res[f"support_none_{i}"]
        shrink &= n_S > n_E
        parts.append(f"eps {eps:g}: |P| {n_P:.0f}, |S| {n_S:.0f}, |E| {n_E:.0f}, |O| {n_O:.0f}")
    reports.append(("Invisible Leash: shrinkage outweighs expansion (|S| > |E|), no regulariser",
                    f"{'reproduced' if shrink else 'not reproduced in this toy'}: " + "; ".join(parts)))
    H_tok, H_ans = res["H_tok_none"], res["H_ans_none"]
    ent = H_tok[-1] > H_tok[0] and H_ans[-1] < H_ans[0]
    reports.append(("token entropy rises while answer entropy falls (no regulariser)",
                    f"{'reproduced' if ent else 'not reproduced in this toy'}: H_tok "
                    f"{H_tok[0]:.3f} -> {H_tok[-1]:.3f}, H_ans {H_ans[0]:.3f} -> {H_ans[-1]:.3f} nats"))
    return reports


def verdict(results) -> tuple[bool | None, str]:
    """Asserted sub-claims decide; the empirical findings are reported after them."""
    return asserted_verdict(results["claims"], results["reports"])


STYLE = {"base": ("k", "-"), "none": ("C3", "-"), "reverse_kl": ("C0", "--"),
         "forward_kl": ("C2", "-."), "js": ("C1", ":")}


def plot(results):
    """pass@k curves (exact optima and trained), support categories, entropies."""
    import matplotlib.pyplot as plt

    ks = results["ks"]
    fig, axes = plt.subplots(1, 4, figsize=(21, 5.2), layout="constrained")
    ax = axes[0]
    ax.plot(ks, results["base_curve"], color="k", lw=2, label="base q")
    coefs = results["optimum_coefs"]
    for kind in OPTIMA:
        color = STYLE[kind][0]
        for i, alpha in ((0, 1.0), (-1, 0.5)):
            ax.plot(ks, results[f"optimum_curves_{kind}"][i], color=color, ls=STYLE[kind][1],
                    alpha=alpha, label=f"exact per-prompt optimum, {kind}, coef {coefs[i]:g}")
    ax.set(xscale="log", xlabel="k", ylabel="mean exact pass@k", ylim=(0, 1.02),
           title="exact per-prompt optima dominate the base at every k")
    ax.legend(fontsize=7)
    ax = axes[1]
    ax.plot(ks, results["base_curve"], color="k", lw=2, label="base q")
    for m in METHODS:
        color, ls = STYLE[m]
        ax.plot(ks, results[f"curves_{m}"][-1], color=color, ls=ls,
                label=f"shared class, {m}, step {results['checkpoints'][-1]}")
    for j, step in enumerate(results["checkpoints"][1:-1], start=1):
        ax.plot(ks, results["curves_none"][j], color="C3", alpha=0.4, lw=1, label=f"none, step {step}")
    ax.errorbar(results["ks_est"], results["estimate"], yerr=3 * results["estimate_se"], fmt="o",
                ms=3, color="0.3", label="unbiased estimator from samples of q (+-3 SE)")
    ax.set(xscale="log", xlabel="k", ylabel="mean pass@k", ylim=(0, 1.02),
           title="shared parameters: exact-gradient training (population GRPO)")
    ax.legend(fontsize=7)
    ax = axes[2]
    width = 0.2
    labels = ["|P|", "|S|", "|E|"]
    for i, eps in enumerate(results["epsilons"]):
        for j, m in enumerate(METHODS):
            counts = results[f"support_{m}_{i}"][:3]
            ax.bar(np.arange(3) + 4 * i + (j - 1.5) * width, counts, width, color=STYLE[m][0],
                   label=m if i == 0 else None)
    ax.set_xticks([x + 4 * i for i in range(len(results["epsilons"])) for x in range(3)],
                  [f"{lab}\neps={eps:g}" for eps in results["epsilons"] for lab in labels], fontsize=7)
    ax.set(ylabel="correct leaves (summed over prompts)", title="support categories at the end")
    ax.legend(fontsize=7)
    ax = axes[3]
    for m in METHODS:
        color, ls = STYLE[m]
        ax.plot(results["checkpoints"], results[f"H_tok_{m}"], color=color, ls=ls, marker="o",
                label=f"H_tok, {m}")
        ax.plot(results["checkpoints"], results[f"H_ans_{m}"], color=color, ls=ls, marker="s",
                mfc="none", label=f"H_ans, {m}")
    ax.set(xlabel="step", ylabel="nats (mean over prompts)", title="token- vs answer-level entropy")
    ax.legend(fontsize=6, ncol=2)
    fig.suptitle("pass@k, support and entropy, exactly (Yue et al. 2025; Wu et al. 2025; "
                 "Li et al. 2025)", fontsize=10)
    return fig
