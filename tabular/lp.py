"""RL as linear programs over occupancy measures (Manne 1960; Puterman 1994, sec. 6.9) and their f-divergence-regularised duals (Sikchi, Zheng, Zhang, Niekum, "Dual RL", ICLR 2024, arXiv 2302.08560)."""
from __future__ import annotations

import math
import os
import sys
import threading
import time
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse import linalg as sla
from scipy.special import rel_entr

from tabular.mdp import TabularMDP, _read_positive, _require_mdp, validate_policy
from tabular.planning import _greedy, _q_from_v, _read_distribution

__all__ = [
    "DIVERGENCES",
    "LPResult",
    "flow_matrix",
    "solve_lp",
    "solve_regularized",
    "regularization_path",
    "occupancy_lp",
    "f_divergence",
    "conjugate",
    "optimal_ratio",
    "HIGHS_OPTIONS",
    "CLARABEL_OPTIONS",
    "A_REG_RANGE",
]

DIVERGENCES = ("kl", "chi2", "tv")

# HiGHS' defaults are 1e-7; 1e-10 is the smallest it accepts. Its V can still be off by
# ~1e-9 relative, hence solve_lp's exact evaluation of the basis policy (polish).
HIGHS_OPTIONS = {"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10}
# Clarabel's own defaults, stated explicitly; at 1e-9 it often stops "almost solved"
# (cvxpy's optimal_inaccurate) on the 8x8 grid world of figures.dual_rl_lp.
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-8, "tol_gap_rel": 1e-8, "tol_feas": 1e-8,
                    "tol_infeas_abs": 1e-8, "tol_infeas_rel": 1e-8, "tol_ktratio": 1e-6,
                    "max_iter": 200}
_MASS_TOL = 1e-12  # states with sum_a d(s, a) <= _MASS_TOL * sum(d) count as unvisited
_KKT_TOL = 1e-12  # flow residual that certifies a polished KL point (see _kl_status)
# Weights the regularised solvers accept: outside, the solvers' tolerances no longer pin
# the answer (at 1e-8 Clarabel fails on KL over V; at 1e8 HiGHS calls TV over V unbounded).
A_REG_RANGE = (1e-6, 1e6)


@dataclass(frozen=True)
class LPResult:
    """The solution of one of the linear or conic programs of this module.

    Attributes
    ----------
    status : str
        cvxpy's status: ``"optimal"``, or ``"infeasible"``, ``"unbounded"``,
        ``"optimal_inaccurate"``, ``"infeasible_inaccurate"``, ... Only ``"optimal"``
        carries a solution: otherwise ``V``, ``d`` and ``pi`` are None and the numbers nan.
        ``"solver_error"``: the solver stopped without a status (cvxpy's SolverError; its
        text is in ``message``). KL: ``"optimal"`` also when the solver said
        ``"optimal_inaccurate"`` and the Newton polish certified the point (``certified``).
    objective : float
        Optimal value of the problem solved (reward units; see each solver for its scale).
    gap : float
        ``(value of the problem over V at the returned V) - (value of the problem over d at
        the returned d)``, the returned V and d being one problem's solution and the other's
        multipliers; ~0 at optimality. It is >= 0 (weak duality) only up to the solver's
        tolerance and up to the flow residual of the d used (see :func:`solve_regularized`
        for chi2 over V, whose d comes from a formula, not from a feasible point).
    V : numpy.ndarray or None
        (S,) discounted, (H, S) finite horizon: the multipliers of the flow constraint (LP
        over d) or the primal variable (LP over V), polished by :func:`solve_lp` on the
        states that ``d`` visits. On those states V is the optimal value V*; on states
        that ``d0`` does not reach it is any value the LP allows there: for the LP, a
        solution of ``V >= R + gamma P V``, hence ``>= V*`` up to the solver's tolerance.
    d : numpy.ndarray or None
        (S, A) discounted: normalised occupancy (sums to 1); (H, S, A) finite horizon:
        ``d[h] = gamma^h * Pr(s_h = s, a_h = a)``.
    pi : numpy.ndarray or None
        (S, A) or (H, S, A) float64, rows summing to 1: ``d / sum_a d`` where the state has
        mass ``sum_a d > 1e-12 * sum(d)``; elsewhere (states d0 does not reach) the greedy
        policy for ``Q = R + gamma P V`` with ``V`` as returned (ties to the lowest action),
        which need not be optimal there since ``V`` is not pinned on such states.
    solver : str
        ``"HIGHS"`` or ``"CLARABEL"``.
    solve_time : float
        Wall-clock seconds of cvxpy's ``solve`` call (compilation included).
    form : str
        Which problem was solved, e.g. ``"lp-d"``, ``"lp-V"``, ``"kl-d"``, ``"tv-V"``.
    solver_time : float
        The solver's own seconds (cvxpy's ``solver_stats.solve_time``; nan if not reported).
    certified : bool
        True when the status ``"optimal"`` comes from the KL polish's certificate (the
        solver itself said ``"optimal_inaccurate"``).
    message : str
        The solver's error text when ``status == "solver_error"``, else ``""``.
    """

    status: str
    objective: float
    gap: float
    V: np.ndarray | None
    d: np.ndarray | None
    pi: np.ndarray | None
    solver: str
    solve_time: float
    form: str
    solver_time: float = math.nan
    certified: bool = False
    message: str = ""

    @property
    def ok(self) -> bool:
        """True when the status is ``"optimal"`` (and the arrays are present)."""
        return self.status == "optimal"


# --- input checks -----------------------------------------------------------------------


def _check_kind(mdp: TabularMDP, kinds: tuple, what: str) -> None:
    _require_mdp(mdp)
    if mdp.kind not in kinds:
        raise ValueError(f"{what} needs a {' or '.join(kinds)} MDP, got kind {mdp.kind!r}"
                         + (" (gamma = 1 without H: the occupancy is not finite)"
                            if mdp.kind == "episodic" else ""))


