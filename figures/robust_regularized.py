"""R2PVI (Tang, Liu, Xu 2025) against plain pessimistic VI on a two-state trap under dynamics shifted toward the trap.

Instance (fixed): state 0 ("field") and state 1 ("trap", absorbing, reward 0); at state 0
action 0 ("safe") stays with reward ``r_safe`` and action 1 ("risky") earns 1 and falls
into the trap with nominal probability ``p_trap``; start in state 0; horizon H. With
``H = 10, p_trap = 0.05, r_safe = 0.6`` the nominal optimum is risky at every step, while
the KL / chi-square robust optimum (lam = 1) plays safe early: the adversary's cheapest
move is to shift the risky action's mass toward the trap.

Shift family (stated in advance): every nominal row whose support contains the trap is
moved toward it, ``P_eps(.|s, a) = (1 - eps) P(.|s, a) + eps e_trap`` (here only the risky
row), for ``eps`` in ``eps_grid``; the other rows are unchanged.

Every policy's return is non-increasing in ``eps`` (only the risky row moves, toward the
absorbing trap whose value 0 is the least possible with rewards in [0, 1]), so the worst case
over the family is always at the largest shift, ``eps = 0.3``: the grid draws the curve, its
last point decides; :func:`aggregate` checks the monotonicity and the verdict states it.

Data: ``n_episodes`` episodes of the uniform behaviour policy in the nominal model. Both
learners use the same ridge estimator and penalty ``beta / sqrt(n_h(s, a) + ridge)``
(one-hot features): R2PVI with the regularised robust backup (``lam``, KL / chi-square /
TV) at ``beta = 0.5``, plain pessimistic VI with the nominal backup
(:func:`tabular.robust.r2pvi` with ``lam = inf``) at every ``beta`` of the grid
``pevi_betas`` = (0, 0.25, 0.5, 1, 2, 4, 8, 16), fixed in advance; the baseline compared is
the grid's ``beta`` with the best mean worst-case return (a choice made on the evaluation
itself, in the baseline's favour). R2PVI's hyper-parameters are fixed, not tuned. For
context (reported, not tested): Li, Shi, Chen, Chi, Wei (2022) pessimistic VI with its
theoretical constants (:func:`tabular.offline.pessimistic_value_iteration`, Hoeffding
``c = 1/2`` and Bernstein ``c_b = 16``, ``delta = 0.1``), on the same data.

Empirical claim (the paper's experiments: R2PVI learns policies that are robust to
dynamics shifts): per divergence, R2PVI's worst-case return over the family exceeds that of
plain pessimistic VI at its best grid ``beta``; a one-sided paired sign test over the seeds
(ties dropped) at ``level`` Bonferroni-corrected over the divergences. Verdict
"reproduced" / "not reproduced in this toy", with the numbers.

Asserted sub-claims (exact; ``check`` exits 1 when one fails):
- the closed-form backups (:func:`tabular.robust.robust_expectation`) equal a direct
  minimisation of ``E_q[V] + lam D_f(q || p)`` over the one-dimensional simplex of this
  two-state model (bounded Brent, divergences written out here), within 1e-6, on every
  row and step of the robust planning values;
- every backup is at most the nominal expectation, and the robust value of every learned
  policy is at most its nominal value (``q = p`` is feasible).
The configuration key ``planted_error`` swaps in a wrong closed form (TV without the 0.5
factor, TV's minimum over the support only, KL with the sign flipped) to show the checks
catch it.
"""
from __future__ import annotations

import math

import numpy as np

from proofs_check.claims import Claim

NAME = "robust-regularized"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Two-state trap, finite horizon: R2PVI (KL, chi-square and TV regularised robust "
        "backups) learns from nominal offline data a policy whose worst-case return over "
        "dynamics shifted toward the trap exceeds that of plain pessimistic VI with the same "
        "estimator and penalty at its best penalty weight on a fixed grid; asserted: the "
        "closed-form backups equal a direct minimisation over the simplex and robust values "
        "never exceed nominal ones."
    ),
    source=(
        "Tang, Liu, Xu (2025), Robust Offline Reinforcement Learning with Linearly Structured "
        "f-Divergence Regularization, ICML, arXiv 2411.18612: R2PVI and its experiments "
        "(robustness to dynamics shifts); closed forms derived for the spec sheet, not read "
        "off the paper."
    ),
    kind="empirical",
)

