"""Balanced online difficulty filtering (Bae et al. 2025) against uniform prompt sampling for GRPO on a shared-parameter tree policy.

Instance (spec sheet ``difficulty_filtering_and_brorl.md``, fixed by ``instance_seed``): a
tree with V = 4, D = 4 (256 answers) and P = 200 prompts. The policy has shared and
per-prompt logits, ``z = z_shared + c z_prompt`` with c = 1, both trained, both 0 at the
start (uniform answers), so learning transfers between prompts. The correct answers of
prompt x are its ``k_x`` best answers under a score ``g(y) + e_x(y)`` (``g`` shared, ``e_x``
per prompt, both N(0, 1)), with ``k_x = round(256 sigmoid(u_x))``, ``u_x ~ U[-6, 6]``
(clipped to [1, 255]): base accuracies ``k_x / 256`` spread over (0, 1).

Training (hyper-parameters fixed in advance; the sheet gives the batch and the bands, not
the optimiser, so Adam with lr 0.05 and default moments was fixed before any filtered run):
each step, the prompts are visited in a fresh random order, ``n = 8`` rollouts each (one
pass at most), and a prompt is kept when its observed accuracy ``p^ = c/8`` passes the
strategy's filter, until 32 are kept (fewer if the pass ends first). Strategies: ``none``
(the first 32 visited: uniform sampling), ``dapo`` (``0 < p^ < 1``), ``balanced`` (``p_lo
<= p^ <= p_hi``, band [0.25, 0.75]), ``easy`` (``p^ >= p_hi``), ``hard`` (``p^ <=
p_lo``). One GRPO step (``preset("grpo")``: group-normalised advantages, PPO-clip, one inner
step so the clip is inactive, sequence-mean aggregation over the kept groups: the
normaliser's 1/P counts kept prompts only) per batch. Rollouts of rejected prompts count
in the total. Metrics are exact: mean accuracy over all 200 prompts. Changes forced by the
toy: ``quick`` runs 80 steps x 5 seeds (about 50 s on the shared 2-core machine; 100
steps took 62 s), ``paper`` 200 steps x 8 seeds; ``smoke`` uses P = 100, batches of 16,
three strategies and 2 seeds to stay within seconds. With Adam the
normaliser's 1/P_kept scale of the per-prompt gradients hardly matters (Adam divides it out).

Empirical claim (Bae et al.: balanced filtering learns faster than plain GRPO). Decision
rule, fixed in advance: "reproduced" iff a one-sided Welch t test (Welch-Satterthwaite df)
over the seeds rejects "``balanced``'s mean accuracy over the training curve (steps 1..T)
is at most ``none``'s" at level ``alpha`` = 0.01 (config). ``quick`` and ``paper`` use at
least 5 seeds; ``smoke`` (2 seeds) prints the rule's outcome labelled "indicative only". Reported besides: final accuracies, the fraction of ``none``'s steps that
``balanced`` needs to reach ``none``'s final accuracy (Bae v2: about 0.6), accuracy at
``none``'s rollout budget (filtering discards rollouts), and the mean exact ``p(1-p)`` of
the prompts in each batch.

Asserted (exit 1 when violated): every kept group passes its strategy's filter and no
batch exceeds 32 prompts; the z_prompt gradient rows of every prompt left out of a batch
are exactly 0 at every step; and, exactly, on the instance's initial accuracies, the balanced
band (symmetric about 1/2) does not lower the mean success variance:
``E[p(1-p) | kept] >= E[p(1-p)]`` (:func:`tabular.rlvr.difficulty.filtered_variance`; the
sheet's property 4; a NaN there fails, and a band that keeps no ``c / n`` is a bad
configuration). Planted error (config ``planted = "leaky_filter"``): each step also
keeps the first prompt the filter rejected; ``planted = "unmasked_batch"``: the gradient is
taken on the whole sampled batch instead of the kept prompts.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from proofs_check.claims import Claim
from tabular.rlvr.difficulty import FILTERS, difficulty_filter

NAME = "difficulty-filtering"
CLAIM = Claim(
    name=NAME,
    statement=(
        "GRPO with balanced online difficulty filtering (keep prompts whose observed accuracy "
        "over 8 rollouts lies in [0.25, 0.75]) reaches a higher mean accuracy over training "
        "than uniform prompt sampling at equal gradient steps; filtering keeps prompts of "
        "higher success variance p(1-p) (exact, symmetric band)."
    ),
    source=(
        "Bae, Hong, Lee, Kim, Nam, Kwak (2025), Online Difficulty Filtering for Reasoning "
        "Oriented Reinforcement Learning, arXiv 2504.03380 (idea and headline claims verified "
        "from the abstract; exact bound and thresholds not verified); variance inequality "
        "derived in the spec sheet."
    ),
    kind="empirical",
)

STRATEGIES = FILTERS
PLANTED = ("none", "leaky_filter", "unmasked_batch")
_BASE = {
    "V": 4, "D": 4, "P": 200, "logit_range": 6.0, "noise_scale": 1.0, "instance_seed": 0,
    "c": 1.0, "n": 8, "batch": 32, "band": [0.25, 0.75], "lr": 0.05,
    "strategies": list(STRATEGIES), "n_steps": 100, "n_seeds": 5, "alpha": 0.01,
    "planted": "none",
}
CONFIGS = {
    "smoke": {**_BASE, "P": 100, "batch": 16, "n_steps": 25, "n_seeds": 2,
              "strategies": ["none", "balanced", "easy"]},
    "quick": {**_BASE, "n_steps": 80},
    "paper": {**_BASE, "n_steps": 200, "n_seeds": 8},
}


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key in ("V", "D", "P", "n", "batch", "n_steps", "n_seeds"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {config[key]!r}")
    if config["V"] < 2:
        raise ValueError(f"V must be >= 2, got {config['V']}")
    if config["batch"] > config["P"]:
        raise ValueError(f"batch ({config['batch']}) must not exceed P ({config['P']})")
    lo, hi = config["band"]
    if not 0 < lo <= hi < 1:
        raise ValueError(f"band must satisfy 0 < p_lo <= p_hi < 1, got {config['band']}")
    bad = [s for s in config["strategies"] if s not in STRATEGIES]
    if bad or "none" not in config["strategies"] or "balanced" not in config["strategies"]:
        raise ValueError(f"strategies must come from {STRATEGIES} and include 'none' and "
                         f"'balanced', got {config['strategies']}")
    if config["lr"] <= 0 or config["logit_range"] < 0 or config["noise_scale"] < 0:
        raise ValueError("lr must be > 0, logit_range and noise_scale >= 0")
    if config["planted"] not in PLANTED:
        raise ValueError(f"planted must be one of {PLANTED}, got {config['planted']!r}")
    if not 0 < config["alpha"] < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {config['alpha']}")
    c = np.arange(config["n"] + 1) / config["n"]
    if not np.any((c >= lo) & (c <= hi)):
        raise ValueError(f"band {config['band']} keeps no observed accuracy c/n with "
                         f"n = {config['n']}: the balanced filter would never train")


def runs(config) -> list[dict]:
    """One run per (strategy, seed index)."""
    validate_config(config)
    return [{"strategy": s, "rep": r} for s in config["strategies"] for r in range(config["n_seeds"])]


def instance(config):
    """The tree (correct sets of the k_x best answers under ``g + e_x``) and the initial policy."""
    from tabular.tree import TreeMDP, TreePolicy

    rng = np.random.default_rng(config["instance_seed"])
    V, D, P = config["V"], config["D"], config["P"]
    L = V ** D
    score = rng.standard_normal(L) + config["noise_scale"] * rng.standard_normal((P, L))
    u = rng.uniform(-config["logit_range"], config["logit_range"], P)
    k = np.clip(np.round(L / (1.0 + np.exp(-u))), 1, L - 1).astype(np.int64)
    rank = np.argsort(np.argsort(-score, axis=1), axis=1)
    tree = TreeMDP(rank < k[:, None], n_vocab=V, depth=D)
    policy = TreePolicy(np.zeros((tree.n_nodes, V)), np.zeros((P, tree.n_nodes, V)),
                        config["c"], ("z_shared", "z_prompt"))
    return tree, policy


def select(order, ok, batch: int, leaky: bool = False):
    """Walk ``order`` keeping prompts with ``ok``, until ``batch`` are kept.

    Returns ``(kept bool (P,), visited int)``; ``leaky`` (planted error) also keeps the
    first rejected prompt."""
    kept = np.zeros(ok.shape, dtype=bool)
    n_kept, visited, leaked = 0, 0, not leaky
    for x in order:
        if n_kept == batch:
            break
        visited += 1
        if ok[x] or not leaked:
            leaked = leaked or not ok[x]
            kept[x] = True
            n_kept += 1
    return kept, visited


def run_one(config, seed) -> dict:
    """Train one strategy for ``n_steps`` GRPO steps.

    Returns
    -------
    dict
        ``accuracy`` (n_steps + 1,): exact mean accuracy over prompts; ``rollouts``
        (n_steps + 1,): cumulative rollouts drawn (rejected ones included); ``batch_size``
        (n_steps,); ``batch_variance`` (n_steps,): mean exact p(1-p) of the kept prompts;
        ``n_outside`` (int): kept groups that fail the filter; ``n_leaked_grad`` (int):
        non-zero z_prompt gradient entries of prompts left out of the batch.
    """
    from proofs_check.seeding import as_generator
    from tabular.rlvr.losses import loss_gradient, make_rollouts, preset
    from tabular.rlvr.training import Adam, exact_metrics

    rng = as_generator(seed)
    tree, policy = instance(config)
    method, optimizer = preset("grpo"), Adam(config["lr"])
    strategy, n, band = config["strategy"], config["n"], tuple(config["band"])
    acc = [exact_metrics(tree, policy, [1])[0]]
    rollouts, sizes, variance, n_outside, n_leaked = [0], [], [], 0, 0
    for _ in range(config["n_steps"]):
        batch = make_rollouts(tree, policy.pi(tree), method, n, seed=rng)
        ok = difficulty_filter(strategy, (batch.rewards > 0).mean(axis=1), band)
        kept, visited = select(rng.permutation(tree.n_prompts), ok, config["batch"],
                               config["planted"] == "leaky_filter")
        n_outside += int(np.sum(kept & ~ok))
        sizes.append(int(kept.sum()))
        rollouts.append(rollouts[-1] + n * visited)
        p = acc[-1]
        variance.append(float(np.mean((p * (1 - p))[kept])) if kept.any() else np.nan)
        if kept.any():
            used = batch if config["planted"] == "unmasked_batch" else dataclasses.replace(batch, kept=kept)
            grad = loss_gradient(tree, policy, used, method)
            n_leaked += int(np.count_nonzero(grad.z_prompt[~kept]))
            policy = policy.step(optimizer.delta(grad), -1.0)
        acc.append(exact_metrics(tree, policy, [1])[0])
    return {"accuracy": np.array([a.mean() for a in acc]), "rollouts": np.array(rollouts),
            "batch_size": np.array(sizes), "batch_variance": np.array(variance),
            "n_outside": n_outside, "n_leaked_grad": n_leaked, "final_accuracies": acc[-1]}


def _nanmean(values, axis=None):
    """``np.nanmean`` that returns nan quietly for all-nan slices (steps without a batch)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis)


