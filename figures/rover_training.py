"""Learning curves of practical ROVER, GRPO and REINFORCE (group-mean baseline) on a tree with unequal correct strategies: pass@k and distinct correct answers (He et al. 2025, toy (b)).

Instance (spec sheet ``rover_random_policy_valuation.md``, toy (b), fixed by
``instance_seed``): ``V = 4``, ``D = 6``, ``P = 16`` prompts, per-prompt logit tables
``N(0, 1.5^2)`` (the base, :meth:`tabular.tree.TreePolicy.random`). Correct set per prompt:
three distinct random nodes at depth ``D - 3`` ("strategies") of unequal density; with
``c`` the prompt's random token and ``(a, b, e)`` the last three tokens, a leaf under the first
is correct iff ``(a + b + e) mod V = c`` (16 leaves), under the second iff ``a = c`` and
``(b + e) mod V = c`` (4), under the third iff ``a = b = e = c`` (1): 21 in all.

Training (fixed before running): ROVER's practical loss (``preset("rover")``: group-mean
centred reward, ``Q = rho (log pi - log pi_old)``, ``rho = 1``, token mean), GRPO
(``preset("grpo")``, PPO clip 0.2) and REINFORCE with the group-mean baseline
(``preset("reinforce_mean")``); ``n = 8``, ``K = 4`` inner steps per batch for all three.
Each inner step is a full pass over the batch (4 full-batch steps with pi_old fixed); the
ROVER math config's "4 mini-batch steps" are 4 steps on quarters of the batch, which is not
implemented here. Adam with ``lr = 0.01`` for all three, 300 iterations, 5 seeds. The rate
is not a sheet value (the sheet's rates are for LLM weights and say "lr tuned per method"):
0.01 was fixed before any run as one Adam rate for all methods, with no tuning (Adam's
per-entry scaling makes one rate comparable across losses of different scale, and the 1/P
factor of the per-prompt normaliser cancels in it up to Adam's eps). Smoke: ``D = 4``,
``P = 4``, 16 iterations, 2 seeds; quick: ``D = 5``, 3 seeds.

Empirical rule (sheet property test 9 is a report; this rule is fixed in advance), on the
per-seed values at the last iteration: "reproduced" iff (a) ROVER's pass@k_max exceeds
GRPO's and (b) ROVER's expected distinct correct leaves in 32 samples exceed GRPO's, each by a
one-sided Welch t test (``scipy.stats.ttest_ind``, ``equal_var=False``) at level ``alpha / 2``
with ``alpha = 0.05`` (Bonferroni over the two comparisons), and (c) |pass@1(ROVER) -
pass@1(GRPO)| <= 0.05 on the seed means ("within a few points"). When (a) or (b) fails and
neither one-sided test is significant, the headline says "not reproduced in this toy
(difference within noise)". Fix round: the rule compared seed means with ``>=``, no level;
the Welch tests replaced it before any run of the new rule. Means and standard deviations
over seeds are reported.

Asserted (exact, every ROVER run, exit 1 when violated): sheet property test 7, the
first-step identity of the practical loss: at theta = theta_old, ``Q_theta = 0`` and ``V^ =
0``, so the ROVER gradient equals ``2 rho`` times the token-mean policy gradient with the
centred reward. It is checked in the figure's own training loop (:func:`_train_batches`,
equal to :func:`tabular.rlvr.training.train`): on the first inner step of the batch that
training uses at each checkpoint iteration before the last, the ROVER gradient the optimiser
receives is compared with the PG gradient of the same batch (relative 1e-9). The check draws
no random numbers, so ``checkpoints`` does not change the training trajectories. Leaf
distributions sum to 1 (1e-12). Planted error: ``stale_pi_old`` makes the loop sample each
batch from, and take pi_old as, the base policy (pi_old <- pi_theta forgotten), so after the
first batch the first inner step has ``Q != 0`` and the identity fails. Fix round: the check
used to run on a separate fresh batch with pi_old = current policy, where it holds whatever
the training does.

Timing (2 shared cores, ``time .venv/bin/boundlab check rover-training --config ...``):
smoke 2.5 s, quick 19.7 s (fix round).
"""
from __future__ import annotations