_BASE = {
    "H": 10,
    "p_trap": 0.05,
    "r_safe": 0.6,
    "lam": 1.0,
    "divergences": ["kl", "chi2", "tv"],
    "beta": 0.5,
    "pevi_betas": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0],
    "ridge": 1.0,
    "n_episodes": 200,
    "eps_grid": [round(0.025 * i, 3) for i in range(13)],  # 0, 0.025, ..., 0.3
    "n_runs": 20,
    "level": 1e-3,
    "planted_error": "none",
}
CONFIGS = {
    "smoke": dict(_BASE),
    "quick": {**_BASE, "n_episodes": 500, "n_runs": 60},
    "paper": {**_BASE, "n_episodes": 2000, "n_runs": 200},
}

AGGREGATE_KEYS = ("level", "planted_error")  # both act in aggregate only

PLANTED = ("none", "tv_without_half", "tv_support_min", "kl_sign")
CLOSED_FORM_TOL = 1e-6
TIE_TOL = 1e-9
SAFE, RISKY, FIELD, TRAP = 0, 1, 0, 1


LI2022 = ("pvi_hoeffding", "pvi_bernstein")  # context baselines, theory constants


def _methods(config) -> dict:
    """Method name -> (lam, divergence, beta) for :func:`tabular.robust.r2pvi`; plain
    pessimistic VI (``pevi_b{i}``, the i-th beta of ``pevi_betas``) is R2PVI with lam = inf."""
    out = {f"pevi_b{i}": (math.inf, "kl", float(b)) for i, b in enumerate(config["pevi_betas"])}
    out.update({f"r2pvi_{div}": (config["lam"], div, config["beta"])
                for div in config["divergences"]})
    return out


def _names(config) -> list:
    return list(_methods(config)) + list(LI2022)


def trap_kernel(config, eps: float = 0.0) -> np.ndarray:
    """The nominal kernel (S, A, S) = (2, 2, 2) moved toward the trap by ``eps``."""
    p = config["p_trap"]
    P = np.zeros((2, 2, 2))
    P[FIELD, SAFE, FIELD] = 1.0
    P[FIELD, RISKY] = [1.0 - p, p]
    P[TRAP, :, TRAP] = 1.0
    toward = P[..., TRAP] > 0  # rows whose support contains the trap
    shifted = (1.0 - eps) * P + eps * np.eye(2)[TRAP]
    return np.where(toward[..., None], shifted, P)


def trap_mdp(config, eps: float = 0.0):
    """The finite-horizon TabularMDP of the instance, shifted by ``eps``."""
    from tabular import TabularMDP

    R = np.array([[config["r_safe"], 1.0], [0.0, 0.0]])
    return TabularMDP(trap_kernel(config, eps), R, [1.0, 0.0], H=config["H"])


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    from tabular.robust import DIVERGENCES

    H = config["H"]
    if not isinstance(H, int) or isinstance(H, bool) or H < 1:
        raise ValueError(f"H must be a positive int, got {H!r}")
    if not 0 < config["p_trap"] < 1:
        raise ValueError(f"p_trap must lie in (0, 1), got {config['p_trap']:g}")
    if not 0 <= config["r_safe"] <= 1:
        raise ValueError(f"r_safe must lie in [0, 1] (R2PVI assumes rewards in [0, 1]), "
                         f"got {config['r_safe']:g}")
    if not (math.isfinite(config["lam"]) and config["lam"] > 0):
        raise ValueError(f"lam must be positive and finite, got {config['lam']:g}")
    divs = config["divergences"]
    if not divs or len(set(divs)) != len(divs) or any(d not in DIVERGENCES for d in divs):
        raise ValueError(f"divergences must be distinct names from {DIVERGENCES}, got {divs}")
    for b in [config["beta"], *config["pevi_betas"]]:
        if not (isinstance(b, (int, float)) and math.isfinite(b) and b >= 0):
            raise ValueError(f"beta and pevi_betas must be finite and non-negative, got {b!r}")
    if not config["pevi_betas"]:
        raise ValueError("pevi_betas must hold at least one beta")
    if not (math.isfinite(config["ridge"]) and config["ridge"] > 0):
        raise ValueError(f"ridge must be positive and finite, got {config['ridge']:g}")
    grid = np.asarray(config["eps_grid"], dtype=float)
    increasing = grid.ndim == 1 and grid.size >= 2 and np.all(np.diff(grid) > 0)
    if not increasing or grid[0] != 0 or grid[-1] > 1:
        raise ValueError("eps_grid must be at least 2 increasing shifts in [0, 1] starting at 0 "
                         f"(eps = 0 is the nominal model), got {config['eps_grid']}")
    for key, low in (("n_episodes", 1), ("n_runs", 2)):
        value = config[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"{key} must be an int of at least {low}, got {value!r}")
    if not 0 < config["level"] < 1:
        raise ValueError(f"level must be in (0, 1), got {config['level']:g}")
    if config["planted_error"] not in PLANTED:
        raise ValueError(f"planted_error must be one of {PLANTED}, got {config['planted_error']!r}")