def _steps_to_reach(curve, target) -> float:
    """First step index at which ``curve`` reaches ``target`` (nan if never)."""
    hit = np.flatnonzero(curve >= target)
    return float(hit[0]) if hit.size else np.nan


def aggregate(runs_out, config) -> dict:
    """Per strategy: mean curves over seeds with standard errors; the asserted checks."""
    from scipy.stats import ttest_ind

    from tabular.rlvr.difficulty import filtered_variance
    from tabular.tree import leaf_probs

    S, R = config["strategies"], config["n_seeds"]
    res = {"strategies": list(S), "n_seeds": R, "n_steps": config["n_steps"],
           "band": np.array(config["band"]), "batch": config["batch"], "n": config["n"],
           "P": config["P"]}
    auc = {}
    for i, s in enumerate(S):
        group = runs_out[i * R:(i + 1) * R]
        acc = np.stack([g["accuracy"] for g in group])
        roll = np.stack([g["rollouts"] for g in group]).astype(np.float64)
        res[f"acc_{s}"] = acc.mean(axis=0)
        res[f"acc_se_{s}"] = acc.std(axis=0, ddof=1) / np.sqrt(R) if R > 1 else np.zeros(acc.shape[1])
        res[f"rollouts_{s}"] = roll.mean(axis=0)
        res[f"batch_size_{s}"] = np.stack([g["batch_size"] for g in group]).mean(axis=0)
        res[f"batch_variance_{s}"] = _nanmean(np.stack([g["batch_variance"] for g in group]), axis=0)
        res[f"n_outside_{s}"] = int(sum(int(g["n_outside"]) for g in group))
        res[f"n_leaked_grad_{s}"] = int(sum(int(g["n_leaked_grad"]) for g in group))
        auc[s] = acc[:, 1:].mean(axis=1)
        res[f"auc_{s}"] = auc[s]
    diff = auc["balanced"].mean() - auc["none"].mean()
    se = np.sqrt(sum(auc[s].var(ddof=1) / R for s in ("balanced", "none"))) if R > 1 else np.inf
    res["auc_diff"], res["auc_diff_se"] = float(diff), float(se)
    if R > 1:
        test = ttest_ind(auc["balanced"], auc["none"], equal_var=False, alternative="greater")
        res["welch_p"], res["welch_df"] = float(test.pvalue), float(test.df)
    else:
        res["welch_p"], res["welch_df"] = np.nan, np.nan
    res["alpha"] = config["alpha"]
    res["reproduced"] = bool(res["welch_p"] < config["alpha"])  # nan: False
    none_final = res["acc_none"][-1]
    res["balanced_fraction_to_none_final"] = _steps_to_reach(res["acc_balanced"], none_final) / config["n_steps"]
    budget = res["rollouts_none"][-1]
    res["balanced_at_none_budget"] = float(np.interp(budget, res["rollouts_balanced"], res["acc_balanced"]))
    tree, policy = instance(config)
    p0 = np.where(tree.correct, leaf_probs(tree, policy.pi(tree)), 0.0).sum(axis=1).clip(0, 1)
    res["p0"] = p0
    lo, hi = config["band"]
    res["band_symmetric"] = bool(abs(lo + hi - 1.0) <= 1e-12)
    try:
        kept_var, all_var = filtered_variance(p0, np.full(p0.size, 1.0 / p0.size), config["n"], (lo, hi))
    except ValueError:  # cannot happen after validate_config; if it does, the check fails
        kept_var, all_var = np.nan, float(np.mean(p0 * (1 - p0)))
    res["kept_var"], res["all_var"] = kept_var, all_var
    res["claims"] = [
        {"claim": "kept groups pass the filter",
         "ok": all(res[f"n_outside_{s}"] == 0 for s in S)
         and all(np.all(res[f"batch_size_{s}"] <= config["batch"]) for s in S),
         "text": "kept groups failing their filter: " + ", ".join(f"{s} {res[f'n_outside_{s}']}" for s in S)
                 + f" (batches of at most {config['batch']})"},
        {"claim": "filtering raises the success variance",
         "ok": bool(np.isfinite(kept_var) and np.isfinite(all_var))
         and not (res["band_symmetric"] and kept_var < all_var - 1e-15),
         "text": f"exact on the initial accuracies, band [{lo:g}, {hi:g}], n = {config['n']}: "
                 f"E[p(1-p) | kept] = {kept_var:.4f} vs E[p(1-p)] = {all_var:.4f}"
                 + ("" if res["band_symmetric"] else " (band not symmetric: not asserted)")},
        {"claim": "left-out prompts get no gradient",
         "ok": all(res[f"n_leaked_grad_{s}"] == 0 for s in S),
         "text": "non-zero z_prompt gradient entries of prompts outside the batch: "
                 + ", ".join(f"{s} {res[f'n_leaked_grad_{s}']}" for s in S)},
    ]
    return res