import warnings

import numpy as np

from proofs_check.claims import Claim

NAME = "rover-training"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Tree toy with unequal correct strategies: practical ROVER ends with pass@k at large "
        "k and expected distinct correct answers above GRPO's (Welch tests), pass@1 within 0.05 "
        "(paper's claim, reported as found against GRPO and REINFORCE with a mean baseline); "
        "exactly, ROVER's first-step gradient is 2 rho times the mean-baseline REINFORCE one."
    ),
    source=(
        "He, Ye, Cai, Hu, Jiao, Jiang, Pan (2025), Random Policy Valuation is Enough for LLM "
        "Reasoning with Verifiable Rewards, arXiv 2509.24981 (practical loss from the released "
        "code; the paper's diversity metric not verified); toy and identity from the spec sheet."
    ),
    kind="empirical",
)

METHODS = ("rover", "grpo", "reinforce_mean")
LABELS = {"rover": "ROVER (practical)", "grpo": "GRPO", "reinforce_mean": "REINFORCE, mean baseline"}

_BASE = {
    "V": 4, "D": 6, "P": 16, "prompt_scale": 1.5, "instance_seed": 0,
    "n": 8, "K": 4, "lr": 0.01, "rho": 1.0, "steps": 300, "checkpoints": [0, 100, 300],
    "record_every": 25, "n_seeds": 5, "k_max": 256, "n_distinct": 32, "pass1_tol": 0.05,
    "alpha": 0.05,
    "stale_pi_old": False,  # planted error: training batches (and pi_old) from the base policy
}
CONFIGS = {
    "smoke": {**_BASE, "D": 4, "P": 4, "steps": 16, "checkpoints": [0, 8, 16],
              "record_every": 8, "n_seeds": 2, "k_max": 64},
    "quick": {**_BASE, "D": 5, "n_seeds": 3},
    "paper": {**_BASE},
}
AGGREGATE_KEYS = ("pass1_tol", "alpha")
TOL = 1e-9


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key, low in (("V", 2), ("D", 4), ("P", 1), ("n", 2), ("K", 1), ("steps", 1),
                     ("record_every", 1), ("n_seeds", 1), ("k_max", 1), ("n_distinct", 1)):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {config[key]!r}")
    if config["k_max"] & (config["k_max"] - 1):
        raise ValueError(f"k_max must be a power of 2, got {config['k_max']}")
    if config["V"] ** (config["D"] - 3) < 3:
        raise ValueError("need at least 3 nodes at depth D - 3 for the three strategies")
    cps = config["checkpoints"]
    if cps[0] != 0 or sorted(set(cps)) != cps or cps[-1] != config["steps"] or any(
            c % config["record_every"] for c in cps):
        raise ValueError(f"checkpoints must increase from 0 to steps = {config['steps']} in "
                         f"multiples of record_every = {config['record_every']}, got {cps}")
    for key in ("lr", "rho", "prompt_scale"):
        if not config[key] > 0:
            raise ValueError(f"{key} must be positive, got {config[key]!r}")
    if not 0 < config["alpha"] < 1:
        raise ValueError(f"alpha must be in (0, 1), got {config['alpha']!r}")


def runs(config) -> list[dict]:
    """One run per (method, seed)."""
    validate_config(config)
    return [{"method": m, "seed_index": s} for m in METHODS for s in range(config["n_seeds"])]


def correct_leaves(config) -> np.ndarray:
    """Bool ``(P, V^D)``: the three unequal strategies of each prompt (module docstring)."""
    V, D, P = config["V"], config["D"], config["P"]
    rng = np.random.default_rng(config["instance_seed"])
    y = np.arange(V**D)
    node, a, b, e = y // V**3, (y // V**2) % V, (y // V) % V, y % V
    C = np.zeros((P, V**D), dtype=bool)
    for x in range(P):
        c = int(rng.integers(V))
        dense, mid, sparse = rng.choice(V ** (D - 3), 3, replace=False)
        C[x] |= (node == dense) & ((a + b + e) % V == c)
        C[x] |= (node == mid) & (a == c) & ((b + e) % V == c)
        C[x] |= (node == sparse) & (a == c) & (b == c) & (e == c)
    return C