def runs(config) -> list[dict]:
    """One run per seed (a fresh offline dataset each)."""
    validate_config(config)
    return [{} for _ in range(config["n_runs"])]


def run_one(config, seed) -> dict:
    """Learn every method's policy from one dataset and evaluate it over the shift family.

    Returns
    -------
    dict
        ``pi_{m}`` int (H, S); ``return_{m}`` (n_eps,) the expected return under each
        shifted model; ``robust_excess_{m}``: the largest ``V_robust - V_nominal`` over the
        divergences, steps and states for the learned policy on the nominal model (<= 0 in
        exact arithmetic).
    """
    from proofs_check.seeding import as_generator
    from tabular import evaluate_policy, expected_return, sample_episodes
    from tabular.offline import pessimistic_value_iteration
    from tabular.robust import r2pvi, robust_evaluate_policy
    from tabular.sampling import episodes_to_transitions

    rng = as_generator(seed)
    mdp = trap_mdp(config)
    family = [trap_mdp(config, eps) for eps in config["eps_grid"]]
    episodes = sample_episodes(mdp, np.full((2, 2), 0.5), config["n_episodes"], seed=rng)
    policies = {name: r2pvi(episodes, 2, 2, lam=lam, divergence=div, beta=beta,
                            ridge=config["ridge"]).pi
                for name, (lam, div, beta) in _methods(config).items()}
    transitions = episodes_to_transitions(episodes, 2, 2, per_step=True)
    for name in LI2022:
        policies[name] = pessimistic_value_iteration(transitions, penalty=name[4:]).pi
    out = {}
    for name, pi in policies.items():
        V_nominal = evaluate_policy(mdp, pi).V
        excess = max(float(np.max(robust_evaluate_policy(mdp, pi, config["lam"], d).V
                                  - V_nominal)) for d in config["divergences"])
        out[f"pi_{name}"] = pi
        out[f"return_{name}"] = np.array([expected_return(m, pi) for m in family])
        out[f"robust_excess_{name}"] = np.float64(excess)
    return out


# --- the asserted closed-form checks --------------------------------------------------------


def _direct_min(p: np.ndarray, V: np.ndarray, lam: float, div: str) -> float:
    """``min_{t in [0, 1]} E_q[V] + lam D(q || p)``, ``q = (t, 1 - t)``, by bounded Brent
    plus both endpoints; the divergences written out here, independently of the library."""
    from scipy.optimize import minimize_scalar
    from scipy.special import rel_entr

    def objective(t):
        q = np.array([t, 1.0 - t])
        if div == "tv":
            D = 0.5 * np.abs(q - p).sum()
        elif div == "kl":
            D = rel_entr(q, p).sum()
        else:
            D = np.inf if np.any((q > 0) & (p == 0)) else np.sum((q - p)[p > 0] ** 2 / p[p > 0])
        return float(q @ V + lam * D)

    if div != "tv" and np.any(p == 0):
        return float(p @ V)  # q = p is the only point of finite divergence on two states
    best = minimize_scalar(objective, bounds=(0.0, 1.0), method="bounded",
                           options={"xatol": 1e-13})
    return min(objective(0.0), objective(1.0), float(best.fun))