def _with_d0(mdp: TabularMDP, d0) -> TabularMDP:
    if d0 is None:
        return mdp
    try:
        return mdp.replace(mu0=d0)
    except ValueError as err:
        raise ValueError(f"invalid d0: {err}".replace("mu0", "d0")) from None


def _read_dO(mdp: TabularMDP, dO) -> np.ndarray:
    arr = np.asarray(dO)
    if arr.dtype.kind in "biuf" and arr.shape == (mdp.S, mdp.A) and np.all(arr == 0):
        raise ValueError("dO has zero mass everywhere: it is not a distribution over (s, a)")
    return _read_distribution(arr, ((mdp.S, mdp.A),), "dO")


def _read_a_reg(a_reg) -> float:
    a_reg = _read_positive(a_reg, "a_reg")
    low, high = A_REG_RANGE
    if not low <= a_reg <= high:
        raise ValueError(f"a_reg = {a_reg!r} lies outside the supported range [{low:g}, "
                         f"{high:g}] (A_REG_RANGE; a_reg -> 0 is the unregularised LP: use "
                         "solve_lp)")
    return a_reg


def _read_f(f) -> str:
    if f not in DIVERGENCES:
        raise ValueError(f"f = {f!r} must be one of {DIVERGENCES}")
    return f


def _read_over(over) -> str:
    if over not in ("V", "d"):
        raise ValueError(f"over = {over!r} must be 'V' (problem over values) or 'd' "
                         "(problem over occupancies)")
    return over


# --- conjugates and divergences (numpy) -------------------------------------------------


def conjugate(f: str, y, *, nonnegative: bool = True) -> np.ndarray:
    """Convex conjugate ``f*(y) = sup_x [x y - f(x)]`` of an f-divergence generator,
    or (default) its non-negative version ``f*_p(y) = sup_{x >= 0} [x y - f(x)]``
    (Sikchi et al. 2024, sec. 3; generators as in the spec sheet).

    * ``"kl"``, ``f(x) = x log x``: ``f*(y) = f*_p(y) = exp(y - 1)``.
    * ``"chi2"`` (Pearson), ``f(x) = (x - 1)^2``: ``f*(y) = y + y^2/4``;
      ``f*_p(y) = (max(y, -2) + 2)^2 / 4 - 1``.
    * ``"tv"``, ``f(x) = |x - 1| / 2``: ``f*(y) = y`` on ``|y| <= 1/2``, ``+inf`` outside;
      ``f*_p(y) = max(y, -1/2)`` on ``y <= 1/2``, ``+inf`` for ``y > 1/2``.

    Parameters
    ----------
    f : {"kl", "chi2", "tv"}
    y : array_like of float
    nonnegative : bool, default True

    Returns
    -------
    numpy.ndarray, float64, shape of ``y`` (``inf`` outside the domain)

    Raises
    ------
    ValueError
        For an unknown ``f`` or a NaN in ``y``.
    """
    f = _read_f(f)
    y = _read_y(y)
    if f == "kl":
        return np.exp(y - 1.0)
    if f == "chi2":
        return (np.maximum(y, -2.0) + 2.0) ** 2 / 4.0 - 1.0 if nonnegative else y + y**2 / 4.0
    if nonnegative:
        return np.where(y <= 0.5, np.maximum(y, -0.5), np.inf)
    return np.where(np.abs(y) <= 0.5, y, np.inf)


def _read_y(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    if np.isnan(y).any():
        idx = tuple(int(i) for i in np.argwhere(np.isnan(y))[0])
        raise ValueError(f"y{list(idx) if idx else ''} is NaN: the conjugate is undefined there")
    return y


def optimal_ratio(f: str, y) -> np.ndarray:
    """``w*(y) = max(0, (f')^{-1}(y))``, the maximiser of ``x y - f(x)`` over ``x >= 0``
    (the ratio ``d / dO`` at residual ``y``; Sikchi et al. 2024, dual-V; spec sheet sec. C).

    ``"kl"``: ``exp(y - 1)``; ``"chi2"``: ``max(0, 1 + y/2)``.

    Raises
    ------
    ValueError
        For ``"tv"`` (its maximiser is set-valued: 0 below -1/2, 1 inside, [1, inf) at 1/2;
        the regularised solvers read the ratio off the multipliers instead), an unknown f,
        or a NaN in ``y``.
    """
    f = _read_f(f)
    y = _read_y(y)
    if f == "kl":
        return np.exp(y - 1.0)
    if f == "chi2":
        return np.maximum(0.0, 1.0 + y / 2.0)
    raise ValueError("the TV ratio is set-valued ([0, 1] at y = -1/2, [1, inf) at y = 1/2); "
                     "no formula w*(y) exists")


def f_divergence(d, dO, f: str) -> float:
    """``D_f(d || dO) = sum_{dO > 0} dO f(d / dO) + f'(inf) * sum_{dO = 0} d``.

    ``f'(inf)`` is ``inf`` for KL and chi2 (any mass of ``d`` off ``supp(dO)`` gives
    ``inf``) and ``1/2`` for TV. KL is ``sum d log(d / dO)`` with ``0 log 0 = 0``.

    Parameters
    ----------
    d, dO : array_like, same shape, non-negative
    f : {"kl", "chi2", "tv"}

    Returns
    -------
    float

    Raises
    ------
    ValueError
        For different shapes, negative or non-finite entries, or an unknown ``f``.
    """
    f = _read_f(f)
    d = np.asarray(d, dtype=np.float64)
    dO = np.asarray(dO, dtype=np.float64)
    if d.shape != dO.shape:
        raise ValueError(f"d has shape {d.shape} but dO has shape {dO.shape}")
    for arr, name in ((d, "d"), (dO, "dO")):
        bad = ~np.isfinite(arr) | (arr < 0)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{name}[{', '.join(map(str, idx))}] = {arr[idx]} is negative or "
                             "not finite")
    on = dO > 0
    off_mass = float(d[~on].sum())
    p, q = d[on], dO[on]
    if f == "kl":
        return math.inf if off_mass > 0 else float(rel_entr(p, q).sum())
    if f == "chi2":
        return math.inf if off_mass > 0 else float(((p - q) ** 2 / q).sum())
    return float(0.5 * np.abs(p - q).sum() + 0.5 * off_mass)


