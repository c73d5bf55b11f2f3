"""BroRL's mass balance against the number of rollouts N (Hu et al. 2025): the identity exactly, its terms and the sampled claims.

Instance (spec sheet ``difficulty_filtering_and_brorl.md``, fixed by ``instance_seed``): one
decision with V = 1000 tokens, logits N(0, 2^2), |C| = 50 correct tokens "mostly in the
tail", read two ways, both reported: ``tail`` (all 50 drawn uniformly below the median
logit; Q_pos about 0.003) and ``mixed`` (40 below, 10 above; Q_pos about 0.04, nearer the
audit's 0.02). The tail reading was fixed first; the mixed one was added for the audit's
Q_pos, and the two disagree on the sampled claim: which tokens go unsampled decides the
sign of the third term, as BroRL says. Rewards R_c = +1 and
R_w = -1 (the audit: with R_w = 0 the unsampled term never wins). For each N in
{2, 4, ..., 4096}, ``n_draws`` independent batches of N rollouts; the set model is BroRL's
update (each distinct sampled token counted once), the count model plain REINFORCE.

Asserted (exact, on every draw): the mass-balance formula equals ``1_C^T J dz`` computed
from the update itself (to 1e-10 of the largest magnitude on either side); the first two
terms are >= 0;
the no-unsampled-token limit ``(eta/N)(R_c - R_w)(Q_neg^2 sum_C p^2 + Q_pos^2 sum_notC
p^2)``; and, for every N, the count model's expected first-order change, computed exactly
from the update itself (it is linear in the counts at fixed N and E[counts] = N p, so
E[dz] = sum_k p_k dz(N e_k) = eta J r), equals ``1_C^T J (eta J r) = eta (R_c - R_w)
(Q_neg^2 sum_C p^2 + Q_pos^2 sum_notC p^2)``.
Empirical (reported): the sampled count-model means against that expectation (z-scores,
normal approximation, which is poor at small N: the change is strongly skewed); BroRL's
claims: P(dQ_pos < 0) is positive at small N and falls to 0 as N grows (set model); the
unsampled term fades relative to the sampled ones; P(some correct token loses probability)
falls with N. Both analyses are first order in eta.

Planted errors (config key ``planted``): ``rewards_1_0`` evaluates the formula with rewards
1/0 while the update uses +1/-1 (the identity fails); ``count_no_baseline`` drops the
``- (sum_n r_n) p`` part of the count update (its expectation fails).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim, asserted_verdict

NAME = "brorl-mass-balance"
CLAIM = Claim(
    name=NAME,
    statement=(
        "BroRL's mass balance: after one update from N rollouts, the first-order change of "
        "the correct mass equals (eta/N)[(R_c - S_R) Q_neg A_2 + (S_R - R_w) Q_pos B_2 + "
        "S_R (Q_pos U_neg,2 - Q_neg U_pos,2)], the first two terms >= 0; reported, with "
        "rewards +1/-1: whether the unsampled term shrinks the correct mass at small N and "
        "fades at large N (it depends on which tokens go unsampled)."
    ),
    source=(
        "Hu et al. (2025), BroRL: Scaling Reinforcement Learning via Broadened Exploration, "
        "arXiv 2510.01180 (mass-balance equation verified from a review quoting it; the "
        "logit update reproducing it is our reconstruction; simulation settings not "
        "verified)."
    ),
    kind="identity",
)

_BASE = {
    "V": 1000, "n_correct": 50, "heads": [0, 10], "logit_scale": 2.0, "instance_seed": 0,
    "R_c": 1.0, "R_w": -1.0, "eta": 1.0,
    "Ns": [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096],
    "n_draws": 2000, "level": 1e-3, "planted": "none",
}
CONFIGS = {
    "smoke": {**_BASE, "Ns": [2, 4, 8, 16, 64, 256, 1024, 4096], "n_draws": 400},
    "quick": {**_BASE},
    "paper": {**_BASE, "n_draws": 10000},
}
AGGREGATE_KEYS = ("level",)
PLANTED = ("none", "rewards_1_0", "count_no_baseline")
TOL = 1e-10  # relative to the largest magnitude on either side of the identity


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
        raise ValueError(f"the identity needs R_c >= 0 >= R_w, got R_c={config['R_c']}, R_w={config['R_w']}")
    if config["n_draws"] < 2 or config["eta"] <= 0:
        raise ValueError("n_draws must be >= 2 and eta > 0")
    if config["planted"] not in PLANTED:
        raise ValueError(f"planted must be one of {PLANTED}, got {config['planted']!r}")


def runs(config) -> list[dict]:
    """One run per (instance, N), all draws of that N."""
    validate_config(config)
    return [{"n_head": int(h), "N": int(n)} for h in config["heads"] for n in config["Ns"]]


def instance(config, n_head: int):
    """The token probabilities ``p`` (V,) and the correct mask ``C`` (V,), with ``n_head``
    correct tokens above the median logit (:func:`tabular.rlvr.brorl.sheet_bandit`)."""
    from tabular.rlvr.brorl import sheet_bandit

    return sheet_bandit(config["V"], config["n_correct"], n_head, config["logit_scale"],
                        np.random.default_rng(config["instance_seed"]))


def draw_counts(config, seed) -> np.ndarray:
    """The token counts of ``n_draws`` batches of ``N`` rollouts, shape (n_draws, V), int."""
    from proofs_check.seeding import as_generator

    p, _ = instance(config, config["n_head"])
    return as_generator(seed).multinomial(config["N"], p, size=config["n_draws"])


def count_update(config, p, counts, correct) -> np.ndarray:
    """The count model's logit update (``tabular.rlvr.brorl.count_update``), or, under the
    planted error ``count_no_baseline``, the same without its ``- (sum_n r_n) p`` part."""
    from tabular.rlvr import brorl

    eta, R_c, R_w = config["eta"], config["R_c"], config["R_w"]
    dz = brorl.count_update(p, counts, correct, R_c, R_w, eta)
    if config["planted"] == "count_no_baseline":
        weighted = counts * brorl.token_rewards(correct, R_c, R_w)
        N = counts.sum(axis=-1, keepdims=True)
        dz = dz + (eta / N) * weighted.sum(axis=-1, keepdims=True) * p
    return dz


def run_one(config, seed) -> dict:
    """All draws for one N: the three terms, the update's own first-order change, count model.

    Returns
    -------
    dict
        ``terms`` (n_draws, 3); ``direct`` (n_draws,) = ``1_C^T J dz`` of the set update;
        ``count_change`` (n_draws,); ``set_down``/``count_down`` (n_draws,) bool: some correct
        token's first-order change is negative; ``count_expectation`` (float): the exact
        ``E[1_C^T J dz]`` of the count update, ``sum_k p_k 1_C^T J dz(N e_k)`` (the update is
        linear in the counts at fixed N and ``E[counts] = N p``).
    """
    from tabular.rlvr import brorl
    from tabular.rlvr._softmax import jvp

    p, correct = instance(config, config["n_head"])
    N, eta, R_c, R_w = config["N"], config["eta"], config["R_c"], config["R_w"]
    counts = draw_counts(config, seed)
    sampled = counts > 0
    formula_rewards = (1.0, 0.0) if config["planted"] == "rewards_1_0" else (R_c, R_w)
    terms = brorl.mass_balance_terms(p, correct, sampled, *formula_rewards, eta, N)
    dz_set = brorl.set_update(p, correct, sampled, R_c, R_w, eta, N)
    dz_count = count_update(config, p, counts, correct)
    all_on_one = count_update(config, p, N * np.eye(p.size, dtype=np.int64), correct)
    return {
        "terms": terms,
        "direct": brorl.first_order_mass_change(p, correct, dz_set),
        "count_change": brorl.first_order_mass_change(p, correct, dz_count),
        "set_down": (jvp(p, dz_set)[:, correct] < 0).any(axis=1),
        "count_down": (jvp(p, dz_count)[:, correct] < 0).any(axis=1),
        "count_expectation": float(p @ brorl.first_order_mass_change(p, correct, all_on_one)),
    }


def _relative_error(run) -> float:
    """max |sum of terms - 1_C^T J dz| over draws, relative to the scale of either side."""
    err = float(np.max(np.abs(run["terms"].sum(axis=1) - run["direct"])))
    scale = max(float(np.max(np.abs(run["terms"]).sum(axis=1))), float(np.max(np.abs(run["direct"]))))
    return err / scale if scale > 0 else err


def _aggregate_instance(runs_out, config, n_head, res, claims, reports):
    """Sub-claims and reports of one instance; arrays go into ``res`` with suffix ``_h``."""
    from scipy.stats import norm

    from proofs_check.stats import clopper_pearson
    from tabular.rlvr import brorl

    Ns = np.array(config["Ns"])
    p, correct = instance(config, n_head)
    eta, R_c, R_w, level = config["eta"], config["R_c"], config["R_w"], config["level"]
    n = config["n_draws"]
    tag = f"[{n_head} head]"
    out = {"Q_pos": float(p[correct].sum())}
    identity_err = max(_relative_error(run) for run in runs_out)
    claims.append((f"{tag} mass-balance identity", identity_err <= TOL,
                   f"max over {len(Ns)} x {n} draws of |formula - 1_C^T J dz|, relative to the "
                   f"largest |dz|-side or |terms| sum at that N: {identity_err:.1e} (tolerance {TOL:g}; formula rewards "
                   f"{'1/0 (planted)' if config['planted'] == 'rewards_1_0' else f'{R_c:g}/{R_w:g}'})"))
    min_sampled = min(float(run["terms"][:, :2].min()) for run in runs_out)
    claims.append((f"{tag} sampled terms non-negative", min_sampled >= -1e-18,
                   f"smallest of the first two terms over all draws: {min_sampled:.2e}"))
    full = brorl.mass_balance_terms(p, correct, np.ones_like(correct), R_c, R_w, eta, 1).sum()
    Q = out["Q_pos"]
    expected = eta * (R_c - R_w) * ((1 - Q) ** 2 * np.sum(p[correct] ** 2) + Q ** 2 * np.sum(p[~correct] ** 2))
    claims.append((f"{tag} no-unsampled-token limit", abs(full - expected) <= TOL * abs(expected),
                   f"all tokens sampled: {full:.6e} vs closed form {expected:.6e}"))
    J = np.diag(p) - np.outer(p, p)
    r = np.where(correct, R_c, R_w)
    jacobian_form = float((J @ (eta * J @ r))[correct].sum())
    exact = np.array([run["count_expectation"] for run in runs_out])
    count_err = float(np.max(np.abs(exact - expected)) / abs(expected))
    count_err_J = abs(jacobian_form - expected) / abs(expected)
    claims.append((f"{tag} count-model expectation", max(count_err, count_err_J) <= TOL,
                   f"E[1_C^T J dz] of the count update, exactly (sum_k p_k dz(N e_k)), for every N, "
                   f"against eta (R_c - R_w)(Q_neg^2 sum_C p^2 + Q_pos^2 sum_notC p^2) = {expected:.6e}: "
                   f"max relative error {count_err:.1e}; 1_C^T J (eta J r) = {jacobian_form:.6e} "
                   f"(relative error {count_err_J:.1e}; tolerance {TOL:g})"))
    means = np.array([run["count_change"].mean() for run in runs_out])
    ses = np.array([run["count_change"].std(ddof=1) / np.sqrt(n) for run in runs_out])
    z = (means - expected) / ses
    z_crit = float(norm.isf(level / (2 * len(Ns) * len(config["heads"]))))
    reports.append((f"{tag} sampled count-model means against the exact expectation",
                    f"max |z| {np.abs(z).max():.2f} over {len(Ns)} values of N ({n} draws each; normal "
                    f"approximation, poor at small N where the change is skewed; |z| <= {z_crit:.2f} "
                    f"would be the Bonferroni bound at two-sided level {level:g}; not asserted)"))
    out["count_mean"], out["count_se"], out["count_expected"] = means, ses, expected
    for key in ("set", "count"):
        k_neg = np.array([int(np.sum((run["direct"] if key == "set" else run["count_change"]) < 0))
                          for run in runs_out])
        k_down = np.array([int(run[f"{key}_down"].sum()) for run in runs_out])
        out[f"{key}_neg"], out[f"{key}_down"] = k_neg / n, k_down / n
        out[f"{key}_neg_ci"] = np.array([clopper_pearson(k, n, level) for k in k_neg])
        out[f"{key}_down_ci"] = np.array([clopper_pearson(k, n, level) for k in k_down])
    out["term_means"] = np.stack([run["terms"].mean(axis=0) * N / eta for run, N in zip(runs_out, Ns)])
    neg = out["set_neg"]
    sd = np.sqrt(np.maximum(neg * (1 - neg), 1.0 / n) / n)
    monotone = bool(np.all(np.diff(neg) <= 2 * np.hypot(sd[1:], sd[:-1])))
    ok = monotone and neg[0] > 0 and neg[-1] == 0
    reports.append((f"{tag} BroRL: the correct mass can shrink at small N, not at large N (set model)",
                    f"{'reproduced' if ok else 'not reproduced in this toy'} (Q_pos = {Q:.4f}): "
                    "P(dQ_pos < 0) = " + ", ".join(f"{v:.3f}" for v in neg)
                    + f" for N = {[int(v) for v in Ns]} (non-increasing within 2 sd: {monotone}); "
                    "count model " + ", ".join(f"{v:.3f}" for v in out["count_neg"])))
    sampled_sum = out["term_means"][:, :2].sum(axis=1)
    ratio = np.abs(out["term_means"][:, 2]) / np.where(sampled_sum > 0, sampled_sum, np.nan)
    reports.append((f"{tag} BroRL: the unsampled term fades as N grows",
                    f"{'reproduced' if ratio[-1] < ratio[0] else 'not reproduced in this toy'}: "
                    f"mean |unsampled| / mean sampled terms {ratio[0]:.3f} at N = {Ns[0]}, "
                    f"{ratio[-1]:.3f} at N = {Ns[-1]}"))
    reports.append((f"{tag} P(some correct token loses probability)",
                    "set model " + ", ".join(f"{v:.3f}" for v in out["set_down"])
                    + "; count model " + ", ".join(f"{v:.3f}" for v in out["count_down"])))
    for key, value in out.items():
        res[f"{key}_{n_head}"] = value


def aggregate(runs_out, config) -> dict:
    """Identity errors, sign checks, probabilities with Clopper-Pearson intervals, verdicts."""
    nN = len(config["Ns"])
    res = {"Ns": np.array(config["Ns"]), "heads": np.array(config["heads"]),
           "n_draws": config["n_draws"], "level": config["level"], "R_c": config["R_c"],
           "R_w": config["R_w"]}
    claims, reports = [], []
    for i, h in enumerate(config["heads"]):
        _aggregate_instance(runs_out[i * nN:(i + 1) * nN], config, int(h), res, claims, reports)
    res["claims"] = [{"claim": a, "ok": bool(b), "text": c} for a, b, c in claims]
    res["reports"] = [{"claim": a, "text": b} for a, b in reports]
    return res


def verdict(results) -> tuple[bool | None, str]:
    """The identity and its companions decide; BroRL's empirical claims are reported."""
    return asserted_verdict(results["claims"], results["reports"])


