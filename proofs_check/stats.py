"""Statistical checkers for stated bounds: exact binomial intervals, bootstrap rate fits, G-tests."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as _stats

from proofs_check.messages import plain
from proofs_check.seeding import as_generator

# Entries of the count matrix W per chunk of the multinomial bootstrap (float64: 32 MB).
# Few, large GEMM calls also keep a multi-threaded BLAS efficient when the cores are shared
# (many small calls were 10x slower under load).
_CHUNK_ELEMENTS = 1 << 22


def _pct(level: float) -> str:
    return f"{100.0 * (1.0 - level):.6g}%"


def _at(arr: np.ndarray, i) -> str:
    """``"[1, 0] = 3"`` (or ``" = 3"`` for a 0-d ``arr``): where ``arr[i]`` is and its value."""
    where = "[" + ", ".join(str(int(j)) for j in i) + "]" if arr.ndim else ""
    value = float(arr[i])
    text = str(int(value)) if np.isfinite(value) and value == round(value) else repr(value)
    return f"{where} = {text}"


def _check_count_array(values, name) -> np.ndarray:
    """``values`` as a float array of finite integers, or raise naming the first bad entry."""
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr) | (arr != np.round(arr))
    if np.any(bad):
        i = tuple(np.argwhere(bad)[0])
        raise ValueError(f"k and n must be finite integers, got {name}{_at(arr, i)}")
    return arr


def _check_level(level, name="level") -> float:
    level = float(level)
    if not 0.0 < level < 1.0:
        raise ValueError(f"{name} must lie in (0, 1), got {level}")
    return level


# -- exact binomial intervals ------------------------------------------------------------


def clopper_pearson(k, n, alpha=1e-3, *, sided="two"):
    """Exact (Clopper-Pearson) confidence interval for a binomial proportion.

    Two-sided: ``lo = Beta^{-1}(alpha/2; k, n-k+1)``, ``hi = Beta^{-1}(1-alpha/2; k+1, n-k)``
    with ``lo = 0`` at ``k = 0`` and ``hi = 1`` at ``k = n``. One-sided ``"upper"``:
    ``(0, Beta^{-1}(1-alpha; k+1, n-k))``; ``"lower"``: ``(Beta^{-1}(alpha; k, n-k+1), 1)``.
    Source: Clopper & Pearson (1934), Biometrika 26(4), 404-413.

    Parameters
    ----------
    k : int or array_like of int
        Numbers of successes, ``0 <= k <= n``.
    n : int or array_like of int
        Numbers of trials, ``n >= 1`` (broadcast against ``k``).
    alpha : float, default 1e-3
        Total non-coverage probability, in (0, 1).
    sided : {"two", "upper", "lower"}

    Returns
    -------
    (lo, hi) : floats, or float64 arrays of the broadcast shape of ``k`` and ``n``

    Raises
    ------
    ValueError
        If k or n is not finite and integer-valued, ``n < 1`` or ``k`` outside ``[0, n]``
        (the message names the first bad entry), ``alpha`` outside (0, 1) or ``sided``
        unknown.
    """
    alpha = _check_level(alpha, "alpha")
    if sided not in ("two", "upper", "lower"):
        raise ValueError(f"sided must be 'two', 'upper' or 'lower', got {plain(sided)}")
    k_arr, n_arr = np.broadcast_arrays(_check_count_array(k, "k"), _check_count_array(n, "n"))
    if np.any(n_arr < 1):
        i = tuple(np.argwhere(n_arr < 1)[0])
        raise ValueError(f"n must be >= 1, got n{_at(n_arr, i)}")
    if np.any(k_arr < 0) or np.any(k_arr > n_arr):
        i = tuple(np.argwhere((k_arr < 0) | (k_arr > n_arr))[0])
        raise ValueError(f"k must satisfy 0 <= k <= n, got k{_at(k_arr, i)}, n{_at(n_arr, i)}")
    tail = alpha / 2 if sided == "two" else alpha
    with np.errstate(invalid="ignore"):
        lo = np.where(k_arr == 0, 0.0, _stats.beta.ppf(tail, k_arr, n_arr - k_arr + 1))
        hi = np.where(k_arr == n_arr, 1.0, _stats.beta.ppf(1 - tail, k_arr + 1, n_arr - k_arr))
    if sided == "upper":
        lo = np.zeros_like(lo)
    elif sided == "lower":
        hi = np.ones_like(hi)
    if lo.ndim == 0:
        return float(lo), float(hi)
    return lo, hi


# -- high-probability claims -------------------------------------------------------------


@dataclass(frozen=True)
class HighProbabilityCheck:
    """Result of :func:`check_high_probability`.

    Attributes
    ----------
    n, k : int
        Runs and violations (runs with ``sample > bound``).
    rate : float
        ``k / n``.
    lower, upper : float
        One-sided level-``alpha`` Clopper-Pearson lower and upper bounds on the violation
        probability.
    delta, alpha : float
    consistent : bool
        ``lower <= delta``: the data do not reject "P(violation) <= delta" at level alpha.
    certified : bool
        ``upper <= delta``: the data demonstrate "P(violation) <= delta" at level alpha.
    text : str
        One-line quantitative summary.

    ``ok`` is ``certified``, the strict reading, used by default for a verdict; use
    ``consistent`` for a bound that is tight (violated with probability exactly delta),
    which no number of runs can certify.
    """

    n: int
    k: int
    rate: float
    lower: float
    upper: float
    delta: float
    alpha: float
    consistent: bool
    certified: bool
    text: str

    @property
    def ok(self) -> bool:
        return self.certified


def check_high_probability(samples, bound, delta, *, alpha=1e-3) -> HighProbabilityCheck:
    """Check a claim "``sample <= bound`` with probability at least ``1 - delta``".

    Counts the violations ``k = #{i : samples[i] > bound[i]}`` among ``n`` independent runs
    and brackets the violation probability with one-sided exact binomial (Clopper-Pearson)
    bounds at level ``alpha`` each.

    Parameters
    ----------
    samples : array_like, shape (n,)
        Realised values of the random quantity, one per independent run; finite.
    bound : float or array_like, shape (n,)
        The claimed bound (per run when it depends on the run's data).
    delta : float
        Claimed failure probability, in (0, 1).
    alpha : float, default 1e-3
        Level of each one-sided test.

    Returns
    -------
    HighProbabilityCheck
        With ``consistent`` (not rejected) and ``certified`` (demonstrated) readings;
        ``.ok`` is ``certified``.

    Raises
    ------
    ValueError
        If ``samples`` is not 1-d and non-empty, contains NaN or infinity, ``bound`` has
        another shape or NaN, or ``delta``/``alpha`` lie outside (0, 1).
    """
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 1 or samples.size == 0:
        raise ValueError(f"samples must be a non-empty 1-d array, got shape {samples.shape}")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"samples must be finite; samples[{np.flatnonzero(~np.isfinite(samples))[0]}] is not")
    bound = np.asarray(bound, dtype=float)
    if bound.ndim != 0 and bound.shape != samples.shape:
        raise ValueError(f"bound must be a scalar or have the shape of samples {samples.shape}, got {bound.shape}")
    if np.any(np.isnan(bound)):
        raise ValueError("bound contains NaN")
    delta = _check_level(delta, "delta")
    alpha = _check_level(alpha, "alpha")
    n = samples.size
    k = int(np.count_nonzero(samples > bound))
    lower, _ = clopper_pearson(k, n, alpha, sided="lower")
    _, upper = clopper_pearson(k, n, alpha, sided="upper")
    consistent, certified = lower <= delta, upper <= delta
    if certified:
        reading = "certified (upper <= delta)"
    elif consistent:
        reading = "consistent, not certified (lower <= delta < upper; more runs needed)"
    else:
        reading = "REJECTED (lower > delta)"
    text = (
        f"{k}/{n} runs exceed the bound (rate {k / n:.4g}); one-sided Clopper-Pearson bounds "
        f"at level {alpha:g}: P(violation) in [{lower:.4g}, {upper:.4g}]; delta = {delta:g}: {reading}"
    )
    return HighProbabilityCheck(n, k, k / n, lower, upper, delta, alpha, bool(consistent), bool(certified), text)


# -- bootstrap rate fits -----------------------------------------------------------------


def _slopes(log_x, log_y):
    """Least-squares slopes of each row of ``log_y (..., n_x)`` on ``log_x (n_x,)``."""
    u = log_x - log_x.mean()
    return (log_y @ u) / np.dot(u, u)


def _check_tails(level, n_boot) -> float:
    level = _check_level(level)
    if level / 2 * n_boot < 1:
        raise ValueError(
            f"a {_pct(level)} percentile interval needs level/2 * n_boot >= 1 resample in each tail; "
            f"got level {level:g}, n_boot {n_boot}: increase n_boot"
        )
    return level


def _percentile_interval(values, level):
    level = _check_tails(level, values.shape[0])
    lo, hi = np.quantile(values, [level / 2, 1 - level / 2], axis=0)
    return lo, hi


@dataclass(frozen=True, eq=False)
class RateFit:
    """Result of :func:`fit_rate`.

    Attributes
    ----------
    x : ndarray, shape (n_x,)
    statistic : ndarray, shape (n_x,)
        Mean over units at each x, or the maximum over the grid of the unit means.
    slope : float
        Least-squares slope of ``log statistic`` on ``log x``.
    boot_slopes : ndarray, shape (n_boot,)
    n_boot : int
    level : float
        Two-sided level of ``ci``.
    seed : int, SeedSequence, Generator or None
        As passed to :func:`fit_rate`.
    ci : (float, float)
        Two-sided percentile interval of the slope at ``level``.
    boot_statistic : ndarray, shape (n_boot, n_x)
        The statistic recomputed in each resample.
    method : str
        ``"multinomial"`` or ``"gaussian"``.
    """

    x: np.ndarray
    statistic: np.ndarray
    slope: float
    boot_slopes: np.ndarray
    n_boot: int
    level: float
    seed: object
    ci: tuple
    boot_statistic: np.ndarray
    method: str = "multinomial"

    def interval(self, level=None) -> tuple:
        """Two-sided percentile interval of the slope at ``level`` (default ``self.level``).

        Raises
        ------
        ValueError
            If ``level`` is outside (0, 1) or ``level / 2 * n_boot < 1``.
        """
        lo, hi = _percentile_interval(self.boot_slopes, self.level if level is None else level)
        return float(lo), float(hi)

    def stat_interval(self, level=None) -> tuple:
        """Two-sided percentile intervals ``(lo (n_x,), hi (n_x,))`` of the per-x statistic."""
        return _percentile_interval(self.boot_statistic, self.level if level is None else level)


def _as_unit_x_grid(samples, grid_axis, n_x) -> np.ndarray:
    samples = np.asarray(samples, dtype=float)
    if grid_axis is None:
        if samples.ndim != 2:
            raise ValueError(f"samples must have shape (n_units, n_x) without grid_axis, got {samples.shape}")
        samples = samples[:, :, None]
    elif grid_axis in (2, -1):
        if samples.ndim != 3:
            raise ValueError(f"samples must have shape (n_units, n_x, n_grid) with grid_axis={grid_axis}, got {samples.shape}")
    else:
        raise ValueError(f"grid_axis must be None, 2 or -1 (samples are (n_units, n_x, n_grid)), got {grid_axis}")
    if samples.shape[1] != n_x:
        raise ValueError(f"samples axis 1 has length {samples.shape[1]}, but x has {n_x} points")
    if samples.shape[0] < 2:
        raise ValueError(f"need at least 2 units to resample, got {samples.shape[0]}")
    if samples.shape[2] < 1:
        raise ValueError("the grid axis is empty")
    if not np.all(np.isfinite(samples)):
        raise ValueError("samples must be finite (NaN or infinity found)")
    return samples


def _boot_means_multinomial(X, n_boot, rng):
    """Efron bootstrap: resampled column means ``(n_boot, n_grid)`` of ``X (n_units, n_grid)``.

    Each resample draws n_units unit indices uniformly with replacement; a Numba kernel
    turns them into multinomial counts ``W[b, j]`` (chunks of resamples, ~32 MB each), and
    the resampled means of all columns at once are the GEMM ``W @ X / n_units``.
    """
    from proofs_check._kernels import resample_counts

    n_units = X.shape[0]
    chunk = max(1, min(n_boot, _CHUNK_ELEMENTS // n_units))
    out = np.empty((n_boot, X.shape[1]))
    for start in range(0, n_boot, chunk):
        c = min(chunk, n_boot - start)
        np.matmul(resample_counts(rng, c, n_units), X, out=out[start:start + c])
    out /= n_units
    return out


def _boot_means_gaussian(X, n_boot, rng):
    """Gaussian multiplier bootstrap of the column means of ``X (n_units, n_grid)``.

    The resampled mean vector is ``xbar + (1/n_units) sum_j xi_j (X_j - xbar)`` with
    ``xi_j ~ N(0, 1)`` iid over units; given the data it is exactly
    ``N(xbar, Sigma_hat / n_units)`` (``Sigma_hat`` the empirical covariance, divisor
    n_units), so it is drawn through an eigen-factor of that covariance instead.
    Source: Chernozhukov, Chetverikov & Kato (2013), Ann. Statist. 41(6), 2786-2819
    (validity for maxima of many means).
    """
    n_units = X.shape[0]
    xbar = X.mean(axis=0)
    Xc = X - xbar
    eigval, eigvec = np.linalg.eigh(Xc.T @ Xc / n_units**2)
    factor = eigvec * np.sqrt(np.clip(eigval, 0.0, None))
    return xbar + rng.standard_normal((n_boot, X.shape[1])) @ factor.T


_BOOT_MEANS = {"multinomial": _boot_means_multinomial, "gaussian": _boot_means_gaussian}


def fit_rate(x, samples, grid_axis=None, *, n_boot=8000, level=1e-3, seed=None, method="multinomial") -> RateFit:
    """Log-log slope of a per-x statistic of unit samples, with a bootstrap over units.

    At each ``x[i]`` the statistic is the mean over units, ``mean_u samples[u, i]``, or, for a
    worst-case claim with a grid of instances, ``max_g mean_u samples[u, i, g]`` (the
    maximum over the grid of the unit means, not the mean of per-unit maxima). The slope
    is the least-squares slope of ``log statistic`` on ``log x``. Units are resampled
    independently at each x and the statistic (including the maximum over the grid) is
    recomputed in every resample; the percentile interval of the ``n_boot`` resampled
    slopes is the confidence interval.

    Resampling schemes (``method``):

    - ``"multinomial"`` (Efron's bootstrap, the default): each resample draws n_units
      units uniformly with replacement, as multinomial counts ``W`` (built by a Numba
      kernel per chunk of resamples); the resampled means of all grid columns
      are the GEMM ``W @ samples[:, i, :] / n_units``; columns that are zero for every
      unit are skipped (their mean is 0 in every resample). Cost grows as
      ``n_boot * n_units * n_x``; :func:`fit_rates` shares the draws between claims.
    - ``"gaussian"`` (multiplier bootstrap with N(0, 1) unit weights, Chernozhukov,
      Chetverikov & Kato 2013): given the data the resampled mean vector is exactly
      ``N(xbar, Sigma_hat / n_units)``, drawn directly, so the cost after one
      ``(n_grid, n_grid)`` covariance per x does not grow with n_units. It relies on the central limit theorem for the unit means: avoid it
      when a statistic rests on a handful of non-zero units (resampled statistics below
      zero then raise).

    Parameters
    ----------
    x : array_like, shape (n_x,)
        Positive, distinct values of the varied symbol (e.g. N), ``n_x >= 2``.
    samples : array_like, shape (n_units, n_x) or (n_units, n_x, n_grid)
        Per-unit realised values (e.g. sub-optimality of one run); finite.
    grid_axis : None, 2 or -1
        Axis of the instance grid (3-d samples only).
    n_boot : int, default 8000
    level : float, default 1e-3
        Two-sided level of the stored interval ``ci``.
    seed : int, SeedSequence, Generator or None
        Passed to :func:`proofs_check.seeding.as_generator`; same seed, same resamples.
    method : {"multinomial", "gaussian"}

    Returns
    -------
    RateFit

    Raises
    ------
    ValueError
        On bad shapes, non-positive or repeated x, non-finite samples, fewer than 2 units,
        a non-positive statistic at some x (named), a non-positive resampled statistic (the
        x and the fraction of resamples are named), or ``level / 2 * n_boot < 1``.
    """
    return fit_rates(x, [samples], grid_axis, n_boot=n_boot, level=level, seed=seed,
                     method=method)[0]


def fit_rates(x, samples_list, grid_axis=None, *, n_boot=8000, level=1e-3, seed=None,
              method="multinomial") -> list:
    """:func:`fit_rate` for several claims at once, sharing the resampled unit indices.

    Every array in ``samples_list`` has the same number of units (its own grid size may
    differ). At each x one set of resamples serves all claims, which saves the dominant
    cost (drawing the resamples). Each claim's interval is the same percentile bootstrap
    as with :func:`fit_rate`; only the claims' bootstrap errors become correlated, which a
    Bonferroni correction over the claims does not need to exclude. With one array this is
    exactly ``[fit_rate(...)]`` (same seed, same numbers).

    Returns
    -------
    list of RateFit
        One per array of ``samples_list``, in order.

    Raises
    ------
    ValueError
        As :func:`fit_rate`, naming the claim (its index in ``samples_list``), or when the
        arrays differ in their number of units.
    """
    if method not in _BOOT_MEANS:
        raise ValueError(f"method must be one of {sorted(_BOOT_MEANS)}, got {plain(method)}")
    x = np.asarray(x, dtype=float)
    if x.ndim != 1 or x.size < 2:
        raise ValueError(f"x must be 1-d with at least 2 points, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"x must be positive and finite, got {x}")
    if np.unique(x).size != x.size:
        raise ValueError(f"x values must be distinct, got {x}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive int, got {plain(n_boot)}")
    level = _check_tails(level, n_boot)
    Ys = [_as_unit_x_grid(samples, grid_axis, x.size) for samples in samples_list]
    if not Ys:
        raise ValueError("samples_list is empty")
    if len({Y.shape[0] for Y in Ys}) > 1:
        raise ValueError(f"all claims need the same number of units, got {[Y.shape[0] for Y in Ys]}")
    name = (lambda j: "") if len(Ys) == 1 else (lambda j: f"claim {j}: ")
    statistics = [Y.mean(axis=0).max(axis=1) for Y in Ys]
    for j, statistic in enumerate(statistics):
        for i in range(x.size):
            if statistic[i] <= 0:
                raise ValueError(f"{name(j)}statistic at x = {x[i]:g} is {statistic[i]:g} <= 0; "
                                 "its logarithm is undefined")
    rng = as_generator(seed)
    edges = np.cumsum([0] + [Y.shape[2] for Y in Ys])
    boot_statistics = [np.empty((n_boot, x.size)) for _ in Ys]
    for i in range(x.size):
        X = np.concatenate([Y[:, i, :] for Y in Ys], axis=1)
        means = np.zeros((n_boot, X.shape[1]))
        live = np.flatnonzero(np.any(X != 0, axis=0))
        means[:, live] = _BOOT_MEANS[method](np.ascontiguousarray(X[:, live]), n_boot, rng)
        for j, boot in enumerate(boot_statistics):
            boot[:, i] = means[:, edges[j]:edges[j + 1]].max(axis=1)
            bad = np.mean(boot[:, i] <= 0)
            if bad > 0:
                raise ValueError(
                    f"{name(j)}resampled statistic at x = {x[i]:g} is <= 0 in {bad:.2%} of "
                    f"{n_boot} resamples; the log-log slope is undefined there (too few "
                    "non-zero units)"
                )
    log_x = np.log(x)
    fits = []
    for statistic, boot in zip(statistics, boot_statistics):
        slope = float(_slopes(log_x, np.log(statistic)))
        boot_slopes = _slopes(log_x, np.log(boot))
        ci = tuple(float(v) for v in _percentile_interval(boot_slopes, level))
        fits.append(RateFit(x, statistic, slope, boot_slopes, int(n_boot), level, seed, ci,
                            boot, method))
    return fits


# -- verdicts ----------------------------------------------------------------------------


def _describe(fit, lo, hi, level, extra=""):
    return (
        f"fitted slope {fit.slope:.3f} [{lo:.3f}, {hi:.3f}] "
        f"({_pct(level)} {fit.method} bootstrap{extra}, {fit.n_boot} resamples)"
    )


def upper_bound_verdict(fit: RateFit, local_slope, *, tol=0.03, level=None) -> tuple:
    """Rate check for an upper bound: the data may decay faster than the bound, not slower.

    Consistent when the upper end of the two-sided percentile interval of the fitted slope
    (at ``level``, default ``fit.level``) is at most ``local_slope + tol``.

    Returns
    -------
    (ok, text) : (bool, str)
        e.g. ``"fitted slope -0.441 [-0.452, -0.430] (99.9% multinomial bootstrap, 8000
        resamples); bound's local slope -0.445 (tol 0.03): consistent"``.
    """
    level = fit.level if level is None else level
    lo, hi = fit.interval(level)
    ok = hi <= local_slope + tol
    word = "consistent" if ok else f"NOT consistent (upper end {hi:.3f} > {local_slope + tol:.3f})"
    return bool(ok), f"{_describe(fit, lo, hi, level)}; bound's local slope {local_slope:.3f} (tol {tol:g}): {word}"


def lower_bound_verdict(fit: RateFit, local_slope, *, tol=0.03, level=None) -> tuple:
    """Rate check for a lower bound: consistent when the interval's lower end is at least
    ``local_slope - tol``. Returns ``(ok, text)`` as :func:`upper_bound_verdict`."""
    level = fit.level if level is None else level
    lo, hi = fit.interval(level)
    ok = lo >= local_slope - tol
    word = "consistent" if ok else f"NOT consistent (lower end {lo:.3f} < {local_slope - tol:.3f})"
    return bool(ok), f"{_describe(fit, lo, hi, level)}; bound's local slope {local_slope:.3f} (tol {tol:g}): {word}"


def band_verdict(fit: RateFit, lo, hi, *, n_claims=1, level=1e-3) -> tuple:
    """A band claim "the slope lies in [lo, hi]".

    Holds when the two-sided percentile interval of the slope at level ``level / n_claims``
    (Bonferroni over the figure's ``n_claims`` band claims) lies inside ``[lo, hi]``.

    Returns
    -------
    (ok, text) : (bool, str)

    Raises
    ------
    ValueError
        If ``lo > hi``, ``n_claims < 1``, or the corrected level needs more resamples.
    """
    if lo > hi:
        raise ValueError(f"band must have lo <= hi, got [{lo}, {hi}]")
    if isinstance(n_claims, bool) or not isinstance(n_claims, (int, np.integer)) or n_claims < 1:
        raise ValueError(f"n_claims must be a positive int, got {plain(n_claims)}")
    corrected = _check_level(level) / n_claims
    c_lo, c_hi = fit.interval(corrected)
    ok = lo <= c_lo and c_hi <= hi
    extra = f", Bonferroni over {n_claims} claims" if n_claims > 1 else ""
    word = "inside" if ok else "NOT inside"
    return bool(ok), f"{_describe(fit, c_lo, c_hi, corrected, extra)}; claimed band [{lo:.3f}, {hi:.3f}]: {word}"


# -- goodness of fit ---------------------------------------------------------------------


def _pool(observed, expected, min_expected):
    small = expected < min_expected
    if not np.any(small):
        return observed, expected
    obs = np.append(observed[~small], observed[small].sum())
    exp = np.append(expected[~small], expected[small].sum())
    if exp[-1] < min_expected and exp.size > 1:
        # The pooled cell is still too small: merge it into the smallest remaining cell.
        j = int(np.argmin(exp[:-1]))
        obs[j] += obs[-1]
        exp[j] += exp[-1]
        obs, exp = obs[:-1], exp[:-1]
    return obs, exp


def g_test(observed, expected, *, min_expected=5.0) -> tuple:
    """Log-likelihood-ratio (G) goodness-of-fit test of counts against expected counts.

    Pooling: cells with expected 0 and observed 0 are dropped; all cells with expected
    count below ``min_expected`` are pooled into one cell; if that pooled cell is still
    below ``min_expected`` it is merged into the remaining cell with the smallest expected
    count. Then ``G = 2 sum o log(o / e)`` with ``cells - 1`` degrees of freedom
    (``scipy.stats.power_divergence(lambda_="log-likelihood")``). Source: Sokal & Rohlf,
    Biometry, G-test of goodness of fit.

    Parameters
    ----------
    observed : array_like, shape (k,)
        Non-negative counts.
    expected : array_like, shape (k,)
        Non-negative expected counts (``n * p``) with the same total as ``observed``
        (relative tolerance 1e-8).
    min_expected : float, default 5.0

    Returns
    -------
    (statistic, dof, p_value) : (float, int, float)

    Raises
    ------
    ValueError
        On shape mismatch, negative or non-finite entries, totals that differ, a cell with
        observed counts but expected 0 (named), or fewer than 2 cells after pooling.
    """
    observed = np.asarray(observed, dtype=float)
    expected = np.asarray(expected, dtype=float)
    if observed.ndim != 1 or observed.shape != expected.shape:
        raise ValueError(f"observed and expected must be 1-d of equal shape, got {observed.shape} and {expected.shape}")
    for name, a in (("observed", observed), ("expected", expected)):
        if not np.all(np.isfinite(a)) or np.any(a < 0):
            raise ValueError(f"{name} must be finite and non-negative")
    if not np.isclose(observed.sum(), expected.sum(), rtol=1e-8, atol=0):
        raise ValueError(
            f"observed total {observed.sum():g} differs from expected total {expected.sum():g}; pass expected counts n * p"
        )
    impossible = np.flatnonzero((expected == 0) & (observed > 0))
    if impossible.size:
        i = impossible[0]
        raise ValueError(f"observed[{i}] = {observed[i]:g} but expected[{i}] = 0: the claimed distribution excludes it")
    keep = expected > 0
    obs, exp = _pool(observed[keep], expected[keep], float(min_expected))
    if obs.size < 2:
        raise ValueError(f"fewer than 2 cells left after pooling cells with expected < {min_expected:g}; use more samples")
    statistic, p_value = _stats.power_divergence(obs, exp, lambda_="log-likelihood")
    return float(statistic), int(obs.size - 1), float(p_value)


def sign_test_p(wins: int, n: int) -> float:
    """One-sided exact sign test over ``n`` paired units: ``P(Binomial(n, 1/2) >= wins)``.

    Ties count as losses, so the test is conservative. Source: the binomial sign test
    (e.g. Conover, *Practical Nonparametric Statistics*, 1999, sec. 3.4).
    """
    from scipy.stats import binom

    return float(binom.sf(wins - 1, n, 0.5))


def min_sign_test_units(level: float) -> int:
    """Fewest paired units at which all wins (p = 2^-n) reaches ``level``."""
    return int(np.ceil(-np.log2(level)))


def sign_test_headline(n: int, min_units: int, level: float, reproduced: bool) -> str:
    """The head of an empirical verdict decided by a sign test over ``n`` seeds.

    "indicative only (...)" when ``n < min_units`` (the test cannot reach ``level``), else
    "reproduced" or "not reproduced in this toy" (DESIGN.md's empirical claims).
    """
    if n < min_units:
        return (f"indicative only ({n} seeds; at least {min_units} are needed for the sign "
                f"test to reach level {level:g}, so no decision)")
    return "reproduced" if reproduced else "not reproduced in this toy"