# --- the flow constraint ----------------------------------------------------------------


def flow_matrix(mdp: TabularMDP, d0=None) -> tuple[sparse.csr_array, np.ndarray]:
    """The Bellman-flow constraint ``F d = b`` as a sparse matrix (Puterman 1994, sec. 6.9).

    Discounted (``d`` flattened with index ``s * A + a``)::

        F = E^T - gamma Pm^T,  b = (1 - gamma) d0,   shape (S, S*A)

    with ``E[(s, a), s] = 1`` and ``Pm = P.reshape(S*A, S)``: row s' reads
    ``sum_a d(s', a) - gamma sum_{s,a} P(s'|s,a) d(s,a) = (1 - gamma) d0(s')``.
    The d >= 0 solutions are exactly the normalised occupancies of stationary policies.

    Finite horizon (``d`` flattened with index ``(h * S + s) * A + a``; rows ``h * S + s'``)::

        sum_a d_0(s', a)  = d0(s')
        sum_a d_{h+1}(s', a) = gamma sum_{s,a} P_h(s'|s,a) d_h(s, a),   h = 0..H-2

    shape (H*S, H*S*A), ``b = (d0, 0, ..., 0)``. Derivation: the return is
    ``sum_h gamma^h E[R_h(s_h, a_h)] = sum_h R_h . d_h`` with ``d_h(s, a) = gamma^h Pr(s_h = s,
    a_h = a)``, and these ``d_h`` obey the recursion above; conversely any ``d >= 0`` obeying
    it is generated by ``pi_h = d_h / sum_a d_h`` (induction on h; when gamma = 0, d_h = 0
    for h >= 1 and pi_h is free there). The LP ``max R . d`` has the dual
    ``min d0 . V_0`` s.t. ``V_h(s) >= R_h(s, a) + gamma P_h V_{h+1}(s)``, ``V_H = 0``, whose
    solution is backward induction's ``V*`` on every state that d0 reaches.

    In both cases the Bellman residual of a value vector is ``r - F^T V`` (``r`` the flat
    rewards), so ``F`` serves problems over V too.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"`` or ``"finite"`` (stationary or time-inhomogeneous).
    d0 : array_like (S,), optional
        Initial-state distribution; default ``mdp.mu0``.

    Returns
    -------
    F : scipy.sparse.csr_array, float64
    b : numpy.ndarray, float64

    Raises
    ------
    ValueError
        For an episodic MDP or an invalid ``d0``.
    """
    _check_kind(mdp, ("discounted", "finite"), "flow_matrix")
    mdp = _with_d0(mdp, d0)
    S, A, gamma = mdp.S, mdp.A, mdp.gamma
    ET = sparse.kron(sparse.eye_array(S), np.ones((1, A)), format="csr")  # (S, S*A)
    if mdp.kind == "discounted":
        PmT = sparse.csr_array(mdp.P.reshape(S * A, S).T)
        return (ET - gamma * PmT).tocsr(), (1.0 - gamma) * np.array(mdp.mu0)
    H = mdp.H
    blocks = [[None] * H for _ in range(H)]
    for h in range(H):
        blocks[h][h] = ET
        if h + 1 < H:
            blocks[h + 1][h] = -gamma * sparse.csr_array(mdp.P_h(h).reshape(S * A, S).T)
    F = sparse.block_array(blocks, format="csr")
    b = np.zeros(H * S)
    b[:S] = mdp.mu0
    return F, b


def _flat_rewards(mdp: TabularMDP) -> np.ndarray:
    if mdp.kind == "finite":
        return np.concatenate([mdp.R_h(h).ravel() for h in range(mdp.H)])
    return np.array(mdp.R).ravel()


def _shape(mdp: TabularMDP, flat: np.ndarray, per_state: bool) -> np.ndarray:
    lead = (mdp.H,) if mdp.kind == "finite" else ()
    return flat.reshape(lead + ((mdp.S,) if per_state else (mdp.S, mdp.A)))


def _q_values(mdp: TabularMDP, V: np.ndarray) -> np.ndarray:
    """``Q = R + gamma P V`` (S, A), or per step with ``V_H = 0`` (H, S, A) (planning has no
    finite-horizon backup of an arbitrary V)."""
    if mdp.kind == "discounted":
        return _q_from_v(mdp, V)
    V_next = np.vstack([V[1:], np.zeros((1, mdp.S))])
    return np.stack([mdp.R_h(h) + mdp.gamma * mdp.P_h(h) @ V_next[h] for h in range(mdp.H)])


def _recover_policy(mdp: TabularMDP, d: np.ndarray, V: np.ndarray) -> np.ndarray:
    """``d / sum_a d`` on visited states, greedy for ``R + gamma P V`` elsewhere."""
    mass = d.sum(axis=-1, keepdims=True)
    visited = _visited(d)[..., None]
    greedy = np.eye(mdp.A)[_greedy(_q_values(mdp, V))]
    return np.where(visited, d / np.where(visited, mass, 1.0), greedy)


def _visited(d: np.ndarray) -> np.ndarray:
    """States (per step) with mass ``sum_a d > _MASS_TOL * sum(d)``: bool, d's shape less A."""
    return d.sum(axis=-1) > _MASS_TOL * max(float(d.sum()), 1e-300)