def _fmt(values) -> str:
    return ", ".join(f"{v:.3f}" for v in np.atleast_1d(values))


def verdict(results) -> tuple[bool | None, str]:
    """The asserted filter checks decide the exit code; the empirical rule gives the words."""
    S = results["strategies"]
    asserted = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    failed = [c["claim"] for c in results["claims"] if not c["ok"]]
    finals = ", ".join(f"{s} {results[f'acc_{s}'][-1]:.3f}" for s in S)
    aucs = ", ".join(f"{s} {results[f'auc_{s}'].mean():.3f}" for s in S)
    budget = ", ".join(f"{s} {results[f'rollouts_{s}'][-1]:.0f}" for s in S)
    frac = results["balanced_fraction_to_none_final"]
    variance = ", ".join(f"{s} {_nanmean(results[f'batch_variance_{s}']):.3f}" for s in S)
    numbers = (
        f"mean accuracy over steps 1..{results['n_steps']} ({results['n_seeds']} seeds): {aucs}; "
        f"balanced - none = {results['auc_diff']:.4f} (s.e. {results['auc_diff_se']:.4f}; one-sided "
        f"Welch p = {results['welch_p']:.2g}, df {results['welch_df']:.1f}, level {results['alpha']:g}); "
        f"final accuracy {finals}; balanced reaches none's final accuracy after "
        + (f"{frac:.2f} of the steps" if np.isfinite(frac) else "never")
        + f" (Bae v2: about 0.6); rollouts drawn {budget}; balanced's accuracy at none's budget "
        f"{results['balanced_at_none_budget']:.3f} vs none {results['acc_none'][-1]:.3f}; mean "
        f"exact p(1-p) of the batch prompts {variance}."
    )
    if failed:
        return False, f"NOT SUPPORTED ({', '.join(failed)} failed). {asserted}. {numbers}"
    head = "reproduced" if results["reproduced"] else "not reproduced in this toy"
    if results["n_seeds"] < 5:
        numbers = f"(indicative only: {results['n_seeds']} seeds < 5, rule's outcome shown) " + numbers
    return True, f"{head}: {numbers} Asserted: {asserted}."


