"""P1 of Rashidinejad et al. (2021): worst-case sub-optimality of LCB, greedy and imitation on a two-armed offline bandit.

Instance (fixed): arm 0 is Bernoulli(1/2 + D) and optimal, arm 1 Bernoulli(1/2); the data
are N i.i.d. pairs with the behaviour distribution ``mu = (1/C*, 1 - 1/C*)``, so that
``C* = 1/mu[a*]``. For each N the statistic is the worst case over a FIXED gap grid
``D in geomspace(1e-4, 0.45, 55)`` (a fixed instance decays exponentially in N; only the
worst case shows the N^-1/2 law, and a grid that scaled with N would show it for any
algorithm). LCB uses ``delta = 1/N`` and the bonus ``sqrt(log(2 nA / delta) / (2 N_a))``
(Hoeffding with a union bound over arms), scaled by ``bonus_scale``.

Claims checked by :func:`verdict` (bands from the spec sheet's audit, 8 seeds):
- C* = 4: LCB slope in [-0.455, -0.425] (the log factor predicts about -0.445), greedy in
  [-0.53, -0.47]; the most-played arm (imitation) stays at least 0.449 at every N.
- C* = 1.5: LCB in [-0.67, -0.57], greedy in [-0.53, -0.47]; the most-played arm's exact
  error decays exponentially, its log-linear slope within 2% of -kl(1/2 || 1/C*).
- LCB is consistent with its stated upper bound: the upper end of its slope interval is at
  most the bound's local slope on the same N grid plus 0.03.
Band intervals are two-sided percentile bootstrap intervals at level 1e-3, Bonferroni
corrected over the figure's four band claims.
"""
from __future__ import annotations

import numpy as np

from bandits._kernels import kl_bernoulli
from proofs_check.claims import Claim
from proofs_check.theorems.lcb_pessimism import LCB_MAB_UPPER

NAME = "lcb-bandit"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Offline two-armed bandit: LCB's worst-case sub-optimality decays as "
        "sqrt(C* log N / N) (up to logs) for every C*, greedy's as N^-1/2, and imitation "
        "(most-played arm) fails at C* = 4 but is exponentially small at C* = 1.5."
    ),
    source=(
        "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline Reinforcement "
        "Learning and Imitation Learning: A Tale of Pessimism, NeurIPS; MAB upper bound "
        "for LCB and the minimax lower bounds (theorem numbers recalled, not re-checked)."
    ),
    kind="theorem",
    bounds=(LCB_MAB_UPPER,),
)

_BASE = {
    "C_stars": [1.5, 4.0],
    "Ns": [100, 1000, 10000, 100000],
    "gap_min": 1e-4,
    "gap_max": 0.45,
    "n_gaps": 55,
    "R": 20000,
    "bonus_scale": 1.0,
    "level": 1e-3,
}
CONFIGS = {
    "smoke": {**_BASE, "n_boot": 8000},
    "quick": {**_BASE, "n_boot": 40000},
    "paper": {**_BASE, "Ns": [100, 1000, 10000, 100000, 1000000], "R": 100000,
              "n_boot": 40000},
}

AGGREGATE_KEYS = ("n_boot", "level")  # the runner reuses runs when only these change

POLICIES = ("lcb", "greedy", "mpa")
FITTED = ("lcb", "greedy")
# Slope bands (worst case over the gap grid), from the spec sheet's audited re-runs.
BANDS = {
    (4.0, "lcb"): (-0.455, -0.425),
    (4.0, "greedy"): (-0.53, -0.47),
    (1.5, "lcb"): (-0.67, -0.57),
    (1.5, "greedy"): (-0.53, -0.47),
}
MPA_FAILS_FRACTION = 0.449 / 0.45  # C* >= 2: imitation's worst case stays near gap_max
KL_REL_TOL = 0.02  # exponential decay of imitation's error for 1 < C* < 2
UPPER_TOL = 0.03  # slack of the upper-bound slope rule


