"""BroRL's rollout-count claim over training (Hu et al. 2025): the rate at which an update loses correct mass, against the number of rollouts N, with rewards +1/-1.

Instance: the sheet's bandit, :func:`tabular.rlvr.brorl.sheet_bandit` (shared with
:mod:`figures.brorl_mass_balance`; V = 1000 tokens, logits N(0, 2^2), |C| = 50 correct
tokens "mostly in the tail", two readings: ``heads`` = 0 or 10 correct tokens above the median logit), rewards
R_c = +1, R_w = -1 (the audit: with R_w = 0 the unsampled term never wins). For each N in
{2, 4, ..., 4096} and each update model, ``n_seeds`` runs of ``n_steps`` = 200 updates from
the same start; each step draws N rollouts from the current policy.

Update models (:mod:`tabular.rlvr.brorl`): ``set`` is BroRL's update (each distinct sampled
token once), ``count`` plain REINFORCE. The sheet's pitfall: BroRL's ``eta/N`` prefactor
makes raw steps shrink with N, so the step is matched instead: the set model uses
``eta = eta0 N`` (``dz = eta0 J (r 1[sampled])``) and the count model ``eta = eta0``
(``E[dz] = eta0 J r``), so both tend to the same full-batch step ``eta0 J r`` as N grows.
``eta0`` is fixed in advance, not tuned: ``eta0 = max_logit_step / ((R_c - R_w) max_k
p_k)`` with ``max_logit_step`` = 0.5, so no set-model step at the start moves a logit by
more than 0.5 (``|dz_k| <= eta0 p_k (R_c - R_w)``; BroRL's analysis is first order). (A
first rule, "the full-batch step moves no logit by more than 0.5", was dropped before any
result was read: the full-batch step nearly cancels on wrong tokens, so it gave steps of
hundreds of logits at small N, and the identity check failed in floating point.)

Empirical claim (BroRL: as N grows the unsampled term fades, guaranteeing correct-mass
expansion; large N raises the probability of all correct tokens). Decision rule, fixed in
advance, per instance, on the set model: "reproduced" iff (a) the loss rate (share of steps
whose exact change of Q_pos = sum_C p is below -1e-12 Q_pos, i.e. negative beyond rounding,
over steps and seeds) is positive at the
smallest N and 0 at the largest; (b) no neighbour pair (N, 2N) shows a significant increase:
the per-seed loss rates (share of that seed's steps) give a mean and a standard error over
seeds (the steps of one seed are serially correlated, so they are not treated as independent
trials), and an increase counts when it exceeds ``z * sqrt(se_N^2 + se_2N^2)`` with ``z`` the
one-sided normal quantile at level ``RULE_LEVEL`` = 0.01 Bonferroni-divided by the number of
neighbour pairs (normal approximation over the seeds; with one seed (b) is undecidable and
not held against the rule); (c) at the largest N every correct token ends above its
start in every seed. The verdict says "reproduced" when every instance passes. The count
model, the first-order loss rate and P(some correct token loses probability) are reported.

Asserted along every step (exit 1): BroRL's mass-balance formula equals ``1_C^T J dz`` of
the set update (relative 1e-10), its first two terms are >= 0, and the true change of
Q_pos differs from the first-order one by at most ``range(dz)^2 / 8`` (the second
derivative of ``E_p[1_C]`` along ``dz`` is a third joint cumulant, bounded by
``Var_p(dz) <= range(dz)^2 / 4``). Planted error (config ``planted = "set_no_baseline"``):
the set update without its ``- p_k S_R`` part, which the formula no longer describes.
Left out (time): the sheet's tree extension (GRPO on V = 4, D = 6, N = 8 against 512).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "brorl-rollouts"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Training a 1000-token softmax bandit with rewards +1/-1 for 200 steps, BroRL's "
        "set update loses correct mass on a positive share of steps at N = 2 rollouts and on "
        "none at large N, non-increasing in N, and at large N every correct token gains "
        "probability; the mass-balance identity holds at every step."
    ),
    source=(
        "Hu et al. (2025), BroRL: Scaling Reinforcement Learning via Broadened Exploration, "
        "arXiv 2510.01180 (claims and mass-balance equation verified from a review quoting "
        "it; update reconstructed; simulation settings and step size not verified)."
    ),
    kind="empirical",
)

MODELS = ("set", "count")
PLANTED = ("none", "set_no_baseline")
_BASE = {
    "V": 1000, "n_correct": 50, "heads": [0, 10], "logit_scale": 2.0, "instance_seed": 0,
    "R_c": 1.0, "R_w": -1.0, "max_logit_step": 0.5,
    "Ns": [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    "n_steps": 200, "n_seeds": 10, "planted": "none",
}
CONFIGS = {
    "smoke": {**_BASE, "Ns": [2, 16, 256, 4096], "n_steps": 40, "n_seeds": 3},
    "quick": {**_BASE},
    "paper": {**_BASE, "n_seeds": 50},
}
REL_TOL = 1e-10
RULE_LEVEL = 0.01  # family-wise level of rule (b)'s neighbour comparisons
ROUND_TOL = 1e-12  # a change counts as a loss when below -ROUND_TOL * Q_pos (rounding)


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    if not 2 <= config["n_correct"] < config["V"]:
        raise ValueError(f"n_correct must lie in [2, V), got {config['n_correct']}")
    for h in config["heads"]:
        if not 0 <= h <= config["n_correct"] or max(h, config["n_correct"] - h) > config["V"] // 2:
            raise ValueError("every entry of heads must lie in [0, n_correct] with at most V/2 "
                             f"correct tokens in each half, got {h}")
    Ns = config["Ns"]
    if not Ns or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in Ns):
        raise ValueError(f"Ns must be positive ints, got {Ns}")
    if not config["R_c"] >= 0 >= config["R_w"]:
        raise ValueError(f"the identity needs R_c >= 0 >= R_w, got R_c={config['R_c']}, "
                         f"R_w={config['R_w']}")
    if len(config["Ns"]) < 2 or sorted(set(config["Ns"])) != list(config["Ns"]):
        raise ValueError(f"Ns must be at least 2 increasing distinct ints, got {config['Ns']}")
    for key in ("n_steps", "n_seeds"):
        if not isinstance(config[key], int) or config[key] < 1:
            raise ValueError(f"{key} must be a positive int, got {config[key]!r}")
    if not config["max_logit_step"] > 0:
        raise ValueError(f"max_logit_step must be > 0, got {config['max_logit_step']}")
    if config["planted"] not in PLANTED:
        raise ValueError(f"planted must be one of {PLANTED}, got {config['planted']!r}")


def runs(config) -> list[dict]:
    """One run per (instance, model, N), all seeds of that cell."""
    validate_config(config)
    return [{"n_head": int(h), "model": m, "N": int(n)}
            for h in config["heads"] for m in MODELS for n in config["Ns"]]


def start(config, n_head: int):
    """``(p, correct, eta0)``: the instance and the step scale fixed by ``max_logit_step``."""
    from tabular.rlvr.brorl import sheet_bandit

    p, correct = sheet_bandit(config["V"], config["n_correct"], n_head, config["logit_scale"],
                              np.random.default_rng(config["instance_seed"]))
    return p, correct, config["max_logit_step"] / ((config["R_c"] - config["R_w"]) * p.max())


def update(config, p, correct, counts, eta0) -> np.ndarray:
    """The logit step of ``config["model"]`` from token counts (V,), matched step size."""
    from tabular.rlvr import brorl

    N, R_c, R_w = int(counts.sum()), config["R_c"], config["R_w"]
    if config["model"] == "count":
        return brorl.count_update(p, counts, correct, R_c, R_w, eta0)
    sampled = counts > 0
    dz = brorl.set_update(p, correct, sampled, R_c, R_w, eta0 * N, N)
    if config["planted"] == "set_no_baseline":
        r = brorl.token_rewards(correct, R_c, R_w)
        dz = dz + eta0 * p * np.sum(np.where(sampled, p * r, 0.0))
    return dz


def run_one(config, seed) -> dict:
    """``n_seeds`` trajectories of ``n_steps`` updates for one (instance, model, N).

    Returns
    -------
    dict
        ``exact``, ``first`` (n_seeds, n_steps): true and first-order changes of Q_pos;
        ``down`` (n_seeds, n_steps) bool: some correct token's probability fell (exactly);
        ``Q_pos``, ``min_correct`` (n_seeds, n_steps + 1); ``gained_all`` (n_seeds,) bool:
        every correct token ends above its start; ``identity_err`` (max relative error of
        the mass balance, set model), ``min_sampled_term``, ``remainder_excess`` (max of
        ``|exact - first| - range(dz)^2/8``).
    """
    from proofs_check.seeding import as_generator
    from tabular.rlvr import brorl
    from tabular.rlvr._softmax import softmax

    rng = as_generator(seed)
    p0, correct, eta0 = start(config, config["n_head"])
    N, S, T = config["N"], config["n_seeds"], config["n_steps"]
    out = {k: np.zeros((S, T)) for k in ("exact", "first")}
    out["down"] = np.zeros((S, T), dtype=bool)
    out["Q_pos"], out["min_correct"] = np.zeros((S, T + 1)), np.zeros((S, T + 1))
    out["gained_all"] = np.zeros(S, dtype=bool)
    identity_err, min_term, excess = 0.0, np.inf, -np.inf
    for s in range(S):
        z = np.log(p0)
        p = first_p = softmax(z)  # not p0: a zero step must leave p bit-identical
        out["Q_pos"][s, 0], out["min_correct"][s, 0] = p[correct].sum(), p[correct].min()
        for t in range(T):
            counts = rng.multinomial(N, p)
            dz = update(config, p, correct, counts, eta0)
            first = brorl.first_order_mass_change(p, correct, dz)
            if config["model"] == "set":
                terms = brorl.mass_balance_terms(p, correct, counts > 0, config["R_c"],
                                                 config["R_w"], eta0 * N, N)
                scale = max(np.abs(terms).sum(), abs(first))
                identity_err = max(identity_err, abs(terms.sum() - first) / scale if scale > 0 else 0.0)
                min_term = min(min_term, terms[:2].min())
            z = z + dz
            new = softmax(z)
            exact = new[correct].sum() - p[correct].sum()
            excess = max(excess, abs(exact - first) - np.ptp(dz) ** 2 / 8)
            out["exact"][s, t], out["first"][s, t] = exact, first
            out["down"][s, t] = np.any(new[correct] < p[correct] * (1 - ROUND_TOL))
            p = new
            out["Q_pos"][s, t + 1], out["min_correct"][s, t + 1] = p[correct].sum(), p[correct].min()
        out["gained_all"][s] = np.all(p[correct] > first_p[correct])
    out.update(identity_err=identity_err, min_sampled_term=min_term if np.isfinite(min_term) else 0.0,
               remainder_excess=excess)
    return out


def _instance_result(cells, config, h, res):
    """Rates per N for both models of instance ``h``; the rule's parts (a)-(c)."""
    for model in MODELS:
        group = cells[model]
        for key, what in (("loss", "exact"), ("loss_first", "first")):
            res[f"{key}_{model}_{h}"] = np.array([np.mean(c[what] < -ROUND_TOL * c["Q_pos"][:, :-1])
                                                  for c in group])
        res[f"down_{model}_{h}"] = np.array([np.mean(c["down"]) for c in group])
        res[f"Q_pos_{model}_{h}"] = np.stack([c["Q_pos"].mean(axis=0) for c in group])
        res[f"min_correct_{model}_{h}"] = np.stack([c["min_correct"].mean(axis=0) for c in group])
        res[f"gained_all_{model}_{h}"] = np.array([np.mean(c["gained_all"]) for c in group])
    from scipy.stats import norm

    loss = res[f"loss_set_{h}"]
    per_seed = np.stack([np.mean(c["exact"] < -ROUND_TOL * c["Q_pos"][:, :-1], axis=1)
                         for c in cells["set"]])  # (len(Ns), n_seeds)
    S = per_seed.shape[1]
    se = per_seed.std(axis=1, ddof=1) / np.sqrt(S) if S > 1 else np.full(len(loss), np.inf)
    z = norm.isf(RULE_LEVEL / max(len(loss) - 1, 1))
    res[f"loss_se_set_{h}"] = se
    a = bool(loss[0] > 0 and loss[-1] == 0)
    b = bool(np.all(np.diff(loss) <= z * np.hypot(se[1:], se[:-1])))
    c = bool(res[f"gained_all_set_{h}"][-1] == 1.0)
    res[f"rule_{h}"] = np.array([a, b, c])
    res[f"Q0_{h}"] = float(res[f"Q_pos_set_{h}"][0, 0])
    return a and b and c