def plot(results):
    """Mean accuracy against steps and against rollouts; the batch's mean p(1-p)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), layout="constrained")
    steps = np.arange(results["n_steps"] + 1)
    for i, s in enumerate(results["strategies"]):
        style = {"color": f"C{i}", "label": s, "lw": 2 if s in ("none", "balanced") else 1}
        axes[0].plot(steps, results[f"acc_{s}"], **style)
        axes[0].fill_between(steps, results[f"acc_{s}"] - results[f"acc_se_{s}"],
                             results[f"acc_{s}"] + results[f"acc_se_{s}"], color=f"C{i}", alpha=0.2)
        axes[1].plot(results[f"rollouts_{s}"], results[f"acc_{s}"], **style)
        axes[2].plot(steps[1:], results[f"batch_variance_{s}"], **style)
    lo, hi = results["band"]
    axes[0].set(xlabel="gradient step", ylabel="mean exact accuracy over prompts",
                title=f"GRPO, {results['batch']} prompts x {results['n']} rollouts per step, "
                      f"band [{lo:g}, {hi:g}]\nmean ± s.e. over {results['n_seeds']} seeds")
    axes[1].set(xlabel="rollouts drawn (discarded ones included)", ylabel="mean exact accuracy",
                title="the same against compute")
    axes[2].set(xlabel="gradient step", ylabel="mean exact p(1 - p) of the batch prompts",
                title=f"success variance of the batch (all prompts at start: {results['all_var']:.3f})")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.suptitle("Online difficulty filtering (Bae et al. 2025) on a shared-parameter tree", fontsize=10)
    return fig