# --- solving ----------------------------------------------------------------------------

_HIGHS_BANNER_SILENCED = False
_BANNER_LOCK = threading.Lock()


def _silence_highs_banner() -> None:
    """highspy prints a licence banner from C++ to file descriptor 1 when the first
    ``Highs`` object of a process is made; make that first one with fd 1 on /dev/null so
    that ``boundlab check`` prints its verdict first. Under a lock (fd 1 is process-wide);
    if fd 1 cannot be duplicated (closed), the banner is left alone."""
    global _HIGHS_BANNER_SILENCED
    with _BANNER_LOCK:
        if _HIGHS_BANNER_SILENCED:
            return
        import highspy

        sys.stdout.flush()
        try:
            saved = os.dup(1)
        except OSError:  # fd 1 closed: nothing to protect, nothing to restore
            _HIGHS_BANNER_SILENCED = True
            return
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _HIGHS_BANNER_SILENCED = True


@dataclass(frozen=True)
class _Outcome:
    status: str
    seconds: float
    solver_seconds: float
    message: str


def _solve(problem, solver: str, options: dict | None) -> tuple[str, float]:
    """Solve with ``solver`` and the module's explicit tolerances, never falling back to
    another solver; return ``(status, wall seconds)``, status ``"solver_error"`` when the
    solver stops without a status (cvxpy's SolverError).

    Raises ImportError when the solver is not installed."""
    outcome = _solve_outcome(problem, solver, options)
    return outcome.status, outcome.seconds


def _solve_outcome(problem, solver: str, options: dict | None) -> _Outcome:
    """:func:`_solve`, also returning the solver's own time and a SolverError's text."""
    import cvxpy as cp

    if solver not in cp.installed_solvers():
        package = {"HIGHS": "highspy", "CLARABEL": "clarabel"}[solver]
        raise ImportError(f"solver {solver} is not installed (pip install {package}); "
                          "tabular.lp never falls back to another solver")
    if solver == "HIGHS":
        _silence_highs_banner()
    settings = dict(HIGHS_OPTIONS if solver == "HIGHS" else CLARABEL_OPTIONS)
    settings.update(options or {})
    start = time.perf_counter()
    message = ""
    try:
        with warnings.catch_warnings():  # an inaccurate solve is reported by its status
            warnings.filterwarnings("ignore", message="Solution may be inaccurate",
                                    category=UserWarning)
            problem.solve(solver=solver, **settings)
        status = problem.status
    except cp.error.SolverError as err:
        status, message = "solver_error", str(err)
    seconds = time.perf_counter() - start
    stats = problem.solver_stats if status != "solver_error" else None
    solver_seconds = getattr(stats, "solve_time", None)
    return _Outcome(status, seconds, math.nan if solver_seconds is None else
                    float(solver_seconds), message)


def _failed(outcome: _Outcome, solver: str, form: str, status: str | None = None) -> LPResult:
    return LPResult(status=status or outcome.status, objective=math.nan, gap=math.nan, V=None,
                    d=None, pi=None, solver=solver, solve_time=outcome.seconds, form=form,
                    solver_time=outcome.solver_seconds, message=outcome.message)


def solve_lp(mdp: TabularMDP, *, over: str = "d", d0=None,
             solver_options: dict | None = None, polish: bool = True) -> LPResult:
    """The classic LP of an MDP and its dual, solved by HiGHS (Manne 1960; Puterman 1994,
    sec. 6.9; finite horizon: the time-indexed flow LP derived in :func:`flow_matrix`).

    With ``F, b = flow_matrix(mdp, d0)`` and ``r`` the flat rewards:

    * ``over="V"`` (primal): ``min b . V`` s.t. ``F^T V >= r``, i.e. ``V(s) >= R(s, a) +
      gamma sum_s' P(s'|s, a) V(s')`` for all (s, a); ``d`` = the constraint's multipliers.
    * ``over="d"`` (dual): ``max r . d`` s.t. ``F d = b``, ``d >= 0``; ``V`` = the flow
      constraint's multipliers.

    Both have the optimal value ``(1 - gamma) d0 . V*`` (discounted) or ``d0 . V*_0`` (finite
    horizon), and complementary slackness makes ``d(s, a) > 0`` only at greedy actions of
    ``V*``. The LP pins ``V = V*`` only on the states that ``d`` visits (all states when
    ``d0`` has full support, discounted case); elsewhere its ``V`` is any solution of
    ``V >= R + gamma P V`` there, an upper bound on ``V*`` (up to HiGHS' tolerance), and
    the polish leaves it unchanged.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"`` or ``"finite"``.
    over : {"d", "V"}, default "d"
    d0 : array_like (S,), optional
        Initial-state distribution (weights ``alpha = (1 - gamma) d0`` of the primal);
        default ``mdp.mu0``.
    solver_options : dict, optional
        HiGHS options overriding :data:`HIGHS_OPTIONS` (not HiGHS' own ``solver`` option,
        which collides with cvxpy's argument).
    polish : bool, default True
        On the states ``d`` visits, replace HiGHS' V by the exact value
        (:func:`~tabular.planning.evaluate_policy`) of the recovered policy made
        deterministic (argmax of ``pi``), when that lowers no Bellman residual there: the
        simplex ends on an optimal basis, i.e. a deterministic policy, but its reported V
        carries errors of ~1e-9 on some MDPs (S = 54, gamma = 0.58: 1.3e-9 with the optimal
        basis policy found). The polished V is the exact value of the basis policy, so it
        equals V* exactly when that policy is optimal; ``objective`` and ``gap`` stay
        HiGHS' own (the LP's value, not polished).

    Returns
    -------
    LPResult
        ``objective`` in the units above (discounted: ``(1 - gamma) J*`` from d0);
        ``d`` and ``pi`` as described in :class:`LPResult` (``d`` is HiGHS' own, never
        polished); ``gap = b . V - r . d`` with HiGHS' V (before the polish).

    Raises
    ------
    ValueError
        For an episodic MDP, an invalid ``d0`` or ``over``.
    ImportError
        If HiGHS (highspy) is not installed. A solve that fails or ends without an optimal
        status is not raised but reported: ``status`` (e.g. ``"infeasible"``,
        ``"solver_error"``) with no arrays.
    """
    import cvxpy as cp

    over = _read_over(over)
    F, b = flow_matrix(mdp, d0)
    r = _flat_rewards(mdp)
    if over == "V":
        V = cp.Variable(F.shape[0])
        constraint = F.T @ V >= r
        problem = cp.Problem(cp.Minimize(b @ V), [constraint])
    else:
        d = cp.Variable(F.shape[1], nonneg=True)
        constraint = F @ d == b
        problem = cp.Problem(cp.Maximize(r @ d), [constraint])
    outcome = _solve_outcome(problem, "HIGHS", solver_options)
    form = f"lp-{over}"
    if outcome.status != "optimal":
        return _failed(outcome, "HIGHS", form)
    if over == "V":
        V_flat, d_flat = V.value, np.maximum(constraint.dual_value, 0.0)
    else:
        V_flat, d_flat = constraint.dual_value, np.maximum(d.value, 0.0)
    V_out, d_out = _shape(mdp, V_flat, True), _shape(mdp, d_flat, False)
    pi = _recover_policy(mdp, d_out, V_out)
    gap = float(b @ V_flat - r @ d_flat)
    if polish:
        V_out = _polish_lp_values(mdp, V_out, pi, _visited(d_out))
    return LPResult(status="optimal", objective=float(problem.value), gap=gap, V=V_out,
                    d=d_out, pi=pi, solver="HIGHS", solve_time=outcome.seconds, form=form,
                    solver_time=outcome.solver_seconds)


