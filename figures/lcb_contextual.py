"""P2 and P3 of Rashidinejad et al. (2021): LCB's sub-optimality on offline contextual bandits, for expert data (C* = 1) and for C* = 2.

Data: N i.i.d. triples with ``(s, a) ~ mu`` jointly; ``C* = max_s rho(s) / mu(s, pi*(s))``
(the spec sheet's audit reading). LCB uses per-context Hoeffding bonuses
``sqrt(log(2 S nA / delta) / (2 N[s, a]))`` with ``delta = 1/N``, scaled by ``bonus_scale``;
unseen contexts get action 0.

- P2 (C* = 1, missing mass, S in {5, 20}): the instance is re-drawn for each N: S - 1 rare
  contexts with ``rho = 1/N``, optimal action 1 there (so "action 0" on an unseen context
  is wrong, the audit's point), expert data. The exact expected sub-optimality is
  ``(S - 1)(1/N)(1 - 1/N)^N``, about ``(S - 1)/(e N)``.
- P3 (C* = 2, S in {2, 10}): in each of S uniform contexts the two-armed instance
  Bernoulli(1/2) vs Bernoulli(1/2 + D) (action 1 optimal), ``mu(a* | s) = 1/2``. The
  statistic is the worst case over a FIXED gap grid ``D in geomspace(1e-3, 0.45, 40)``.

Claims checked by :func:`verdict` (all asserted):
- P2 level: LCB's mean sub-optimality equals the exact formula at every N (two-sided z test
  of the mean over R repetitions, for each S).
- P2 and P3 slope bands: LCB's log-log slope lies in ``p2_slope +- 0.1`` (sheet: -1) for
  each P2 S, and its worst-case slope in ``p3_slope +- 0.1`` (sheet: -1/2) for each P3 S.
- LCB is consistent with the stated upper bound ``sqrt(S (C* - 1)/N) + S/N`` (up to logs
  and constants): the upper end of its slope interval is at most the bound's asymptotic
  rate in N (-1 at C* = 1, -1/2 at C* > 1) plus 0.03. The rate, not the local slope on the
  grid, because the relative constant of the two terms is unknown and shapes that slope.
False alarms: the figure's overall level is ``level`` (1e-3), split by Bonferroni over its
``n_tests = 2 |p2_S| + |p3_S|`` tests (6 in every configuration, so each at 1.67e-4): one
z-test family per P2 S (its level split again over the N cells), and one two-sided
percentile bootstrap interval of the slope per fitted curve, which its band rule and its
upper-bound rule both read: the upper-bound rule fails on a true claim only when that
interval misses the true slope from above, the band rule when it misses it or, covering
it, pokes out of the band (a matter of power: the intervals are 0.01 to 0.05 wide against
a 0.2-wide band). ``n_boot`` must leave at least one resample in each tail at
``level / n_tests``. Greedy and behaviour cloning (most-played action) are drawn in P3 for
comparison, not asserted; on expert data (P2) all three methods choose the same actions.
If LCB's worst case over the gap grid sits on either end of the grid (smallest or largest
gap) for some P3 cell, the grid is too narrow to locate it: the verdict is undecidable
(``ok = None``, exit 2), as in lcb-bandit.

Observed (smoke and quick, seed 0): P2 slopes -1.00 for S = 5 and 20, levels within 3%
(smoke) and 1% (quick) of (S - 1)/(e N); P3 LCB slopes -0.51 (S = 2) and -0.55 (S = 10), as the audit's
-0.50 and -0.54; greedy is as good as LCB here (two actions per context: the sheet's
pitfall). Behaviour cloning stays flat near gap_max / 2 because ``mu(a* | s) = 1/2``
makes the most-played action a fair coin flip in each context (wrong with probability
about 1/2 whatever N). Ties ``N[s, 0] = N[s, 1]``, which go to the sub-optimal action 0,
add only half the tie probability to that 1/2: 0.064 at N = 100, S = 10 (exact binomial
sum), 0.002 at N = 1e5.
Planted errors: ``rare_action=0`` (the audit's pitfall) fails P2's level and slope claims;
``p3_slope=-1`` (a wrong stated rate) fails the P3 bands (both in the default tests);
``bonus_scale=4`` (over-pessimism) with ``Ns = [1e3, 1e4, 1e5]`` steepens P3 at S = 10 out
of its band (slope -0.61; slow test); with the default Ns its worst case at N = 100 sits on
the largest gap (even at gap_max = 0.5), so that run is undecidable (exit 2). A too-small
bonus is NOT caught (greedy has the same -1/2 slope on this instance).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim
from proofs_check.theorems.lcb_pessimism import CB_MISSING_MASS, LCB_CB_UPPER

NAME = "lcb-contextual"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Offline contextual bandit, (s, a) ~ mu jointly: with expert data (C* = 1, "
        "missing-mass instance) LCB's expected sub-optimality is (S-1)(1/N)(1-1/N)^N, slope "
        "-1 in N; at C* = 2 its worst case over a fixed gap grid decays as N^-1/2."
    ),
    source=(
        "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline Reinforcement "
        "Learning and Imitation Learning: A Tale of Pessimism, NeurIPS; contextual-bandit "
        "upper bound for LCB (recalled, theorem number not re-checked), hard instances "
        "derived in the spec sheet, C* in the sheet's joint reading (not verified)."
    ),
    kind="theorem",
    bounds=(LCB_CB_UPPER, CB_MISSING_MASS),
)

_BASE = {
    "p2_S": [5, 20],
    "p3_S": [2, 10],
    "C_star": 2.0,
    "Ns": [100, 1000, 10000, 100000],
    "gap_min": 1e-3,
    "gap_max": 0.45,
    "n_gaps": 40,
    "R": 1000,
    "bonus_scale": 1.0,
    "rare_action": 1,
    "p2_slope": -1.0,  # the sheet's P2 slope; a wrong value is a planted error
    "p3_slope": -0.5,  # the sheet's P3 slope
    "level": 1e-3,
    "n_boot": 12000,  # one resample per tail at 1e-3 / 6 (two-sided)
}
CONFIGS = {
    "smoke": dict(_BASE),
    "quick": {**_BASE, "R": 10000, "n_boot": 12000},
    # N up to 1e6 moves the worst gap near 2e-3 (S = 2), so the grid reaches down to 1e-4.
    "paper": {**_BASE, "Ns": [100, 1000, 10000, 100000, 1000000], "R": 20000,
              "gap_min": 1e-4, "n_gaps": 55, "n_boot": 40000},
}

# The runner reuses runs when only these change.
AGGREGATE_KEYS = ("n_boot", "level", "p2_slope", "p3_slope")

POLICIES = ("lcb", "greedy", "mpa")
SLOPE_TOL = 0.1  # half-width of the slope bands (spec sheet P2, P3)
UPPER_TOL = 0.03  # slack of the upper-bound slope rule, as in lcb-bandit


def gaps(config) -> np.ndarray:
    """The fixed gap grid ``geomspace(gap_min, gap_max, n_gaps)``, shape ``(n_gaps,)``."""
    return np.geomspace(config["gap_min"], config["gap_max"], config["n_gaps"])


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def n_tests(config) -> int:
    """Number of tests the overall ``level`` is split over (Bonferroni): one z-test family
    per P2 S and one slope interval per fitted curve (P2 and P3)."""
    return 2 * len(config["p2_S"]) + len(config["p3_S"])


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    Ns = config["Ns"]
    if len(Ns) < 2 or len(set(Ns)) != len(Ns) or not all(_is_int(n) and n >= 1 for n in Ns):
        raise ValueError(f"Ns must be at least 2 distinct positive ints, got {Ns}")
    for key, low in (("p2_S", 2), ("p3_S", 1)):
        values = config[key]
        if not all(_is_int(s) and s >= low for s in values) or len(set(values)) != len(values):
            raise ValueError(f"{key} must be distinct ints >= {low}, got {values}")
    if not config["p2_S"] and not config["p3_S"]:
        raise ValueError("p2_S and p3_S are both empty: nothing to check")
    if config["p2_S"] and min(Ns) < max(config["p2_S"]):
        raise ValueError(f"the missing-mass instance needs N >= S: min(Ns) = {min(Ns)} < "
                         f"max(p2_S) = {max(config['p2_S'])}")
    if not 1 < config["C_star"] < np.inf:
        raise ValueError(f"C_star must be > 1 (P3 is the C* > 1 regime), got {config['C_star']:g}")
    if not 0 < config["gap_min"] < config["gap_max"] <= 0.5:
        raise ValueError("the gap grid needs 0 < gap_min < gap_max <= 0.5 (the optimal action "
                         f"is Bernoulli(1/2 + D)), got gap_min={config['gap_min']:g}, "
                         f"gap_max={config['gap_max']:g}")
    for key, low in (("n_gaps", 2), ("R", 2), ("n_boot", 1)):
        if not _is_int(config[key]) or config[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {config[key]}")
    if not 0 < config["bonus_scale"] < np.inf:
        raise ValueError(f"bonus_scale must be positive, got {config['bonus_scale']:g}")
    if config["rare_action"] not in (0, 1):
        raise ValueError(f"rare_action must be 0 or 1, got {config['rare_action']}")
    if not 0 < config["level"] < 1:
        raise ValueError(f"level must be in (0, 1), got {config['level']:g}")
    for key in ("p2_slope", "p3_slope"):
        if not np.isfinite(config[key]):
            raise ValueError(f"{key} must be a finite number, got {config[key]}")
    each = config["level"] / n_tests(config)
    if each / 2 * config["n_boot"] < 1:
        raise ValueError(f"n_boot = {config['n_boot']} leaves no resample in a tail of the "
                         f"two-sided interval at level / n_tests = {config['level']:g} / "
                         f"{n_tests(config)}: use n_boot >= {int(np.ceil(2 / each))}")


def runs(config) -> list[dict]:
    """One run per (panel, S, N) cell, each with all R repetitions (and, in P3, all gaps)."""
    validate_config(config)
    return ([{"panel": "p2", "S": int(s), "N": int(n)} for s in config["p2_S"] for n in config["Ns"]]
            + [{"panel": "p3", "S": int(s), "N": int(n)} for s in config["p3_S"] for n in config["Ns"]])


def run_one(config, seed) -> dict:
    """R datasets of one (panel, S, N) cell.

    Returns
    -------
    dict
        ``panel`` (str), ``S`` and ``N`` (int): the cell, so that :func:`aggregate` does
        not depend on the order of the runs.
        P2: ``lcb_subopt`` float64 ``(R,)``, LCB's exact sub-optimality per dataset.
        P3: ``{policy}_wrong`` int16 ``(R, n_gaps)``, the number of contexts (out of S)
        where the policy chose the sub-optimal action; the sub-optimality is
        ``D * wrong / S`` (uniform contexts).
    """
    from bandits import contextual as cb
    from proofs_check.seeding import as_generator

    rng = as_generator(seed)
    S, N, R = config["S"], config["N"], config["R"]
    cell = {"panel": config["panel"], "S": S, "N": N}
    if config["panel"] == "p2":
        bandit, mu = cb.missing_mass_instance(S, N, rare_action=config["rare_action"])
        counts, sums = cb.sample_statistics(bandit, mu, N, R, seed=rng)
        policy = cb.lcb(counts, sums, bonus_scale=config["bonus_scale"]).policy
        return {**cell, "lcb_subopt": cb.suboptimality(bandit, policy)}
    grid = gaps(config)
    wrong = {p: np.empty((R, grid.size), dtype=np.int16) for p in POLICIES}
    for g, D in enumerate(grid):
        bandit, mu = cb.two_action_instance(S, config["C_star"], D)
        counts, sums = cb.sample_statistics(bandit, mu, N, R, seed=rng)
        pi_star = bandit.optimal_policy
        choices = {"lcb": cb.lcb(counts, sums, bonus_scale=config["bonus_scale"]),
                   "greedy": cb.greedy(counts, sums), "mpa": cb.most_played_arm(counts)}
        for p, choice in choices.items():
            wrong[p][:, g] = (choice.policy != pi_star).sum(axis=1)
    return {**cell, **{f"{p}_wrong": wrong[p] for p in POLICIES}}


def _level_claims(res, p2_cells, level_each) -> list:
    """P2: the simulated mean equals the exact formula at every N, one family per S at
    ``level_each``, split over its N cells (two-sided z tests)."""
    from scipy.stats import norm

    p2_S, Ns = res["p2_S"], res["Ns"]
    z = norm.ppf(1 - level_each / Ns.size / 2)
    claims = []
    for k, S in enumerate(p2_S):
        bad = []
        for i, N in enumerate(Ns):
            x = p2_cells[k][i]
            mean, se = x.mean(), x.std(ddof=1) / np.sqrt(x.size)
            res["p2_se"][k, i] = se
            if abs(mean - res["p2_exact"][k, i]) > z * se:
                bad.append(f"N={N}: {mean:.4g} vs exact {res['p2_exact'][k, i]:.4g} "
                           f"(|z| > {z:.2f}, se {se:.2g})")
        ratios = ", ".join(f"{r:.3f}" for r in res["p2_mean"][k] / res["p2_asymptotic"][k])
        text = (f"mean over R={x.size} vs (S-1)(1/N)(1-1/N)^N at N={[int(n) for n in Ns]}: "
                + ("; ".join(bad) if bad else f"all within {z:.2f} se (two-sided z, level "
                   f"{level_each:.3g} over {Ns.size} cells)")
                + f"; ratio to (S-1)/(eN): {ratios}")
        claims.append((f"P2 S={S} level", not bad, text))
    return claims


def _cells(runs_out, config) -> dict:
    """The runs keyed by their ``(panel, S, N)``; exactly the cells of :func:`runs`."""
    cells = {}
    for run in runs_out:
        if not {"panel", "S", "N"} <= set(run):
            raise ValueError("a run lacks its cell (panel, S, N): it was made by an older "
                             "version of this figure; delete the output folder's runs/")
        key = (str(run["panel"]), int(run["S"]), int(run["N"]))
        if key in cells:
            raise ValueError(f"two runs for the cell (panel, S, N) = {key}")
        cells[key] = run
    expected = {(p["panel"], p["S"], p["N"]) for p in runs(config)}
    if set(cells) != expected:
        raise ValueError(f"runs do not match the configuration's cells: missing "
                         f"{sorted(expected - set(cells))}, unexpected {sorted(set(cells) - expected)}")
    return cells


def _grid_edges(res, p3_S, Ns, n_gaps) -> str:
    """P3 cells whose LCB worst case sits on an end of the gap grid (the grid is too narrow)."""
    edges = {0: "smallest gap: lower gap_min",
             n_gaps - 1: "largest gap: raise gap_max (at most 0.5) or drop the smallest N"}
    return "; ".join(f"P3 S={S} at N={Ns[i]} ({edges[int(res['p3_argmax_lcb'][k, i])]})"
                     for k, S in enumerate(p3_S) for i in range(Ns.size)
                     if int(res["p3_argmax_lcb"][k, i]) in edges)


def aggregate(runs_out, config) -> dict:
    """Statistics, bootstrap slope fits and every sub-claim's verdict.

    Runs are matched to cells by their own ``(panel, S, N)``, whatever their order. The
    overall ``level`` is split evenly over :func:`n_tests` tests (module docstring).
    """
    from bandits.contextual import missing_mass_suboptimality
    from proofs_check.seeding import spawn
    from proofs_check.stats import band_verdict, fit_rates, upper_bound_verdict

    Ns = np.array(config["Ns"])
    p2_S, p3_S = np.array(config["p2_S"], int), np.array(config["p3_S"], int)
    grid, R, level, nN = gaps(config), config["R"], config["level"], Ns.size
    cells = _cells(runs_out, config)
    level_each = level / n_tests(config)
    boot_seed = spawn(config["seed"], len(runs_out) + 1)[-1]  # the runs use children 0..n-1
    res = {"Ns": Ns, "p2_S": p2_S, "p3_S": p3_S, "gaps": grid, "R": R, "C_star": config["C_star"],
           "n_boot": config["n_boot"], "level": level, "level_each": level_each,
           "n_tests": n_tests(config), "bonus_scale": config["bonus_scale"],
           "rare_action": config["rare_action"]}
    p2_cells = [[cells["p2", int(S), int(N)]["lcb_subopt"] for N in Ns] for S in p2_S]
    res["p2_mean"] = np.array([[x.mean() for x in row] for row in p2_cells]).reshape(p2_S.size, nN)
    res["p2_exact"] = np.array([[missing_mass_suboptimality(int(S), int(N)) for N in Ns]
                                for S in p2_S]).reshape(p2_S.size, nN)
    res["p2_asymptotic"] = (p2_S[:, None] - 1) / (np.e * Ns[None, :])
    res["p2_se"] = np.zeros((p2_S.size, nN))
    for key in ("slope", "slope_lo", "slope_hi", "bound_rate"):
        res[f"p2_{key}"] = np.full(p2_S.size, np.nan)
        res[f"p3_{key}"] = np.full(p3_S.size, np.nan)
    for p in POLICIES:
        res[f"p3_stat_{p}"] = np.zeros((p3_S.size, nN))
        res[f"p3_argmax_{p}"] = np.zeros((p3_S.size, nN), dtype=int)
    res["p3_stat_lo"], res["p3_stat_hi"] = np.zeros((p3_S.size, nN)), np.zeros((p3_S.size, nN))

    samples, claims = {}, _level_claims(res, p2_cells, level_each)
    for k in range(p2_S.size):
        if np.all(res["p2_mean"][k] > 0):
            samples["p2", k] = np.stack(p2_cells[k], axis=1)[:, :, None]  # (R, nN, 1)
        else:
            zero = [int(N) for N in Ns[res["p2_mean"][k] == 0]]
            text = (f"LCB never erred at N={zero}: no slope (is pi*(s) = 0 on rare contexts, "
                    "so that unseen contexts are right by luck?)")
            claims.append((f"P2 S={p2_S[k]} slope band", False, text))
    for k, S in enumerate(p3_S):
        for p in POLICIES:
            wrong = np.stack([cells["p3", int(S), int(N)][f"{p}_wrong"] for N in Ns], axis=1)
            subopt = wrong * (grid / S)  # (R, nN, n_gaps)
            means = subopt.mean(axis=0)
            res[f"p3_stat_{p}"][k], res[f"p3_argmax_{p}"][k] = means.max(axis=1), means.argmax(axis=1)
            if p == "lcb":
                samples["p3", k] = subopt
    res["grid_too_narrow"] = _grid_edges(res, p3_S, Ns, grid.size)
    if res["grid_too_narrow"]:  # the worst case is not inside the grid: no slope to fit
        res["claims"] = [{"claim": n, "ok": bool(ok), "text": t} for n, ok, t in claims]
        return res
    fits = {}
    if samples:  # one bootstrap for all fitted claims: they share the resampled repetitions
        fits = dict(zip(samples, fit_rates(Ns.astype(float), list(samples.values()), grid_axis=2,
                                           n_boot=config["n_boot"], level=level_each,
                                           seed=boot_seed)))
    for (panel, k), fit in fits.items():
        S = int((p2_S if panel == "p2" else p3_S)[k])
        lo, hi = fit.interval(level_each)
        res[f"{panel}_slope"][k], res[f"{panel}_slope_lo"][k], res[f"{panel}_slope_hi"][k] = fit.slope, lo, hi
        if panel == "p3":
            res["p3_stat_lo"][k], res["p3_stat_hi"][k] = fit.stat_interval(level_each)
        # The band and the upper-bound rule read the same interval (one test, level_each).
        claimed = config[f"{panel}_slope"]
        ok, text = band_verdict(fit, claimed - SLOPE_TOL, claimed + SLOPE_TOL, level=level_each)
        claims.append((f"{panel.upper()} S={S} slope band", ok, text))
        # The recalled bound has unknown log factors and constants (the relative weight of
        # its two terms shapes a local slope), so LCB is held to its asymptotic rate in N.
        C_star = 1 if panel == "p2" else config["C_star"]
        rate = float(LCB_CB_UPPER.rate("N", C_star=C_star))
        res[f"{panel}_bound_rate"][k] = rate
        ok, text = upper_bound_verdict(fit, rate, tol=UPPER_TOL, level=level_each)
        text = text.replace("bound's local slope", "bound's rate in N")
        claims.append((f"{panel.upper()} S={S} lcb vs upper bound", ok, text))
    res["claims"] = [{"claim": n, "ok": bool(ok), "text": t} for n, ok, t in claims]
    return res


def verdict(results) -> tuple[bool | None, str]:
    """All sub-claims must hold; a P3 worst case on either end of the gap grid is undecidable."""
    if results["grid_too_narrow"]:
        return None, ("grid too narrow: LCB's worst case sits on an end of the gap grid for "
                      + results["grid_too_narrow"])
    failed = [c for c in results["claims"] if not c["ok"]]
    summary = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    summary += (f". Overall level {results['level']:g}, split (Bonferroni) over "
                f"{results['n_tests']} tests at {results['level_each']:.3g} each")
    if failed:
        names = ", ".join(c["claim"] for c in failed)
        return False, f"NOT SUPPORTED ({names} failed). {summary}"
    return True, f"SUPPORTED (all {len(results['claims'])} sub-claims hold). {summary}"


def plot(results):
    """Left: P2 mean sub-optimality against the exact formula; right: P3 worst cases."""
    import matplotlib.pyplot as plt

    from figures.style import POLICY_STYLE

    Ns = results["Ns"]
    fig, (ax2, ax3) = plt.subplots(1, 2, figsize=(11, 5.8), layout="constrained")
    for k, S in enumerate(results["p2_S"]):
        color = f"C{k}"
        mean, se = results["p2_mean"][k], results["p2_se"][k]
        shown = mean > 0
        ax2.errorbar(Ns[shown], mean[shown], yerr=3 * se[shown], color=color, marker="o", ls="none",
                     label=(f"LCB, S = {S}: slope {results['p2_slope'][k]:.3f} "
                            f"[{results['p2_slope_lo'][k]:.3f}, {results['p2_slope_hi'][k]:.3f}]"))
        ax2.plot(Ns, results["p2_exact"][k], "-", color=color, lw=1,
                 label=f"exact (S-1)(1/N)(1-1/N)^N, S = {S}")
        ax2.plot(Ns, results["p2_asymptotic"][k], ":", color=color, lw=1, label=f"(S-1)/(eN), S = {S}")
    ax2.set(xscale="log", yscale="log", xlabel="N (samples)", ylabel="E[J(pi*) - J(pi_hat)]",
            title=f"P2: C* = 1, missing mass (rare contexts' pi* = {results['rare_action']}); "
                  "bars: 3 se")
    ax2.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    markers = ("o", "s", "D", "^")
    for k, S in enumerate(results["p3_S"]):
        for p in POLICIES:
            stat = results[f"p3_stat_{p}"][k]
            style = dict(POLICY_STYLE[p]["line"], marker=markers[k % len(markers)])
            label = f"{POLICY_STYLE[p]['label']}, S = {S}"
            if p == "lcb":
                label += (f": slope {results['p3_slope'][k]:.3f} "
                          f"[{results['p3_slope_lo'][k]:.3f}, {results['p3_slope_hi'][k]:.3f}]")
            ax3.plot(Ns, stat, **style, label=label)
        guide = results["p3_stat_lcb"][k, 0] * (Ns / Ns[0]) ** results["p3_bound_rate"][k]
        ax3.plot(Ns, guide, "k:", lw=1, label=f"guide through LCB at N = {Ns[0]}, slope "
                 f"{results['p3_bound_rate'][k]:g} (rate of the upper bound), S = {S}")
    ax3.set(xscale="log", yscale="log", xlabel="N (samples)",
            ylabel="worst-case E[sub-optimality] over D",
            title=f"P3: C* = {results['C_star']:g}, uniform contexts (bonus scale "
                  f"{results['bonus_scale']:g})")
    ax3.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14))
    fig.suptitle("LCB on offline contextual bandits, (s, a) ~ mu jointly (Rashidinejad et al. 2021)",
                 fontsize=10)
    return fig