def build_instance(config):
    """The tree (rewards 0/1) and the base TreePolicy (per-prompt tables)."""
    from tabular.tree import TreeMDP, TreePolicy

    tree = TreeMDP(correct_leaves(config), n_vocab=config["V"], depth=config["D"])
    base = TreePolicy.random(tree, prompt_scale=config["prompt_scale"],
                             seed=np.random.default_rng([config["instance_seed"], 1]))
    return tree, base


def _method(name, config):
    from tabular.rlvr.losses import preset

    return preset(name, rho=config["rho"]) if name == "rover" else preset(name)


def _relative_gap(g, ref, factor) -> float:
    """max |g - factor ref| over both parts, relative to max |factor ref|."""
    gap = max(float(np.abs(getattr(g, p) - factor * getattr(ref, p)).max())
              for p in ("z_shared", "z_prompt"))
    scale = max(float(np.abs(getattr(ref, p)).max()) for p in ("z_shared", "z_prompt"))
    return gap / max(factor * scale, 1e-300)


def _train_batches(tree, policy, method, opt, config, first, n_batches, rng, pi_base):
    """Iterations ``first .. first + n_batches - 1`` of ``train``'s loop (sample from pi_old
    = pi_theta, then ``K`` inner steps); returns the policy and the identity gaps of test 7
    on the first inner step of the checkpoint iterations (ROVER only)."""
    from tabular.rlvr.losses import Method, loss_gradient, make_rollouts

    pg = Method(advantage="mean", loss="pg", aggregation="token_mean")
    gaps = []
    for it in range(first, first + n_batches):
        pi_old = pi_base if config["stale_pi_old"] else policy.pi(tree)
        batch = make_rollouts(tree, pi_old, method, config["n"], seed=rng)
        for j in range(config["K"]):
            grad = loss_gradient(tree, policy, batch, method)
            if j == 0 and method.loss == "rover" and it in config["checkpoints"]:
                gaps.append(_relative_gap(grad, loss_gradient(tree, policy, batch, pg),
                                          2 * config["rho"]))
            policy = policy.step(opt.delta(grad), -1.0)
    return policy, gaps


def run_one(config, seed) -> dict:
    """One (method, seed): exact accuracies and distinct-correct counts every record_every.

    Returns
    -------
    dict
        ``p`` (n_rec, P) accuracies, ``distinct`` (n_rec, P) expected distinct correct
        leaves in ``n_distinct`` samples, ``identity_gap`` (n_checks,) (empty unless ROVER),
        ``sum_err`` (n_rec,).
    """
    from proofs_check.seeding import as_generator
    from tabular.rlvr.training import Adam
    from tabular.tree import leaf_probs

    rng = as_generator(seed)
    tree, policy = build_instance(config)
    pi_base = policy.pi(tree)
    method, opt = _method(config["method"], config), Adam(config["lr"])
    every, step = config["record_every"], 0
    out = {"p": [], "distinct": [], "sum_err": []}
    gaps = []
    while True:
        leaves = leaf_probs(tree, policy.pi(tree))
        C = tree.correct
        out["p"].append(np.where(C, leaves, 0.0).sum(axis=1).clip(0.0, 1.0))
        out["distinct"].append(np.where(C, 1 - (1 - leaves) ** config["n_distinct"], 0.0).sum(axis=1))
        out["sum_err"].append(float(np.abs(leaves.sum(axis=1) - 1).max()))
        if step == config["steps"]:
            break
        policy, new = _train_batches(tree, policy, method, opt, config, step, every, rng, pi_base)
        gaps += new
        step += every
    return {**{k: np.array(v) for k, v in out.items()}, "identity_gap": np.array(gaps, dtype=float)}