def aggregate(runs_out, config) -> dict:
    """Rates against N per instance and model; the asserted per-step checks."""
    Ns, heads = config["Ns"], config["heads"]
    res = {"Ns": np.array(Ns), "heads": np.array(heads), "n_steps": config["n_steps"],
           "n_seeds": config["n_seeds"], "R_c": config["R_c"], "R_w": config["R_w"],
           "max_logit_step": config["max_logit_step"]}
    k, ok_all = 0, True
    for h in heads:
        cells = {}
        for model in MODELS:
            cells[model] = runs_out[k:k + len(Ns)]
            k += len(Ns)
        ok_all &= _instance_result(cells, config, int(h), res)
    res["reproduced"] = ok_all
    identity = max(float(r["identity_err"]) for r in runs_out)
    min_term = min(float(r["min_sampled_term"]) for r in runs_out)
    excess = max(float(r["remainder_excess"]) for r in runs_out)
    res["claims"] = [
        {"claim": "mass-balance identity at every step", "ok": identity <= REL_TOL,
         "text": f"max relative error {identity:.1e} (tolerance {REL_TOL:g})"},
        {"claim": "sampled terms non-negative", "ok": min_term >= -1e-18,
         "text": f"smallest of the first two terms {min_term:.2e}"},
        {"claim": "second-order remainder bound", "ok": excess <= 1e-15,
         "text": f"max of |exact - first order| - range(dz)^2/8 over all steps: {excess:.2e}"},
    ]
    return res