def _bellman_residual(mdp: TabularMDP, V: np.ndarray, where: np.ndarray) -> float:
    """``max |max_a (R + gamma P V) - V|`` over the states (per step, with V_H = 0, for
    finite horizon) where ``where`` is True."""
    return float(np.max(np.abs(_q_values(mdp, V).max(axis=-1) - V)[where], initial=0.0))


def _polish_lp_values(mdp: TabularMDP, V: np.ndarray, pi: np.ndarray,
                      visited: np.ndarray) -> np.ndarray:
    """On the visited states, the exact value of the recovered policy's deterministic part,
    if its Bellman residual there is no larger than that of the solver's V (a smaller
    residual is closer to V*). The visited states are closed under that policy (d is its
    occupancy), so their values do not depend on the unvisited ones, which keep the
    solver's V."""
    from tabular.planning import evaluate_policy

    V_pi = np.where(visited, evaluate_policy(mdp, np.argmax(pi, axis=-1)).V, V)
    better = _bellman_residual(mdp, V_pi, visited) <= _bellman_residual(mdp, V, visited)
    return V_pi if better else V


def occupancy_lp(mdp: TabularMDP, pi, *, d0=None) -> np.ndarray:
    """Occupancy of a fixed policy from the "dual-Q" flow equalities, solved by HiGHS
    (Sikchi et al. 2024, dual-Q; spec sheet sec. B)::

        d(s, a) = (1 - gamma) d0(s) pi(a|s) + gamma pi(a|s) sum_{s', a'} P(s|s', a') d(s', a')

    S*A equalities with a unique solution (no sign constraint is imposed). A linear solve
    (:func:`tabular.planning.occupancy`) does the same faster; this form is the dual-Q
    constraint set that the regularised dual-Q objectives are built on.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"``.
    pi : array_like
        Stationary policy, (S,) int or (S, A) float (see
        :func:`~tabular.mdp.validate_policy`).
    d0 : array_like (S,), optional
        Default ``mdp.mu0``.

    Returns
    -------
    numpy.ndarray, float64, (S, A), summing to 1

    Raises
    ------
    ValueError
        For a non-discounted MDP, an invalid policy or ``d0``.
    RuntimeError
        If HiGHS does not report an optimal (feasible) point.
    """
    import cvxpy as cp

    _check_kind(mdp, ("discounted",), "occupancy_lp")
    mdp = _with_d0(mdp, d0)
    pi = validate_policy(mdp, pi)
    if pi.ndim != 2:
        raise ValueError(f"occupancy_lp needs a stationary policy, got shape {pi.shape}")
    S, A, gamma = mdp.S, mdp.A, mdp.gamma
    # M[(s, a), (s', a')] = pi(a|s) P(s|s', a'): the inflow (P^T d)(s) spread by pi(a|s).
    E = sparse.kron(sparse.eye_array(S), np.ones((A, 1)), format="csr")  # E[(s, a), s] = 1
    M = sparse.diags_array(pi.ravel()) @ E @ sparse.csr_array(mdp.P.reshape(S * A, S).T)
    d = cp.Variable(S * A)
    rhs = (1.0 - gamma) * (mdp.mu0[:, None] * pi).ravel()
    problem = cp.Problem(cp.Minimize(0), [d - gamma * M @ d == rhs])
    status, _ = _solve(problem, "HIGHS", None)
    if status != "optimal":
        raise RuntimeError(f"HiGHS returned status {status!r} for the dual-Q equalities")
    return d.value.reshape(S, A)


# --- f-regularised duals ----------------------------------------------------------------


def _solver_for(f: str) -> str:
    return "HIGHS" if f == "tv" else "CLARABEL"