def welch_one_sided(a, b, level) -> tuple[bool, bool, float]:
    """One-sided Welch t tests (Welch 1947; ``scipy.stats.ttest_ind``, ``equal_var=False``).

    Parameters
    ----------
    a, b : array_like of float, 1-d
        Per-seed values of the two methods.
    level : float in (0, 1)
        Level of each one-sided test.

    Returns
    -------
    (bool, bool, float)
        ``mean a > mean b`` significant, ``mean a < mean b`` significant, and the p-value of
        the first. Fewer than two values on a side, or zero variance on both, give a nan
        p-value and count as not significant.
    """
    from scipy.stats import ttest_ind

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(a.size, b.size) < 2:
        return False, False, float("nan")
    # Near-constant samples (pass@256 = 1 in every seed) make scipy warn of precision loss;
    # its p-value is still returned (nan when undefined, counted as not significant).
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_gt = float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
        p_lt = float(ttest_ind(a, b, equal_var=False, alternative="less").pvalue)
    return bool(p_gt < level), bool(p_lt < level), p_gt


def aggregate(runs_out, config) -> dict:
    """Per-method seed means and sds of pass@k and distinct counts; the rule; the identity."""
    from tabular.rlvr.passk import pass_at_k_curve

    ks = 2 ** np.arange(int(np.log2(config["k_max"])) + 1)
    S, every = config["n_seeds"], config["record_every"]
    rows = [c // every for c in config["checkpoints"]]
    res = {"ks": ks, "checkpoints": np.array(config["checkpoints"]), "n_seeds": S,
           "alpha": config["alpha"], "rho": config["rho"],
           "steps_recorded": np.arange(0, config["steps"] + 1, every), "P": config["P"],
           "D": config["D"], "lr": config["lr"], "K": config["K"], "k_max": config["k_max"],
           "n_distinct": config["n_distinct"], "pass1_tol": config["pass1_tol"]}
    final = {}
    for i, m in enumerate(METHODS):
        cell = runs_out[i * S:(i + 1) * S]
        curves = np.array([[pass_at_k_curve(run["p"][r], ks) for r in rows] for run in cell])
        distinct = np.array([run["distinct"].mean(axis=1) for run in cell])  # (S, n_rec)
        pass1 = np.array([run["p"].mean(axis=1) for run in cell])
        res[f"curves_{m}"] = curves.mean(axis=0)
        res[f"distinct_{m}"], res[f"distinct_sd_{m}"] = distinct.mean(axis=0), distinct.std(axis=0, ddof=min(1, S - 1))
        res[f"pass1_{m}"] = pass1.mean(axis=0)
        final[m] = {"pass1": curves[:, -1, 0], "passk": curves[:, -1, -1], "distinct": distinct[:, -1]}
    res["final"] = {m: {k: v.tolist() for k, v in d.items()} for m, d in final.items()}
    mean = {m: {k: float(np.mean(v)) for k, v in d.items()} for m, d in final.items()}
    level = config["alpha"] / 2  # Bonferroni over the two Welch comparisons
    tests = [welch_one_sided(final["rover"][key], final["grpo"][key], level)
             for key in ("passk", "distinct")]
    rule = [tests[0][0], tests[1][0],
            abs(mean["rover"]["pass1"] - mean["grpo"]["pass1"]) <= config["pass1_tol"]]
    res["rule"] = np.array(rule)
    res["welch_p"] = np.array([t[2] for t in tests])
    res["reproduced"] = bool(all(rule))
    failed = [i for i, ok in enumerate(rule) if not ok]
    res["within_noise"] = bool(failed) and all(i < 2 and not tests[i][1] for i in failed)
    res["identity_gap"] = max((float(run["identity_gap"].max()) for run in runs_out
                               if run["identity_gap"].size), default=float("nan"))
    res["sum_err"] = max(float(run["sum_err"].max()) for run in runs_out)
    return res


def _ms(v) -> str:
    v = np.asarray(v)
    return f"{v.mean():.3f} +- {v.std(ddof=min(1, v.size - 1)):.3f}"


def _diff(a, b) -> str:
    a, b = np.asarray(a), np.asarray(b)
    se = np.sqrt((a.var(ddof=1) / a.size if a.size > 1 else np.nan)
                 + (b.var(ddof=1) / b.size if b.size > 1 else np.nan))
    return f"{a.mean() - b.mean():+.3f} (se {se:.3f})"


def verdict(results) -> tuple[bool | None, str]:
    """The exact first-step identity decides the exit code; the rule the headline."""
    f, kmax = results["final"], results["k_max"]
    per = "; ".join(f"{LABELS[m]}: pass@1 {_ms(f[m]['pass1'])}, pass@{kmax} {_ms(f[m]['passk'])}, "
                    f"distinct correct in {results['n_distinct']} samples {_ms(f[m]['distinct'])}"
                    for m in METHODS)
    a, b, c = (bool(v) for v in results["rule"])
    diffs = ", ".join(f"{key} {_diff(f['rover'][key], f['grpo'][key])}"
                      for key in ("pass1", "passk", "distinct"))
    base = results["curves_rover"][0]
    p_k, p_d = results["welch_p"]
    level = results["alpha"] / 2
    numbers = (f"last iteration {results['checkpoints'][-1]}, mean +- sd over "
               f"{results['n_seeds']} seeds, {results['P']} prompts (base pass@1 {base[0]:.3f}, "
               f"pass@{kmax} {base[-1]:.3f}): {per}. Rule (one-sided Welch t tests at level "
               f"{level:g} each, alpha {results['alpha']:g} Bonferroni over 2): ROVER pass@{kmax} "
               f"> GRPO's: {a} (p = {p_k:.2g}); distinct > GRPO's: {b} (p = {p_d:.2g}); "
               f"|pass@1 gap| <= {results['pass1_tol']:g}: {c}. ROVER - GRPO (difference of "
               f"seed means, standard error): {diffs}.")
    check = (f"first-step identity grad ROVER = 2 rho grad PG (mean baseline, token mean) on "
             f"the first inner step of the training batch at each checkpoint iteration (ROVER "
             f"runs): largest relative gap {results['identity_gap']:.2g} (tol {TOL:g}); leaf "
             f"sums within {results['sum_err']:.2g} of 1")
    if not (results["identity_gap"] <= TOL and results["sum_err"] <= 1e-12):
        return False, f"NOT SUPPORTED (asserted: {check}). {numbers}"
    head = ("reproduced" if results["reproduced"] else "not reproduced in this toy"
            + (" (difference within noise)" if results["within_noise"] else ""))
    return True, f"{head}: {numbers} Asserted, exact: {check}."


STYLE = {"rover": ("C2", "-"), "grpo": ("C3", "--"), "reinforce_mean": ("C0", ":")}


def plot(results):
    """pass@k at the last iteration; pass@1 and distinct correct answers over training."""
    import matplotlib.pyplot as plt

    ks, steps = results["ks"], results["steps_recorded"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    axes[0].plot(ks, results["curves_rover"][0], "k-", marker="o", ms=3, label="base")
    for m in METHODS:
        color, ls = STYLE[m]
        axes[0].plot(ks, results[f"curves_{m}"][-1], color=color, ls=ls, marker=".", label=LABELS[m])
        axes[1].plot(steps, results[f"pass1_{m}"], color=color, ls=ls, label=LABELS[m])
        mu, sd = results[f"distinct_{m}"], results[f"distinct_sd_{m}"]
        axes[2].plot(steps, mu, color=color, ls=ls, label=LABELS[m])
        axes[2].fill_between(steps, mu - sd, mu + sd, color=color, alpha=0.15)
    axes[0].set(xscale="log", xlabel="k", ylabel="mean pass@k (exact, seed mean)",
                title=f"iteration {results['checkpoints'][-1]}")
    axes[1].set(xlabel="iteration", ylabel="mean pass@1 (exact)", title="accuracy")
    axes[2].set(xlabel="iteration", ylabel=f"E[distinct correct leaves in {results['n_distinct']} samples]",
                title="diversity (prompt mean, +- 1 sd over seeds)")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle(f"ROVER vs GRPO vs REINFORCE: V = 4, D = {results['D']}, P = {results['P']}, "
                 f"Adam lr {results['lr']:g} (all methods, not tuned), K = {results['K']} "
                 f"full-batch inner steps", fontsize=10)
    return fig