def _fmt(values) -> str:
    return ", ".join(f"{v:.3f}" for v in values)


def verdict(results) -> tuple[bool | None, str]:
    """The per-step identities decide the exit code; the rule (a)-(c) gives the words."""
    Ns = [int(n) for n in results["Ns"]]
    asserted = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    parts = []
    for h in results["heads"]:
        a, b, c = results[f"rule_{h}"]
        parts.append(
            f"[{h} head, Q_pos = {results[f'Q0_{h}']:.4f}] "
            f"{'reproduced' if a and b and c else 'not reproduced'} ((a) {bool(a)}, (b) {bool(b)}, "
            f"(c) {bool(c)}): set-model loss rate {_fmt(results[f'loss_set_{h}'])}, first order "
            f"{_fmt(results[f'loss_first_set_{h}'])}; count model {_fmt(results[f'loss_count_{h}'])}; "
            f"P(some correct token falls) set {_fmt(results[f'down_set_{h}'])}, count "
            f"{_fmt(results[f'down_count_{h}'])}; share of seeds where every correct token gained: "
            f"set {_fmt(results[f'gained_all_set_{h}'])}; final Q_pos set "
            f"{_fmt(results[f'Q_pos_set_{h}'][:, -1])}, count {_fmt(results[f'Q_pos_count_{h}'][:, -1])}")
    numbers = (f"N = {Ns}, {results['n_steps']} steps x {results['n_seeds']} seeds, rewards "
               f"{results['R_c']:g}/{results['R_w']:g}: " + "; ".join(parts) + ".")
    failed = [c["claim"] for c in results["claims"] if not c["ok"]]
    if failed:
        return False, f"NOT SUPPORTED ({', '.join(failed)} failed). {asserted}. {numbers}"
    head = "reproduced" if results["reproduced"] else "not reproduced in this toy"
    return True, f"{head}: {numbers} Asserted: {asserted}."