def _closed_form(planted: str):
    """The library's closed form, or a deliberately wrong one (planted errors)."""
    from tabular.robust import robust_expectation

    def closed(P, V, lam, div):
        if planted == "tv_without_half" and div == "tv":  # D = ||q - p||_1: threshold 2 lam
            return P @ np.minimum(V, V.min() + 2 * lam)
        if planted == "tv_support_min" and div == "tv":  # min over supp P only
            m = np.where(P > 0, V, np.inf).min(axis=-1)
            return np.sum(P * np.minimum(V, m[..., None] + lam), axis=-1)
        if planted == "kl_sign" and div == "kl":  # +lam log E exp(V/lam): the sup, not the inf
            return lam * np.log(P @ np.exp(V / lam))
        return robust_expectation(P, V, lam, div)

    return closed


def _closed_form_checks(config) -> dict:
    """Closed form vs direct minimisation, and closed form <= nominal, on every (h, s, a)
    row of the nominal kernel with the robust planning values V_{h+1} of each divergence."""
    from tabular.robust import robust_value_iteration

    mdp = trap_mdp(config)
    closed = _closed_form(config["planted_error"])
    lam = config["lam"]
    err, excess = {}, {}
    for div in config["divergences"]:
        V = robust_value_iteration(mdp, lam, div).V  # (H, S)
        V_next = np.vstack([V[1:], np.zeros((1, 2))])
        e, x = 0.0, -np.inf
        for h in range(config["H"]):
            c = closed(mdp.P, V_next[h], lam, div)  # (S, A)
            for s in range(2):
                for a in range(2):
                    p = mdp.P[s, a]
                    scale = max(1.0, float(np.max(np.abs(V_next[h]))))
                    e = max(e, abs(float(c[s, a]) - _direct_min(p, V_next[h], lam, div)) / scale)
                    x = max(x, float(c[s, a] - p @ V_next[h]))
        err[div], excess[div] = e, x
    return {"closed_form_error": err, "backup_excess": excess}


# --- aggregate, verdict, plot ------------------------------------------------------------------


def _oracles(config) -> dict:
    """Returns over the family of the nominal-optimal and the robust-optimal policies of the
    true model (planning, no data)."""
    from tabular import backward_induction, expected_return
    from tabular.robust import robust_value_iteration

    mdp = trap_mdp(config)
    family = [trap_mdp(config, eps) for eps in config["eps_grid"]]
    policies = {"nominal optimum": backward_induction(mdp).pi}
    for div in config["divergences"]:
        policies[f"{div} robust optimum"] = robust_value_iteration(mdp, config["lam"], div).pi
    return {name: np.array([expected_return(m, pi) for m in family])
            for name, pi in policies.items()}


