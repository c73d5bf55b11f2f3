"""RL as a linear program (Manne 1960; Puterman 1994, sec. 6.9) and its f-regularised dual (Sikchi et al. 2024, Dual RL): LP = VI, and the return against the regularisation weight.

(a) Identity. On ``n_mdps`` random Garnet MDPs (run i: S ~ U{2..S_max}, A ~ U{2..A_max},
branching ~ U{1..S}, gamma ~ U[0.5, gamma_max], rewards U[0, 1), uniform mu0, all drawn
from run i's seed) the classic LP is solved by HiGHS in both forms
(:func:`tabular.lp.solve_lp`): over d and over V. Against value iteration's V* (with
``epsilon = 1e-11 max(1, R_max / (1 - gamma))``; its certified error must be at most a
tenth of the tolerance, otherwise the check is undecidable), with ``tol = 1e-9`` and
``scale = max(1, ||V*||_inf)``, asserted per form:

* the LP's value: HiGHS' optimal objective (unpolished) equals ``(1 - gamma) mu0 . V*``
  and the duality gap ``b . V - r . d`` (HiGHS' own V and d) is 0, both to
  ``tol (1 - gamma) scale`` (the objective's units are ``(1 - gamma)`` times a value);
* the LP's policy: the exact value of the recovered policy (``evaluate_policy`` on the
  true MDP) equals V* to ``tol scale``; this is the V that ``solve_lp`` returns after its
  polish, so it tests the optimality of the LP's basis policy, not HiGHS' V (shown beside
  it, not asserted: off by up to ~1e-9 relative on some instances);
* d: flow residual and ``|d - occupancy(pi)|`` at most ``tol`` (absolute: d sums to 1).

Solves that HiGHS does not report optimal are left out of the assertions and make the
verdict undecidable (with their count).

(b) Theorem. On an 8x8 open grid world (start top-left, goal bottom-right paying 1 on
entry and absorbing, step reward 0, slip 0.1, gamma 0.95; spec sheet, "What to reproduce"
1), the data distribution dO is the occupancy of the eps-greedy(0.3) behaviour around an
optimal policy, and ``max r . d - a_reg D_f(d || dO)`` over occupancies is solved by
Clarabel for ``a_reg`` in ``logspace(-3, 2, n_a)``, f in {KL, chi2}. Asserted, from the
optimality of each d_a (exact consequences, derived here, not quoted from the paper):
J(pi_a) and D_f(d_a || dO) are non-increasing in a_reg (tolerance 1e-6, spec sheet test 4;
J scaled by max(1, |J*|)), and ``J(beta) + a D_f(d_a)/(1 - gamma) <= J(pi_a) <= J*`` and
``J* - J(pi_a) <= a D_f(d*||dO)/(1 - gamma)`` (same tolerance), d* the LP's occupancy.
J(pi_a) is the exact return of the recovered policy (:func:`tabular.expected_return`).
Solve times are in ``benchmarks/lp_vs_vi.py``, not here.

Planted errors: ``flow_gamma_scale != 1`` hands the LPs an MDP whose gamma is scaled
(a wrong discount in the flow constraint), while VI and the returns use the true one;
``lp_reward_offset = c`` hands the LPs of part (a) the rewards ``R + c``, which keeps the
optimal policy (the policy check cannot see it) but shifts the LP's value by ``c`` (the
value check does); ``reward_sign = -1`` flips the reward's sign in the regularised
objective of part (b).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "dual-rl-lp"
CLAIM = Claim(
    name=NAME,
    statement=(
        "On random MDPs the LP over occupancy measures and its dual over V, solved by HiGHS, "
        "have the optimal value (1 - gamma) mu0 . V* of value iteration and zero duality gap "
        "to 1e-9 * (1 - gamma) * max(1, |V*|); the policy recovered from d is optimal (its "
        "exact value equals V* to 1e-9 * max(1, |V*|)) and d is its occupancy; regularising "
        "the dual by a_reg * D_f(d || dO) (KL, chi2) makes the return J(pi_a) and the "
        "divergence non-increasing in a_reg, from J* to J(behaviour)."
    ),
    source=(
        "Manne (1960); Puterman (1994), Markov Decision Processes, sec. 6.9 (LP and dual); "
        "Sikchi, Zheng, Zhang, Niekum (2024), Dual RL, ICLR, arXiv 2302.08560 (f-regularised "
        "dual); monotonicity and bounds in a_reg derived from optimality, not quoted."
    ),
    kind="identity",
)

_BASE = {
    "n_mdps": 50,
    "S_max": 20,
    "A_max": 5,
    "gamma_max": 0.99,
    "grid": 8,
    "slip": 0.1,
    "gamma": 0.95,
    "eps": 0.3,
    "a_min": 1e-3,
    "a_max": 100.0,
    "n_a": 20,
    "divergences": ["kl", "chi2"],
    "identity_tol": 1e-9,
    "mono_tol": 1e-6,
    "flow_gamma_scale": 1.0,
    "lp_reward_offset": 0.0,
    "reward_sign": 1.0,
}
CONFIGS = {
    "smoke": {**_BASE, "n_mdps": 10, "n_a": 8},
    "quick": dict(_BASE),
    "paper": {**_BASE, "S_max": 60, "A_max": 8},
}


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key, low in (("n_mdps", 1), ("S_max", 2), ("A_max", 2), ("grid", 2), ("n_a", 2)):
        if not isinstance(config[key], int) or config[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {config[key]!r}")
    if not 0.5 < config["gamma_max"] < 1:
        raise ValueError(f"gamma_max must lie in (0.5, 1), got {config['gamma_max']}")
    if not 0 < config["gamma"] < 1:
        raise ValueError(f"gamma must lie in (0, 1), got {config['gamma']}")
    for key in ("slip", "eps"):
        if not 0 <= config[key] <= 1:
            raise ValueError(f"{key} must lie in [0, 1], got {config[key]}")
    if not 0 < config["a_min"] < config["a_max"]:
        raise ValueError(f"need 0 < a_min < a_max, got {config['a_min']}, {config['a_max']}")
    bad = [f for f in config["divergences"] if f not in ("kl", "chi2", "tv")]
    if bad or not config["divergences"]:
        raise ValueError(f"divergences must be a non-empty list of 'kl', 'chi2', 'tv', got "
                         f"{config['divergences']}")
    for key in ("identity_tol", "mono_tol", "flow_gamma_scale"):
        if not config[key] > 0:
            raise ValueError(f"{key} must be positive, got {config[key]}")
    if not np.isfinite(config["lp_reward_offset"]):
        raise ValueError(f"lp_reward_offset must be finite, got {config['lp_reward_offset']}")
    if config["reward_sign"] not in (1.0, -1.0):
        raise ValueError(f"reward_sign must be 1 or -1, got {config['reward_sign']}")


def runs(config) -> list[dict]:
    """One run per random MDP (part a), one per divergence (part b)."""
    validate_config(config)
    return ([{"part": "lp", "index": i} for i in range(config["n_mdps"])]
            + [{"part": "reg", "f": f} for f in config["divergences"]])


def a_grid(config) -> np.ndarray:
    """``logspace(log10 a_min, log10 a_max, n_a)``, shape ``(n_a,)``."""
    return np.logspace(np.log10(config["a_min"]), np.log10(config["a_max"]), config["n_a"])


def grid_world(config):
    """The open ``grid x grid`` world of part (b): start top-left, goal bottom-right."""
    from tabular.generators import gridworld

    n = config["grid"]
    rows = ["." * n for _ in range(n)]
    rows[0] = "S" + rows[0][1:]
    rows[-1] = rows[-1][:-1] + "G"
    return gridworld("\n".join(rows), gamma=config["gamma"], step_reward=0.0,
                     goal_reward=1.0, slip=config["slip"])


def _lp_mdp(mdp, config):
    """The MDP the LPs see: the true one, or one with a planted wrong discount."""
    scale = config["flow_gamma_scale"]
    return mdp if scale == 1.0 else mdp.replace(gamma=min(mdp.gamma * scale, 0.999))


def _random_mdp(config, seed):
    from proofs_check.seeding import as_generator
    from tabular.generators import garnet

    rng = as_generator(seed)
    S = int(rng.integers(2, config["S_max"] + 1))
    A = int(rng.integers(2, config["A_max"] + 1))
    branching = int(rng.integers(1, S + 1))
    gamma = float(rng.uniform(0.5, config["gamma_max"]))
    return garnet(S, A, branching, gamma=gamma, seed=rng)


_LP_KEYS = ("V_err", "V_err_raw", "obj_err", "gap", "flow", "occ_err")


def _run_lp(config, seed) -> dict:
    from tabular.lp import solve_lp
    from tabular.planning import evaluate_policy, occupancy, value_iteration

    mdp = _random_mdp(config, seed)
    epsilon = 1e-11 * max(1.0, float(np.max(mdp.R)) / (1.0 - mdp.gamma))
    vi = value_iteration(mdp, epsilon=epsilon)
    out = {"S": mdp.S, "A": mdp.A, "gamma": mdp.gamma, "V_scale": np.max(np.abs(vi.V)),
           "vi_error_bound": vi.error_bound, "vi_converged": vi.converged}
    lp_mdp = _lp_mdp(mdp, config)
    if config["lp_reward_offset"] != 0.0:
        lp_mdp = lp_mdp.replace(R=lp_mdp.R + config["lp_reward_offset"])
    for over in ("d", "V"):
        res = solve_lp(lp_mdp, over=over, polish=False)  # HiGHS' own V, objective and gap
        out[f"ok_{over}"] = res.ok
        out[f"status_{over}"] = res.status
        if not res.ok:
            for key in _LP_KEYS:
                out[f"{key}_{over}"] = np.nan
            continue
        # The policy's exact value on the true MDP (= solve_lp's polished V when the LP
        # sees the true MDP).
        V_pi = evaluate_policy(mdp, np.argmax(res.pi, axis=1)).V
        out[f"V_err_{over}"] = np.max(np.abs(V_pi - vi.V))
        out[f"V_err_raw_{over}"] = np.max(np.abs(res.V - vi.V))
        out[f"obj_err_{over}"] = abs(res.objective - (1 - mdp.gamma) * mdp.mu0 @ vi.V)
        out[f"gap_{over}"] = abs(res.gap)
        d_S = res.d.sum(axis=1)
        flow = d_S - mdp.gamma * np.einsum("sa,sat->t", res.d, mdp.P) - (1 - mdp.gamma) * mdp.mu0
        out[f"flow_{over}"] = np.max(np.abs(flow))
        out[f"occ_err_{over}"] = np.max(np.abs(res.d - occupancy(mdp, res.pi)))
    return out


def _run_reg(config, seed) -> dict:
    from tabular.lp import f_divergence, regularization_path, solve_lp
    from tabular.planning import expected_return, occupancy, value_iteration

    f = config["f"]
    mdp = grid_world(config)
    vi = value_iteration(mdp)
    beta = (1.0 - config["eps"]) * np.eye(mdp.A)[vi.pi] + config["eps"] / mdp.A
    dO = occupancy(mdp, beta)
    lp_mdp = _lp_mdp(mdp, config)
    star = solve_lp(lp_mdp)
    path_mdp = lp_mdp if config["reward_sign"] == 1.0 else lp_mdp.replace(R=-lp_mdp.R)
    path = regularization_path(path_mdp, dO, a_grid(config), f=f)
    ok = np.array([res.ok for res in path] + [star.ok])
    J = np.array([expected_return(mdp, res.pi) if res.ok else np.nan for res in path])
    D = np.array([f_divergence(res.d, dO, f) if res.ok else np.nan for res in path])
    return {
        "a": a_grid(config), "J": J, "D": D, "ok": ok,
        "gap": np.array([res.gap for res in path]),
        "J_star": float(mdp.mu0 @ vi.V), "J_beta": expected_return(mdp, beta),
        "J_lp": expected_return(mdp, star.pi) if star.ok else np.nan,
        "D_star": f_divergence(star.d, dO, f) if star.ok else np.nan,
        "gamma": mdp.gamma,
    }


def run_one(config, seed) -> dict:
    """Part (a): one random MDP's LP-vs-VI errors; part (b): one divergence's path.

    Returns
    -------
    dict
        Part (a): scalars ``V_err_{d,V}`` (``||V^pi_LP - V*||_inf``), ``V_err_raw_*``
        (HiGHS' V), ``obj_err_*`` (``|objective - (1 - gamma) mu0 . V*|``), ``gap_*``,
        ``flow_*``, ``occ_err_*``, ``ok_*``, ``status_*``, ``V_scale`` (``||V*||_inf``),
        ``vi_error_bound``, S, A, gamma. Part (b): ``a`` (n_a,), ``J`` and ``D`` (n_a,), ``ok`` (n_a + 1,) solver
        statuses (last: the unregularised LP), ``gap`` (n_a,), and ``J_star`` (VI),
        ``J_beta``, ``J_lp`` (return of the LP's policy), ``D_star`` = D_f(d* || dO).
    """
    if config["part"] == "lp":
        return _run_lp(config, seed)
    return _run_reg(config, seed)


def aggregate(runs_out, config) -> dict:
    """Identity errors over the random MDPs, and the regularisation paths' sub-claims."""
    n = config["n_mdps"]
    lp_runs, reg_runs = runs_out[:n], runs_out[n:]
    tol = config["identity_tol"]
    res = {"divergences": list(config["divergences"]), "a": a_grid(config),
           "identity_tol": tol, "mono_tol": config["mono_tol"],
           "flow_gamma_scale": config["flow_gamma_scale"]}
    for key in ("V_scale", "vi_error_bound", "S", "A", "gamma"):
        res[key] = np.array([float(r[key]) for r in lp_runs])
    scale = np.maximum(1.0, res["V_scale"])
    for over in ("d", "V"):
        for key in _LP_KEYS:
            res[f"{key}_{over}"] = np.array([float(r[f"{key}_{over}"]) for r in lp_runs])
        res[f"ok_{over}"] = np.array([bool(r[f"ok_{over}"]) for r in lp_runs])
    problems = []
    uncertified = res["vi_error_bound"] > 0.1 * tol * scale
    if uncertified.any():
        problems.append(f"value iteration's certified error exceeds a tenth of the tolerance "
                        f"on {int(uncertified.sum())} MDPs")
    claims = []
    for over in ("d", "V"):
        ok_runs = res[f"ok_{over}"]
        if not ok_runs.all():
            statuses = sorted({str(r[f"status_{over}"]) for r in lp_runs
                               if not r[f"ok_{over}"]})
            problems.append(f"HiGHS did not report optimal (over {over}) on "
                            f"{int((~ok_runs).sum())} of {n} MDPs (status "
                            f"{', '.join(statuses)}); assertions cover the other "
                            f"{int(ok_runs.sum())}")
        if ok_runs.any():
            claims.extend(_lp_claims(res, over, ok_runs, scale, tol))
    mono = config["mono_tol"]
    for f, run in zip(config["divergences"], reg_runs):
        ok_run = np.asarray(run["ok"], dtype=bool)
        J, D, a = run["J"], run["D"], run["a"]
        res[f"J_{f}"], res[f"D_{f}"], res[f"gap_{f}"] = J, D, run["gap"]
        for key in ("J_star", "J_beta", "J_lp", "D_star", "gamma"):
            res[f"{key}_{f}"] = float(run[key])
        if not ok_run.all():
            problems.append(f"{f}: the solver did not report optimal at "
                            f"{int((~ok_run).sum())} of {ok_run.size} weights")
            continue
        J_star, J_beta, g = float(run["J_star"]), float(run["J_beta"]), float(run["gamma"])
        tol_J = mono * max(1.0, abs(J_star))
        rise_J = float(np.max(np.diff(J)))
        rise_D = float(np.max(np.diff(D)))
        ok = rise_J <= tol_J and rise_D <= mono * max(1.0, float(np.max(D)))
        claims.append((f"{f}: monotone in a_reg", ok,
                       f"J from {J[0]:.6f} to {J[-1]:.6f}, largest rise {rise_J:.1e}; "
                       f"D_f from {D[0]:.4g} to {D[-1]:.3g}, largest rise {rise_D:.1e} "
                       f"(tolerance {mono:g})"))
        lower = J_beta + a * D / (1.0 - g)
        gap_bound = a * float(run["D_star"]) / (1.0 - g)
        slack = min(float(np.min(J - lower)), float(np.min(J_star - J)),
                    float(np.min(gap_bound - (J_star - J))))
        ok = slack >= -tol_J
        claims.append((f"{f}: J(beta) + a D/(1-gamma) <= J(pi_a) <= J*, J* - J <= a D*/(1-gamma)",
                       ok, f"smallest slack {slack:.1e} (tolerance {tol_J:.0e}); J* = "
                       f"{J_star:.6f}, J(beta) = {J_beta:.6f}"))
        ok = abs(float(run["J_lp"]) - J_star) <= tol * max(1.0, abs(J_star))
        claims.append((f"{f}: J(LP policy) = J*", ok,
                       f"|J(pi_LP) - J*| = {abs(float(run['J_lp']) - J_star):.1e}"))
    res["problems"] = "; ".join(problems)
    res["claims"] = [{"claim": name, "ok": bool(ok), "text": text} for name, ok, text in claims]
    return res


def _lp_claims(res, over, ok_runs, scale, tol) -> list[tuple]:
    """The sub-claims of part (a) for one form, over the MDPs where HiGHS succeeded."""
    idx = np.flatnonzero(ok_runs)
    value_scale = (1.0 - res["gamma"][idx]) * scale[idx]
    claims = []
    rel = res[f"V_err_{over}"][idx] / scale[idx]
    worst = int(np.argmax(rel))
    ok = bool(np.all(rel <= tol))
    raw = float(np.max(res[f"V_err_raw_{over}"][idx] / scale[idx]))
    claims.append((f"LP over {over}: optimal policy", ok,
                   f"max ||V^pi_LP - V*|| / max(1, ||V*||) = {rel[worst]:.2e} (MDP "
                   f"{idx[worst]}, S={int(res['S'][idx[worst]])}, gamma="
                   f"{res['gamma'][idx[worst]]:.3f}) {'<=' if ok else '>'} {tol:g} over "
                   f"{idx.size} MDPs (HiGHS' own V, not asserted: {raw:.2e})"))
    value = np.maximum(res[f"obj_err_{over}"][idx], res[f"gap_{over}"][idx]) / value_scale
    ok = bool(np.all(value <= tol))
    claims.append((f"LP over {over}: value and gap", ok,
                   f"max of |objective - (1-gamma) mu0.V*| and |gap|, over (1-gamma) "
                   f"max(1, ||V*||): {np.max(value):.2e} {'<=' if ok else '>'} {tol:g}"))
    occ = np.maximum(res[f"flow_{over}"][idx], res[f"occ_err_{over}"][idx])
    ok = bool(np.all(occ <= tol))
    claims.append((f"LP over {over}: flow, occupancy", ok,
                   f"max of the flow residual and |d - occupancy(pi)| {np.max(occ):.2e} "
                   f"{'<=' if ok else '>'} {tol:g}"))
    return claims


def verdict(results) -> tuple[bool | None, str]:
    """All sub-claims must hold; a solver failure or an uncertified VI is undecidable."""
    summary = "; ".join(f"{c['claim']}: {c['text']}" for c in results["claims"])
    failed = [c["claim"] for c in results["claims"] if not c["ok"]]
    if failed:
        return False, f"NOT SUPPORTED ({', '.join(failed)} failed). {summary}"
    if results["problems"]:
        return None, f"undecidable: {results['problems']}. {summary}"
    return True, f"SUPPORTED (all {len(results['claims'])} sub-claims hold). {summary}"


def plot(results):
    """(a) scaled |LP - VI| per MDP against the tolerance; (b) J(pi_a) and (c) D_f against a_reg."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 5), layout="constrained")
    ax = axes[0]
    scale = np.maximum(1.0, results["V_scale"])
    floor = 1e-17  # exact agreement drawn at the floor of the log axis
    for over, marker in (("d", "o"), ("V", "x")):
        err = np.maximum(results[f"V_err_{over}"] / scale, floor)
        ax.plot(np.arange(err.size), err, marker, ls="none",
                label=f"LP over {over} (HiGHS, V of its policy)")
        raw = np.maximum(results[f"V_err_raw_{over}"] / scale, floor)
        ax.plot(np.arange(raw.size), raw, marker, ls="none", mfc="none", alpha=0.5,
                label=f"LP over {over}: HiGHS' own V (not asserted)")
    ax.plot(np.arange(scale.size), results["vi_error_bound"] / scale, "_", color="0.4",
            ms=10, label="value iteration's certified error bound (scaled)")
    ax.axhline(results["identity_tol"], color="k", ls=":",
               label=f"asserted tolerance {results['identity_tol']:g}")
    ax.set(yscale="log", xlabel="random Garnet MDP", ylabel="||V_LP - V*|| / max(1, ||V*||)",
           title="(a) LP = value iteration")
    ax.legend(fontsize=8)
    a = results["a"]
    for i, f in enumerate(results["divergences"]):
        color = f"C{i}"
        axes[1].plot(a, results[f"J_{f}"], "o-", color=color, label=f"J(pi_a), {f}")
        axes[2].plot(a, np.maximum(results[f"D_{f}"], floor), "o-", color=color,
                     label=f"D_f(d_a || dO), {f}")
    f0 = results["divergences"][0]
    axes[1].axhline(results[f"J_star_{f0}"], color="k", ls="--", label="J* (value iteration)")
    axes[1].axhline(results[f"J_beta_{f0}"], color="0.5", ls=":",
                    label="J(behaviour), eps-greedy(0.3)")
    axes[1].set(xscale="log", xlabel="a_reg", ylabel="J(pi_a) (exact return from mu0)",
                title="(b) return against the regularisation weight")
    axes[1].legend(fontsize=8)
    axes[2].set(xscale="log", yscale="log", xlabel="a_reg", ylabel="D_f(d_a || dO)",
                title="(c) divergence from the data distribution")
    axes[2].legend(fontsize=8)
    fig.suptitle("RL as a linear program and its f-regularised dual (8x8 grid world, "
                 "gamma 0.95)", fontsize=10)
    return fig