def gaps(config) -> np.ndarray:
    """The fixed gap grid ``geomspace(gap_min, gap_max, n_gaps)``, shape ``(n_gaps,)``."""
    return np.geomspace(config["gap_min"], config["gap_max"], config["n_gaps"])


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    C_stars, Ns = config["C_stars"], config["Ns"]
    if not C_stars or any(not isinstance(c, (int, float)) or c <= 1 for c in C_stars):
        raise ValueError(f"C_stars must be numbers > 1 (C* = 1 leaves arm 1 unseen, so LCB "
                         f"and greedy never err and no slope exists), got {C_stars}")
    if (len(Ns) < 2 or len(set(Ns)) != len(Ns)
            or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in Ns)):
        raise ValueError(f"Ns must be at least 2 distinct positive ints, got {Ns}")
    if not 0 < config["gap_min"] < config["gap_max"] <= 0.5:
        raise ValueError("the gap grid needs 0 < gap_min < gap_max <= 0.5 (arm 0 is "
                         f"Bernoulli(1/2 + D)), got gap_min={config['gap_min']:g}, "
                         f"gap_max={config['gap_max']:g}")
    for key, low in (("n_gaps", 2), ("R", 2), ("n_boot", 1)):
        if config[key] < low:
            raise ValueError(f"{key} must be at least {low}, got {config[key]}")
    if config["bonus_scale"] <= 0:
        raise ValueError(f"bonus_scale must be positive, got {config['bonus_scale']:g}")
    if not 0 < config["level"] < 1:
        raise ValueError(f"level must be in (0, 1), got {config['level']:g}")


def runs(config) -> list[dict]:
    """One run per (C*, N) cell, each with all R repetitions and the whole gap grid."""
    validate_config(config)
    return [{"C_star": float(c), "N": int(n)} for c in config["C_stars"] for n in config["Ns"]]


def run_one(config, seed) -> dict:
    """Choices of LCB, greedy and the most-played arm on R datasets per gap.

    Returns
    -------
    dict
        ``{policy}_wrong``: bool ``(R, n_gaps)``, True where the policy chose arm 1
        (sub-optimality D); rows are repetitions (the bootstrap's units).
    """
    from bandits import BernoulliBandit, greedy, lcb, most_played_arm, sample_statistics
    from proofs_check.seeding import as_generator

    rng = as_generator(seed)
    C_star, N, R = config["C_star"], config["N"], config["R"]
    mu = np.array([1.0 / C_star, 1.0 - 1.0 / C_star])
    delta = 1.0 / N
    grid = gaps(config)
    wrong = {p: np.empty((R, grid.size), dtype=bool) for p in POLICIES}
    for g, D in enumerate(grid):
        bandit = BernoulliBandit(np.array([0.5 + D, 0.5]))
        counts, sums = sample_statistics(bandit, mu, N, R, seed=rng)
        wrong["lcb"][:, g] = lcb(counts, sums, delta, bonus_scale=config["bonus_scale"]).arms != 0
        wrong["greedy"][:, g] = greedy(counts, sums).arms != 0
        wrong["mpa"][:, g] = most_played_arm(counts).arms != 0
    return {f"{p}_wrong": wrong[p] for p in POLICIES}