def _dual_value(f: str, a_reg: float, b, V, y, w) -> float:
    """``G(V) = b . V + a sum_{supp} dO f*_p(y / a)``, ``y = r - F^T V`` on supp(dO).

    For TV a residual above ``a / 2`` by at most 1e-9 (reward units; solver rounding) is
    read as ``a / 2``; beyond that ``G = inf``."""
    if f == "tv":
        y = np.where(y <= a_reg / 2 + 1e-9, np.minimum(y, a_reg / 2), y)
    return float(b @ V + a_reg * w @ conjugate(f, y / a_reg))


def _primal_value(f: str, a_reg: float, r, d, w) -> float:
    return float(r @ d - a_reg * f_divergence(d, w, f))


def _polish_kl(F_on, b, r_on, w, a_reg, V, d_on):
    """Newton's method on the smooth KL dual ``G(V) = b.V + a sum w exp(y/a - 1)``
    (``y = r - F^T V`` on supp(dO)), started at the conic solver's V.

    Clarabel stops on its objective tolerance, which pins d only to about its square root
    (~1e-5 here). At the dual's minimiser ``d(V) = w exp(y/a - 1)`` is exactly stationary,
    and Newton reaches the flow constraint ``F d(V) = b`` to rounding in a few steps.
    Returns ``(V, d_on, residual)``: the polished pair if its flow residual
    ``||F d - b||_inf`` is below that of the solver's own d, else the inputs unchanged.
    """
    def at(V_):
        with np.errstate(over="ignore"):
            d_ = w * np.exp((r_on - F_on.T @ V_) / a_reg - 1.0)
        return d_, b - F_on @ d_

    best_V, best_d, best = V, d_on, float(np.max(np.abs(F_on @ d_on - b)))
    d_, g = at(V)
    for _ in range(30):
        if not np.all(np.isfinite(g)):
            break
        step = _newton_step((F_on @ sparse.diags_array(d_) @ F_on.T / a_reg).tocsc(), g)
        # Full steps from a nearby start; halve while the flow residual does not shrink.
        for t in (1.0, 0.5, 0.25, 0.125):
            d_new, g_new = at(V - t * step)
            if np.all(np.isfinite(g_new)) and np.max(np.abs(g_new)) < np.max(np.abs(g)):
                break
        else:
            break
        V, d_, g = V - t * step, d_new, g_new
        residual = float(np.max(np.abs(g)))
        if residual < best:
            best_V, best_d, best = V, d_, residual
        if residual <= 1e-15 * max(1.0, float(np.max(np.abs(b)))):
            break
    return best_V, best_d, best