def aggregate(runs_out, config) -> dict:
    """Per-method returns over the family, worst cases, sign tests and the asserted checks."""
    from scipy.stats import binomtest

    names = _names(config)
    eps = np.asarray(config["eps_grid"], dtype=float)
    res = {"eps_grid": eps, "lam": config["lam"], "beta": config["beta"],
           "n_episodes": config["n_episodes"], "level": config["level"],
           "divergences": list(config["divergences"]), "planted_error": config["planted_error"]}
    for m in names:
        returns = np.stack([r[f"return_{m}"] for r in runs_out])  # (n_runs, n_eps)
        res[f"returns_{m}"] = returns
        res[f"worst_{m}"] = returns.min(axis=1)
        res[f"nominal_{m}"] = returns[:, 0]
        res[f"robust_excess_{m}"] = float(max(r[f"robust_excess_{m}"] for r in runs_out))
    grid = [f"pevi_b{i}" for i in range(len(config["pevi_betas"]))]
    res["pevi_betas"] = list(config["pevi_betas"])
    res["pevi_grid_worst"] = [float(res[f"worst_{m}"].mean()) for m in grid]
    best = grid[int(np.argmax(res["pevi_grid_worst"]))]  # first of equals: the smallest beta
    res["pevi_best_beta"] = float(config["pevi_betas"][grid.index(best)])
    for key in ("returns", "worst", "nominal", "robust_excess"):
        res[f"{key}_pevi"] = res[f"{key}_{best}"]
    res["methods"] = ["pevi"] + [m for m in names if m not in grid]
    steps_up = np.concatenate([np.diff(res[f"returns_{m}"], axis=1).ravel() for m in names])
    res["largest_increase_in_eps"] = float(steps_up.max()) if steps_up.size else 0.0
    res["oracles"] = {k: v.tolist() for k, v in _oracles(config).items()}
    n_tests = len(config["divergences"])
    tests = []
    for div in config["divergences"]:
        diff = res[f"worst_r2pvi_{div}"] - res["worst_pevi"]
        wins, losses = int(np.sum(diff > TIE_TOL)), int(np.sum(diff < -TIE_TOL))
        pvalue = (binomtest(wins, wins + losses, 0.5, alternative="greater").pvalue
                  if wins + losses else 1.0)
        tests.append({"divergence": div, "wins": wins, "losses": losses,
                      "ties": int(diff.size - wins - losses), "pvalue": float(pvalue),
                      "mean_diff": float(diff.mean()),
                      "reproduced": bool(pvalue <= config["level"] / n_tests)})
    res["sign_tests"] = tests
    checks = _closed_form_checks(config)
    asserted = []
    for div in config["divergences"]:
        e, x = checks["closed_form_error"][div], checks["backup_excess"][div]
        asserted.append({"claim": f"{div} closed form = direct minimisation",
                         "ok": bool(e <= CLOSED_FORM_TOL),
                         "text": f"max relative error {e:.2e} (tolerance {CLOSED_FORM_TOL:g})"})
        asserted.append({"claim": f"{div} backup <= nominal expectation",
                         "ok": bool(x <= 1e-12),
                         "text": f"max(closed form - E_p V) = {x:.2e}"})
    excess = max(res[f"robust_excess_{m}"] for m in names)
    asserted.append({"claim": "robust value <= nominal value (learned policies)",
                     "ok": bool(excess <= 1e-9),
                     "text": f"max(V_robust - V_nominal) = {excess:.2e}"})
    res["claims"] = asserted
    return res


def verdict(results) -> tuple[bool | None, str]:
    """Asserted sub-claims decide the exit code; the empirical claim is reported."""
    failed = [c["claim"] for c in results["claims"] if not c["ok"]]
    asserted = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    parts = []
    for t in results["sign_tests"]:
        m = f"r2pvi_{t['divergence']}"
        parts.append(
            f"{t['divergence']}: worst-case return R2PVI {results[f'worst_{m}'].mean():.3f} vs "
            f"best-beta pessimistic VI {results['worst_pevi'].mean():.3f} (nominal "
            f"{results[f'nominal_{m}'].mean():.3f} vs {results['nominal_pevi'].mean():.3f}); "
            f"{t['wins']} wins, {t['losses']} losses, "
            f"{t['ties']} ties, one-sided sign test p = {t['pvalue']:.2g}")
    grid = ", ".join(f"{b:g}: {w:.3f}" for b, w in
                     zip(results["pevi_betas"], results["pevi_grid_worst"]))
    eps_max = results["eps_grid"][-1]
    monotone = results["largest_increase_in_eps"] <= 1e-12
    shape = (f"every learned policy's return is non-increasing in eps (largest increase "
             f"{results['largest_increase_in_eps']:.1e}), so the worst case is the largest "
             f"shift eps = {eps_max:g}" if monotone
             else f"returns are NOT monotone in eps (largest increase "
                  f"{results['largest_increase_in_eps']:.2g}): the worst case is a grid minimum")
    context = "; ".join(
        f"{m}: worst-case {results[f'worst_{m}'].mean():.3f}, nominal "
        f"{results[f'nominal_{m}'].mean():.3f}" for m in LI2022 if f"worst_{m}" in results)
    good = [t["divergence"] for t in results["sign_tests"] if t["reproduced"]]
    bad = [t["divergence"] for t in results["sign_tests"] if not t["reproduced"]]
    level = results["level"] / len(results["sign_tests"])
    if not bad:
        head = f"reproduced for {', '.join(good)} (level {level:.2g} each)"
    else:
        head = (f"not reproduced in this toy for {', '.join(bad)}"
                + (f" (reproduced for {', '.join(good)})" if good else "")
                + f" (level {level:.2g} each)")
        if "tv" in bad:
            head += ("; TV's adversary may move mass to the trap from every action, the safe "
                     "one included, so it does not prefer safe play")
    edge = (" (the grid's largest beta: a larger one might do better)"
            if results["pevi_best_beta"] == max(results["pevi_betas"]) else "")
    text = (f"{head}: " + "; ".join(parts) + f". Plain pessimistic VI is taken at its best "
            f"beta = {results['pevi_best_beta']:g}{edge} on the grid fixed in advance (mean worst "
            f"case by beta: {grid}), R2PVI at beta = {results['beta']:g}; {shape}. Context, Li et "
            f"al. (2022) pessimistic VI with theory constants (not tested): {context}. "
            f"Asserted: {asserted}")
    if failed:
        return False, f"NOT SUPPORTED ({', '.join(failed)} failed). {text}"
    return True, text