def log_mpa_error_probability(N: int, p_opt: float) -> float:
    """Exact ``log P(most-played arm is wrong)`` for two arms, ties to arm 0 (optimal).

    The optimal arm's count is Binomial(N, p_opt); the most-played arm is wrong iff that
    count is below N/2. Computed as a log-sum-exp of binomial log-pmfs (``binom.logcdf``
    underflows at N = 1e5).
    """
    from scipy.special import logsumexp
    from scipy.stats import binom

    k = np.arange(0, (N + 1) // 2)  # counts strictly below N/2
    return float(logsumexp(binom.logpmf(k, N, p_opt)))


def aggregate(runs_out, config) -> dict:
    """Worst-case statistics, bootstrap slope fits and every sub-claim's verdict."""
    from proofs_check.seeding import spawn
    from proofs_check.stats import band_verdict, clopper_pearson, fit_rates, upper_bound_verdict
    from scipy.stats import binom

    C_stars, Ns, R = np.array(config["C_stars"], float), np.array(config["Ns"]), config["R"]
    grid = gaps(config)
    nC, nN = C_stars.size, Ns.size
    level = config["level"]
    n_bands = max(1, sum(1 for c in C_stars for p in FITTED if (float(c), p) in BANDS))
    boot_seed = spawn(config["seed"], len(runs_out) + 1)[-1]  # the runs use children 0..n-1
    res = {"C_stars": C_stars, "Ns": Ns, "gaps": grid, "R": R, "n_boot": config["n_boot"],
           "level": level, "bonus_scale": config["bonus_scale"]}
    claims = []
    for p in POLICIES:
        res[f"stat_{p}"] = np.zeros((nC, nN))
        res[f"argmax_{p}"] = np.zeros((nC, nN), dtype=int)
    for p in FITTED:
        for key in ("slope", "slope_lo", "slope_hi"):
            res[f"{key}_{p}"] = np.full(nC, np.nan)
        res[f"stat_lo_{p}"] = np.zeros((nC, nN))
        res[f"stat_hi_{p}"] = np.zeros((nC, nN))
    res["bound_local_slope"] = np.zeros(nC)
    res["mpa_log_p_exact"] = np.zeros((nC, nN))
    res["mpa_wrong_count"] = np.zeros((nC, nN), dtype=int)
    res["mpa_zero_upper"] = np.full((nC, nN), np.nan)

    cells = [[runs_out[c * nN + i] for i in range(nN)] for c in range(nC)]
    samples = {}
    for c in range(nC):
        for p in POLICIES:
            wrong = np.stack([run[f"{p}_wrong"] for run in cells[c]], axis=1)  # (R, nN, n_gaps)
            means = wrong.mean(axis=0) * grid
            res[f"stat_{p}"][c] = means.max(axis=1)
            res[f"argmax_{p}"][c] = means.argmax(axis=1)
            if p in FITTED:
                samples[c, p] = wrong * grid
    too_narrow = [
        f"C*={C_stars[c]:g} {p} at N={Ns[i]}"
        for p in FITTED for c in range(nC) for i in range(nN) if res[f"argmax_{p}"][c, i] == 0
    ]
    res["grid_too_narrow"] = "; ".join(too_narrow)
    if too_narrow:  # the worst case is not inside the grid: no slope to fit
        res["claims"] = []
        return res
    # One bootstrap for all fitted claims: they share the resampled repetition indices.
    fits = dict(zip(samples, fit_rates(Ns.astype(float), list(samples.values()), grid_axis=2,
                                       n_boot=config["n_boot"], level=level, seed=boot_seed)))
    for (c, p), fit in fits.items():
        C_star = C_stars[c]
        lo, hi = fit.interval(level / n_bands)
        res[f"slope_{p}"][c], res[f"slope_lo_{p}"][c], res[f"slope_hi_{p}"][c] = fit.slope, lo, hi
        res[f"stat_lo_{p}"][c], res[f"stat_hi_{p}"][c] = fit.stat_interval(level)
        if (float(C_star), p) in BANDS:
            ok, text = band_verdict(fit, *BANDS[(float(C_star), p)], n_claims=n_bands, level=level)
            claims.append((f"C*={C_star:g} {p} slope band", ok, text))
        if p == "lcb":
            local = LCB_MAB_UPPER.local_slope("N", Ns.astype(float), C_star=C_star, nA=2, C=1)
            res["bound_local_slope"][c] = local
            ok, text = upper_bound_verdict(fit, local, tol=UPPER_TOL)
            claims.append((f"C*={C_star:g} lcb vs upper bound", ok, text))
    for c, C_star in enumerate(C_stars):
        cell = cells[c]
        # Imitation (most-played arm): exact error, simulated counts at D_max.
        mpa_wrong = np.stack([run["mpa_wrong"][:, -1] for run in cell], axis=1)  # (R, nN)
        res["mpa_wrong_count"][c] = mpa_wrong.sum(axis=0)
        res["mpa_log_p_exact"][c] = [log_mpa_error_probability(int(n), 1 / C_star) for n in Ns]
        for i in range(nN):
            if res["mpa_wrong_count"][c, i] == 0:
                res["mpa_zero_upper"][c, i] = clopper_pearson(0, R, level, sided="upper")[1]
        if C_star >= 2:
            worst = res["stat_mpa"][c].min()
            floor = MPA_FAILS_FRACTION * grid[-1]
            ok = bool(worst >= floor)
            claims.append((f"C*={C_star:g} imitation fails", ok,
                           f"most-played arm's worst-case error min over N {worst:.4f} "
                           f"{'>=' if ok else '<'} {floor:.4f} (0.449 at gap_max 0.45)"))
        elif C_star > 1:
            log_err = np.log(grid[-1]) + res["mpa_log_p_exact"][c]
            slope = float(np.polyfit(Ns.astype(float), log_err, 1)[0])
            target = -kl_bernoulli(0.5, 1 / C_star)
            ok = bool(abs(slope - target) <= KL_REL_TOL * abs(target))
            claims.append((f"C*={C_star:g} imitation decays exponentially", ok,
                           f"slope of log(exact MPA error) in N {slope:.5f} vs "
                           f"-kl(1/2||1/C*) = {target:.5f} (within {KL_REL_TOL:.0%}: {ok})"))
            k0 = int(res["mpa_wrong_count"][c, 0])
            p0 = float(np.exp(res["mpa_log_p_exact"][c, 0]))
            lo, hi = binom.interval(1 - level, R, p0)
            ok = bool(lo <= k0 <= hi)
            claims.append((f"C*={C_star:g} imitation simulated vs exact", ok,
                           f"N={Ns[0]}: {k0} of {R} wrong; exact expectation {R * p0:.2f}, "
                           f"two-sided level-{level:g} binomial interval [{lo:.0f}, {hi:.0f}]"))
    res["claims"] = [{"claim": name, "ok": bool(ok), "text": text} for name, ok, text in claims]
    return res


def verdict(results) -> tuple[bool | None, str]:
    """All sub-claims must hold; a worst case on the grid's smallest gap is undecidable."""
    if results["grid_too_narrow"]:
        return None, ("grid too narrow: the worst case sits on the smallest gap for "
                      + results["grid_too_narrow"] + "; widen gap_min")
    failed = [c for c in results["claims"] if not c["ok"]]
    summary = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    if failed:
        names = ", ".join(c["claim"] for c in failed)
        return False, f"NOT SUPPORTED ({names} failed). {summary}"
    return True, f"SUPPORTED (all {len(results['claims'])} sub-claims hold). {summary}"


def plot(results):
    """Log-log worst-case panels per C*, and a semi-log panel of imitation's exact error."""
    import matplotlib.pyplot as plt

    from figures.style import POLICY_STYLE

    C_stars, Ns, R = results["C_stars"], results["Ns"], int(results["R"])
    fig, axes = plt.subplots(1, C_stars.size + 1, figsize=(5.2 * (C_stars.size + 1), 5.6),
                             layout="constrained")
    for c, ax in enumerate(axes[:-1]):
        for p in POLICIES:
            stat = results[f"stat_{p}"][c]
            label = POLICY_STYLE[p]["label"]
            if p in FITTED:
                label += (f": slope {results[f'slope_{p}'][c]:.3f} "
                          f"[{results[f'slope_lo_{p}'][c]:.3f}, {results[f'slope_hi_{p}'][c]:.3f}]")
                yerr = np.abs(np.vstack([results[f"stat_lo_{p}"][c], results[f"stat_hi_{p}"][c]])
                              - stat)
                ax.errorbar(Ns, stat, yerr=yerr, **POLICY_STYLE[p]["line"], label=label)
            else:
                shown = stat > 0
                ax.plot(Ns[shown], stat[shown], **POLICY_STYLE[p]["line"], label=label)
        ref = results["stat_lcb"][c, 0] * (Ns / Ns[0]) ** results["bound_local_slope"][c]
        ax.plot(Ns, ref, "k:", lw=1,
                label=("guide through LCB at N = %g with the slope of the bound\n"
                       "sqrt(C* log(2nA N)/N) on this N grid: %.3f"
                       % (Ns[0], results["bound_local_slope"][c])))
        ax.set(xscale="log", yscale="log", xlabel="N (samples)",
               ylabel="worst-case E[sub-optimality] over D",
               title=f"C* = {C_stars[c]:g}  (bonus scale {results['bonus_scale']:g})")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    ax = axes[-1]
    for c, C_star in enumerate(C_stars):
        if not 1 < C_star < 2:
            continue
        # log10 on a linear axis: the exact error underflows float64 (about e^-5900 at 1e5).
        log10_exact = (np.log(results["gaps"][-1]) + results["mpa_log_p_exact"][c]) / np.log(10)
        ax.plot(Ns, log10_exact, "o-", color="C2", label=f"exact, C* = {C_star:g}")
        kl = kl_bernoulli(0.5, 1 / C_star)
        ax.plot(Ns, log10_exact[0] - kl * (Ns - Ns[0]) / np.log(10), "k:", lw=1,
                label=f"slope -kl(1/2 || 1/C*) / ln 10 = {-kl / np.log(10):.4f} per sample")
        k = results["mpa_wrong_count"][c]
        seen = k > 0
        ax.plot(Ns[seen], np.log10(results["gaps"][-1] * k[seen] / R), "s", mfc="none",
                color="k", label=f"simulated ({R} repetitions)")
        zeros = np.flatnonzero(~seen)
        if zeros.size:
            upper = np.log10(results["gaps"][-1] * results["mpa_zero_upper"][c, zeros])
            ax.plot(Ns[zeros], upper, "v", color="0.4",
                    label=f"simulated 0 of {R}: Clopper-Pearson upper bound")
        p0 = np.exp(results["mpa_log_p_exact"][c, 0])
        ax.text(0.97, 0.6, f"N = {Ns[0]}: simulated {k[0]} of {R} wrong,\nexact expectation "
                f"{R * p0:.2f}", transform=ax.transAxes, ha="right", va="top", fontsize=7)
        ax.set(xlabel="N (samples)",
               ylabel=f"log10 of most-played arm's error at D = {results['gaps'][-1]:g}",
               title="imitation at 1 < C* < 2 (semi-log)")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.suptitle("LCB vs greedy vs imitation on a two-armed offline bandit "
                 "(Rashidinejad et al. 2021)", fontsize=10)
    return fig