def _newton_step(H, g):
    """``H^{-1} g`` by a sparse LU; a singular H (states with no mass left, whose V is not
    pinned) falls back to the dense minimum-norm least-squares step."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", sla.MatrixRankWarning)
        try:
            step = sla.spsolve(H, g)
        except RuntimeError:  # "Factor is exactly singular"
            step = np.full_like(g, np.nan)
    if np.all(np.isfinite(step)):
        return step
    return np.linalg.lstsq(H.toarray(), g, rcond=None)[0]


def _kl_status(status: str, residual: float, b) -> tuple[str, bool]:
    """KL's objective is strictly concave, so d = dO exp(y/a - 1) > 0 (exact after the
    polish) with ``F d = b`` proves optimality: a point Clarabel calls inaccurate is
    certified optimal when the polished flow residual is at most 1e-12 (relative).
    Returns ``(status, certified by the polish)``."""
    certified = residual <= _KKT_TOL * max(1.0, float(np.max(np.abs(b))))
    if status == "optimal_inaccurate" and certified:
        return "optimal", True
    return status, False


def regularization_path(mdp: TabularMDP, dO, a_regs, *, f: str = "kl", d0=None,
                        solver_options: dict | None = None, polish: bool = True
                        ) -> list[LPResult]:
    """The f-regularised dual over occupancies for several weights, compiled once
    (Sikchi et al. 2024, "dual-V" problem; spec sheet sec. B)::

        max_d  r . d - a_reg D_f(d || dO)   s.t.  F d = b,  d >= 0,  d = 0 off supp(dO)

    with ``F, b = flow_matrix(mdp, d0)`` and ``D_f`` as in :func:`f_divergence` (KL as
    ``-sum entr(d) - d . log dO``: cvxpy's ``rel_entr`` stalls Clarabel more often; chi2
    ``sum (d - dO)^2 / dO``; TV ``sum |d - dO| / 2``). KL and chi2 are solved by Clarabel
    with :data:`CLARABEL_OPTIONS`; TV is an LP, solved by HiGHS. As ``a_reg -> 0`` the
    optimum tends to the LP's over supp(dO); as ``a_reg -> inf``, ``d`` tends to the
    f-projection of ``dO`` onto the flow polytope (``dO`` itself when ``dO`` is an
    occupancy from ``d0``). ``J(pi_a)`` (the return from d0) and ``D_f(d_a || dO)`` are
    non-increasing in ``a_reg``: adding the optimality inequalities of ``d_a`` and ``d_a'``
    for two weights ``a < a'`` gives ``(a' - a)(D_a - D_a') >= 0``, then
    ``r . d_a - r . d_a' >= a (D_a - D_a') >= 0``. The multipliers V are unique only where
    the dual over V is strictly convex (not, e.g., for TV when d = dO: then every V whose
    residuals stay inside the domain is optimal).

    ``d = 0`` off supp(dO) for every f, TV included: for KL and chi2 that is forced
    (``f'(inf) = inf``), for TV it is a restriction of this module. :func:`f_divergence`
    charges TV ``1/2`` per unit of mass off supp(dO); the problem solved here never puts
    mass there, so on its feasible set the two agree.

    Parameters
    ----------
    mdp : TabularMDP
        ``"discounted"``.
    dO : array_like (S, A)
        Data distribution: non-negative, summing to 1 (atol 1e-9).
    a_regs : sequence of float
        Non-empty; weights in :data:`A_REG_RANGE` = [1e-6, 1e6] (reward units).
    f : {"kl", "chi2", "tv"}, default "kl"
    d0 : array_like (S,), optional
        Default ``mdp.mu0``.
    solver_options : dict, optional
        Options overriding the solver's defaults (:data:`CLARABEL_OPTIONS` or
        :data:`HIGHS_OPTIONS`).
    polish : bool, default True
        KL only: refine Clarabel's point by Newton steps on the smooth dual over V, which
        make ``d = dO exp(y / a_reg - 1)`` and ``F d = b`` hold to rounding (Clarabel alone
        pins d to about 1e-5: its tolerance bounds the objective, not d); kept only if it
        lowers the flow residual. A point Clarabel returns as ``optimal_inaccurate`` is
        reported ``"optimal"`` with ``certified = True`` when the polished flow residual is
        at most 1e-12 (relative to ``max(1, ||b||_inf)``): with d > 0 exactly stationary,
        these KKT conditions of a strictly concave problem prove optimality; above that it
        stays ``"optimal_inaccurate"`` (no arrays).

    Returns
    -------
    list of LPResult
        One per weight, ``form = f + "-d"``: ``objective = r . d - a_reg D_f`` (discounted
        units: ``(1 - gamma)`` times a return); ``V`` the flow constraint's multipliers;
        ``gap = G(V) - objective`` with ``G`` the dual over V (see
        :func:`solve_regularized`). A model that is infeasible (no occupancy from ``d0``
        lives on supp(dO)) comes back with status ``"infeasible"`` and no arrays.

    Raises
    ------
    ValueError
        For a non-discounted MDP, a ``dO`` of the wrong shape, with negative entries, zero
        mass everywhere or not summing to 1, no weight, a weight that is not positive and
        finite or lies outside :data:`A_REG_RANGE`, or an unknown ``f``.
    TypeError
        If an ``a_reg`` is not a real number.
    ImportError
        If the solver is not installed (failures are reported, as in :func:`solve_lp`).
    """
    import cvxpy as cp

    _check_kind(mdp, ("discounted",), "the regularised dual")
    f = _read_f(f)
    mdp = _with_d0(mdp, d0)
    dO = _read_dO(mdp, dO)
    a_values = [_read_a_reg(a) for a in np.atleast_1d(np.asarray(a_regs, dtype=object))]
    if not a_values:
        raise ValueError("a_regs is empty: give at least one regularisation weight")
    F, b = flow_matrix(mdp)
    r = _flat_rewards(mdp)
    on = dO.ravel() > 0
    w, r_on, F_on = dO.ravel()[on], r[on], F[:, on]
    x = cp.Variable(int(on.sum()), nonneg=True)
    # The objective is divided by max(1, a_reg): with large weights Clarabel otherwise
    # stalls short of its tolerances on KL (seen at a_reg ~ 30 on the 8x8 grid world).
    c_r, c_D = cp.Parameter(nonneg=True), cp.Parameter(nonneg=True)
    if f == "kl":  # sum x log(x / w) through entr: rel_entr's cone holds the tiny w and
        D = -cp.sum(cp.entr(x)) - np.log(w) @ x  # made Clarabel stall more often
    elif f == "chi2":
        D = cp.sum(cp.multiply(1.0 / w, cp.square(x - w)))
    else:
        D = 0.5 * cp.sum(cp.abs(x - w))
    flow = F_on @ x == b
    problem = cp.Problem(cp.Maximize(c_r * (r_on @ x) - c_D * D), [flow])
    solver = _solver_for(f)
    results = []
    for a_reg in a_values:
        scale = max(1.0, a_reg)
        c_r.value, c_D.value = 1.0 / scale, a_reg / scale
        outcome = _solve_outcome(problem, solver, solver_options)
        status, certified = outcome.status, False
        if status in ("optimal", "optimal_inaccurate") and polish and f == "kl":
            d_on = np.maximum(x.value, 0.0)
            V = scale * np.asarray(flow.dual_value, dtype=np.float64)
            V, d_on, residual = _polish_kl(F_on, b, r_on, w, a_reg, V, d_on)
            status, certified = _kl_status(status, residual, b)
            objective = _primal_value(f, a_reg, r_on, d_on, w)
        elif status == "optimal":
            d_on = np.maximum(x.value, 0.0)
            V = scale * np.asarray(flow.dual_value, dtype=np.float64)
            objective = scale * float(problem.value)
        if status != "optimal":
            results.append(_failed(outcome, solver, f"{f}-d", status))
            continue
        d_flat = np.zeros(mdp.S * mdp.A)
        d_flat[on] = d_on
        d_out = d_flat.reshape(mdp.S, mdp.A)
        gap = _dual_value(f, a_reg, b, V, r_on - F_on.T @ V, w) - objective
        results.append(LPResult(status="optimal", objective=objective, gap=float(gap), V=V,
                                d=d_out, pi=_recover_policy(mdp, d_out, V), solver=solver,
                                solve_time=outcome.seconds, form=f"{f}-d",
                                solver_time=outcome.solver_seconds, certified=certified))
    return results


def solve_regularized(mdp: TabularMDP, dO, a_reg: float, *, f: str = "kl", over: str = "d",
                      d0=None, solver_options: dict | None = None,
                      polish: bool = True) -> LPResult:
    """The f-regularised dual RL problem, over occupancies or over values (Sikchi et al.
    2024, "dual-V"; spec sheet secs. B and C).

    ``over="d"``: the problem of :func:`regularization_path` for one weight.
    ``over="V"``: its unconstrained Lagrangian dual (the flow multiplier is V)::

        min_V  b . V + a_reg sum_{supp(dO)} dO(s, a) f*_p( y(s, a) / a_reg ),
        y = r - F^T V = R(s, a) + gamma sum_s' P(s'|s, a) V(s') - V(s),

    with ``f*_p`` the non-negative conjugate (:func:`conjugate`: needed because ``d >= 0``
    is not implied by the flow constraint). KL and chi2 then give
    ``d = dO * w*(y / a_reg)`` (:func:`optimal_ratio`).

    Total variation: ``f*`` is finite only on ``[-1/2, 1/2]``. The lower end is removed by
    the non-negative conjugate (``f*_p(u) = max(u, -1/2)``: ratio 0 below ``-1/2``), but
    ``f*_p(u) = +inf`` for ``u > 1/2`` stays, so the dual over V gains the constraint

        ``y(s, a) <= a_reg / 2``  for every (s, a) in supp(dO)

    (no Bellman residual may exceed half the weight). Pairs off supp(dO) carry no term and
    no constraint, because the problem over d fixes ``d = 0`` there (see
    :func:`regularization_path`; letting d use them at TV's price ``1/2`` per unit would
    add ``y <= a_reg / 2`` on every pair). Written as the LP ``min b . V + dO . t`` s.t.
    ``y <= t`` (multiplier ``lam1``), ``t >= -a_reg/2``, ``y <= a_reg / 2`` (multiplier
    ``lam3``) (``t`` is ``a_reg`` times the conjugate's argument, which keeps the
    coefficients O(1) for large weights), its stationarity conditions give
    ``d = lam1 + lam3`` with ``0 <= lam1 <= dO``: mass above ``dO`` (``d / dO > 1``) sits
    only where the domain constraint is active, which is where ``d`` is read from.
    KL and chi2 minimise ``G(V) / max(1, a_reg)`` (the same minimiser; Clarabel stalls on
    large weights otherwise).

    Parameters
    ----------
    mdp, dO, a_reg, f, d0, solver_options, polish
        As :func:`regularization_path` (one positive ``a_reg``).
    over : {"d", "V"}, default "d"

    Returns
    -------
    LPResult
        ``form = f + "-" + over``; for ``over="V"``: ``objective = G(V*)``, ``d`` from the
        ratio formula (KL, chi2) or the multipliers (TV), ``gap = G(V) - (r . d - a_reg
        D_f(d || dO))``. Strong duality: both forms have the same objective. For chi2 the
        ratio formula's d meets the flow constraint only up to the error of V times
        ``1/(2 a_reg)``, so this gap can be negative by about that much (weak duality
        holds only for feasible d; -5e-5 at a_reg = 1e-6 on a 6-state Garnet); KL's d is
        polished onto the flow constraint.

    Raises
    ------
    ValueError, TypeError, ImportError
        As :func:`regularization_path`.
    """
    over = _read_over(over)
    if over == "d":
        _read_a_reg(a_reg)
        return regularization_path(mdp, dO, [a_reg], f=f, d0=d0,
                                   solver_options=solver_options, polish=polish)[0]
    import cvxpy as cp

    _check_kind(mdp, ("discounted",), "the regularised dual")
    f = _read_f(f)
    mdp = _with_d0(mdp, d0)
    dO = _read_dO(mdp, dO)
    a_reg = _read_a_reg(a_reg)
    F, b = flow_matrix(mdp)
    r = _flat_rewards(mdp)
    on = dO.ravel() > 0
    w, r_on, F_on = dO.ravel()[on], r[on], F[:, on]
    V = cp.Variable(mdp.S)
    y = r_on - F_on.T @ V
    constraints = []
    scale = 1.0 if f == "tv" else max(1.0, a_reg)
    if f == "kl":
        objective = b @ V + a_reg * (w @ cp.exp(y / a_reg - 1.0))
    elif f == "chi2":
        objective = b @ V + a_reg * (w @ (cp.square(cp.pos(y / a_reg + 2.0)) / 4.0 - 1.0))
    else:
        t = cp.Variable(int(on.sum()))
        constraints = [y <= t, t >= -a_reg / 2.0, y <= a_reg / 2.0]
        objective = b @ V + w @ t
    problem = cp.Problem(cp.Minimize(objective / scale), constraints)
    solver = _solver_for(f)
    outcome = _solve_outcome(problem, solver, solver_options)
    status, certified = outcome.status, False
    polishing = polish and f == "kl" and status in ("optimal", "optimal_inaccurate")
    if status != "optimal" and not polishing:
        return _failed(outcome, solver, f"{f}-V")
    V_out = np.asarray(V.value, dtype=np.float64)
    if f == "tv":
        d_on = np.maximum(constraints[0].dual_value + constraints[2].dual_value, 0.0)
    else:
        d_on = w * optimal_ratio(f, (r_on - F_on.T @ V_out) / a_reg)
    objective_value = scale * float(problem.value)
    if polishing:
        V_out, d_on, residual = _polish_kl(F_on, b, r_on, w, a_reg, V_out, d_on)
        status, certified = _kl_status(status, residual, b)
        if status != "optimal":
            return _failed(outcome, solver, f"{f}-V", status)
        objective_value = _dual_value(f, a_reg, b, V_out, r_on - F_on.T @ V_out, w)
    d_flat = np.zeros(mdp.S * mdp.A)
    d_flat[on] = d_on
    d_out = d_flat.reshape(mdp.S, mdp.A)
    gap = objective_value - _primal_value(f, a_reg, r, d_flat, dO.ravel())
    return LPResult(status="optimal", objective=objective_value, gap=float(gap), V=V_out,
                    d=d_out, pi=_recover_policy(mdp, d_out, V_out), solver=solver,
                    solve_time=outcome.seconds, form=f"{f}-V",
                    solver_time=outcome.solver_seconds, certified=certified)