def plot(results):
    """Per instance: P(dQ_pos < 0) and P(some correct token falls) against N; the mean terms."""
    import matplotlib.pyplot as plt

    Ns, heads = results["Ns"], results["heads"]
    fig, axes = plt.subplots(len(heads), 3, figsize=(17, 4.6 * len(heads)), layout="constrained",
                             squeeze=False)
    names = ["(R_c - S_R) Q_neg A_2", "(S_R - R_w) Q_pos B_2", "S_R (Q_pos U_neg,2 - Q_neg U_pos,2)"]
    for row, h in zip(axes, heads):
        head = f"{h} correct tokens above the median, Q_pos = {results[f'Q_pos_{h}']:.4f}"
        for ax, what, title in ((row[0], "neg", "P(first-order dQ_pos < 0)"),
                                (row[1], "down", "P(some correct token's p decreases)")):
            for key, color, marker in (("set", "C0", "o"), ("count", "C3", "s")):
                value = results[f"{key}_{what}_{h}"]
                ci = results[f"{key}_{what}_ci_{h}"]
                label = "set model (BroRL)" if key == "set" else "count model (REINFORCE)"
                ax.errorbar(Ns, value, yerr=np.abs(ci.T - value), color=color, marker=marker,
                            capsize=2, label=label)
            ax.set(xscale="log", xlabel="N (rollouts)", ylabel="probability", title=f"{title}\n{head}")
            ax.legend(fontsize=8, title=f"{results['n_draws']} draws per N; Clopper-Pearson "
                      f"{1 - results['level']:.1%}", title_fontsize=7)
        ax = row[2]
        for j, (name, color) in enumerate(zip(names, ("C0", "C1", "C2"))):
            ax.plot(Ns, results[f"term_means_{h}"][:, j], marker="o", color=color, label=name)
        ax.plot(Ns, results[f"term_means_{h}"].sum(axis=1), color="k", lw=2, label="sum (set model)")
        ax.axhline(results[f"count_expected_{h}"], color="C3", ls="--",
                   label="count model: eta (R_c - R_w)(Q_neg^2 sum_C p^2 + Q_pos^2 sum p^2)")
        ax.set(xscale="log", xlabel="N (rollouts)", ylabel="mean term x N / eta",
               title=f"mass-balance terms (R_c = {results['R_c']:g}, R_w = {results['R_w']:g})\n{head}")
        ax.legend(fontsize=7)
    fig.suptitle("BroRL mass balance against the number of rollouts (Hu et al. 2025)", fontsize=10)
    return fig