_COLORS = {"pevi": "C0", "r2pvi_kl": "C1", "r2pvi_chi2": "C2", "r2pvi_tv": "C3",
           "pvi_hoeffding": "C4", "pvi_bernstein": "C5"}
_LABELS = {"pevi": "pessimistic VI (nominal backup), best beta", "r2pvi_kl": "R2PVI, KL",
           "r2pvi_chi2": "R2PVI, chi-square", "r2pvi_tv": "R2PVI, TV",
           "pvi_hoeffding": "Li et al. PVI, Hoeffding c=1/2",
           "pvi_bernstein": "Li et al. PVI, Bernstein c_b=16"}


def plot(results):
    """Return against the shift eps (mean and min-max over seeds), and worst-case vs nominal
    return per method."""
    import matplotlib.pyplot as plt

    eps = results["eps_grid"]
    names = list(results["methods"])
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    for m in names:
        R = results[f"returns_{m}"]
        ax.plot(eps, R.mean(axis=0), "o-" if m not in LI2022 else "s--", ms=3,
                color=_COLORS[m], label=_LABELS[m])
        ax.fill_between(eps, R.min(axis=0), R.max(axis=0), color=_COLORS[m], alpha=0.15)
    for name, values in results["oracles"].items():
        method = "pevi" if name.startswith("nominal") else f"r2pvi_{name.split()[0]}"
        ax.plot(eps, values, ls=":", color=_COLORS[method], lw=1.2,
                label=f"{name} (planning, true model)")
    ax.set(xlabel="shift eps toward the trap", ylabel="expected return",
           title=f"return under P_eps (lam = {results['lam']:g}, beta = {results['beta']:g}, PEVI "
                 f"beta = {results['pevi_best_beta']:g}, "
                 f"{results['n_episodes']} episodes)")
    ax.legend(fontsize=7)
    x = np.arange(len(names))
    for offset, key, label in ((-0.2, "nominal", "nominal (eps = 0)"),
                               (0.2, "worst", f"worst case over eps <= {eps[-1]:g}")):
        means = np.array([results[f"{key}_{m}"].mean() for m in names])
        lo = np.maximum(0.0, means - [results[f"{key}_{m}"].min() for m in names])
        hi = np.maximum(0.0, np.array([results[f"{key}_{m}"].max() for m in names]) - means)
        bx.bar(x + offset, means, width=0.4, yerr=[lo, hi], capsize=3, label=label,
               color="0.75" if key == "nominal" else "0.35")
    bx.set_xticks(x, [_LABELS[m] for m in names], rotation=20, ha="right", fontsize=7)
    bx.set(ylabel="expected return (mean, min-max over seeds)",
           title="robustness vs nominal return")
    bx.legend(fontsize=7)
    fig.suptitle("R2PVI vs pessimistic VI on a two-state trap (Tang, Liu, Xu 2025)", fontsize=10)
    return fig