def plot(results):
    """Per instance: loss rates against N; Q_pos and min_C p over training for each N."""
    import matplotlib.pyplot as plt

    Ns, heads = results["Ns"], results["heads"]
    fig, axes = plt.subplots(len(heads), 3, figsize=(17, 4.6 * len(heads)), layout="constrained",
                             squeeze=False)
    steps = np.arange(results["n_steps"] + 1)
    colors = plt.cm.viridis(np.linspace(0, 1, len(Ns)))
    for row, h in zip(axes, heads):
        head = f"{h} correct tokens above the median, Q_pos(0) = {results[f'Q0_{h}']:.4f}"
        ax = row[0]
        for model, color in (("set", "C0"), ("count", "C3")):
            ax.plot(Ns, results[f"loss_{model}_{h}"], marker="o", color=color,
                    label=f"{model} model: P(Q_pos falls)")
            ax.plot(Ns, results[f"down_{model}_{h}"], marker="s", ls="--", color=color,
                    label=f"{model} model: P(some correct p falls)")
        ax.set(xscale="log", xlabel="N (rollouts per step)", ylabel="share of steps",
               title=f"correct-mass loss rate over {results['n_steps']} steps\n{head}")
        ax.legend(fontsize=7)
        for ax, key, label in ((row[1], "Q_pos", "Q_pos"), (row[2], "min_correct", "min_{i in C} p_i")):
            for j, N in enumerate(Ns):
                ax.plot(steps, results[f"{key}_set_{h}"][j], color=colors[j], label=f"N = {N}")
            ax.set(xlabel="step", ylabel=f"{label} (set model, mean over seeds)", yscale="log",
                   title=f"{label} during training\n{head}")
            ax.legend(fontsize=6, ncol=2)
    fig.suptitle(f"BroRL: rollouts per step against correct-mass loss (R_c = {results['R_c']:g}, "
                 f"R_w = {results['R_w']:g}; matched step, max initial |dz| = "
                 f"{results['max_logit_step']:g})", fontsize=10)
    return fig
