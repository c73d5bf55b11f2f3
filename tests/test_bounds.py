"""Tests of proofs_check.bounds (Bound, Source) and the LCB theorem catalogue."""
import math

import numpy as np
import pytest
import sympy
from scipy import stats

from proofs_check.bounds import Bound, Source
from proofs_check.theorems import lcb_pessimism as lcb

N, nA, C_star, C, k = sympy.symbols("N nA C_star C k", positive=True)
SRC = Source("A. Author: A title", 2021, "Thm 1", "TestConf", "derived")


def make(expr, kind="upper", **kw):
    symbols = {s.name: s for s in expr.free_symbols}
    symbols.update(kw.pop("symbols", {}))
    return Bound(name="B", expr=expr, symbols=symbols, source=SRC, kind=kind, quantity="q", **kw)


LCB_LIKE = make(C * sympy.sqrt(C_star * sympy.log(2 * nA * N) / N), constant="C")


# -- rate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sym, expected", [("N", -0.5), ("C_star", 0.5), ("C", 1), ("nA", 0)])
def test_rate_drops_log_factors(sym, expected):
    assert LCB_LIKE.rate(sym) == sympy.nsimplify(expected)


def test_rate_of_exponential_decay_is_minus_infinity():
    assert make(sympy.exp(-N * k)).rate("N") == -sympy.oo
    # With the Bernoulli kl written out, the sign of kl(1/2 || 1/C*) is known once C* is a number.
    assert lcb.MPA_CHERNOFF_UPPER.rate("N", C_star=sympy.Rational(3, 2)) == -sympy.oo


def test_rate_distinguishes_a_wrong_exponent():
    wrong = make(C * N ** sympy.Rational(-3, 10))
    assert wrong.rate("N") == sympy.Rational(-3, 10)
    assert wrong.rate("N") != LCB_LIKE.rate("N")


def test_rate_at_zero_and_with_values():
    eps = sympy.Symbol("epsilon", positive=True)
    assert make(C / eps**2).rate("epsilon", to=0) == -2
    # sqrt(S (C*-1)/N) + S/N: -1/2 in N for C* > 1, but -1 (the 1/N regime) when C* = 1.
    assert lcb.LCB_CB_UPPER.rate("N") == sympy.Rational(-1, 2)
    assert lcb.LCB_CB_UPPER.rate("N", C_star=1) == -1


def test_rate_rejects_unknown_or_fixed_symbols():
    with pytest.raises(ValueError, match="unknown symbol 'M'"):
        LCB_LIKE.rate("M")
    with pytest.raises(ValueError, match="cannot both vary"):
        LCB_LIKE.rate("N", N=3)
    with pytest.raises(ValueError, match="unknown symbols"):
        LCB_LIKE.rate("N", foo=3)


# -- local_slope --------------------------------------------------------------------------


def test_local_slope_matches_numpy_least_squares_and_keeps_log_factors():
    grid = np.array([1e2, 1e3, 1e4, 1e5])
    slope = LCB_LIKE.local_slope("N", grid, C=3.0, C_star=4.0, nA=2)
    # Independent reference: f by hand, plain numpy least squares of log f on [1, log N].
    f = 3.0 * np.sqrt(4.0 * np.log(4.0 * grid) / grid)
    design = np.column_stack([np.ones(4), np.log(grid)])
    reference = np.linalg.lstsq(design, np.log(f), rcond=None)[0][1]
    assert slope == pytest.approx(reference, abs=1e-12)
    # By hand: -1/2 + (1/2) * slope of log log(4N) on log N, about -0.5 + 0.5 * 0.11.
    assert slope == pytest.approx(-0.445, abs=0.003)
    assert abs(slope - float(LCB_LIKE.rate("N"))) > 0.04


def test_local_slope_of_a_pure_power_is_its_exponent():
    assert make(C * N**-1.5).local_slope("N", [10, 20, 1000], C=2.0) == pytest.approx(-1.5, abs=1e-12)


@pytest.mark.parametrize(
    "grid, match",
    [([1e2, -1.0], "positive"), ([5.0, 5.0], "2 distinct"), ([[1.0, 2.0]], "1-d"), ([1.0, np.inf], "finite")],
)
def test_local_slope_validates_grid(grid, match):
    with pytest.raises(ValueError, match=match):
        LCB_LIKE.local_slope("N", grid, C=1, C_star=2, nA=2)


def test_local_slope_requires_positive_f_and_values():
    with pytest.raises(ValueError, match="positive and finite"):
        make(1 - N).local_slope("N", [2.0, 3.0])
    with pytest.raises(ValueError, match=r"no value given for symbols \['C_star'\]"):
        LCB_LIKE.local_slope("N", [10.0, 100.0], C=1, nA=2)


# -- evaluate, substitute, str ------------------------------------------------------------


def test_evaluate_broadcasts_and_matches_formula():
    Ns = np.array([10.0, 100.0, 1000.0])
    Cs = np.array([[1.5], [4.0]])
    value = LCB_LIKE.evaluate(N=Ns, C_star=Cs, C=2.0, nA=3)
    assert value.shape == (2, 3)
    assert value == pytest.approx(2.0 * np.sqrt(Cs * np.log(6.0 * Ns) / Ns), rel=1e-14)
    constant = make(sympy.Integer(7), symbols={"N": N}).evaluate(N=np.ones(4))
    assert constant.shape == (4,) and np.all(constant == 7.0)


def test_evaluate_names_missing_and_unknown_symbols():
    with pytest.raises(ValueError, match=r"no value given for symbols \['C', 'nA'\]"):
        LCB_LIKE.evaluate(N=10, C_star=2)
    with pytest.raises(ValueError, match=r"unknown symbols \['gamma'\]"):
        LCB_LIKE.evaluate(N=10, C_star=2, C=1, nA=2, gamma=0.9)


def test_substitute_is_partial_evaluation():
    fixed = LCB_LIKE.substitute(C=1, nA=2)
    assert set(fixed.symbols) == {"N", "C_star"}
    assert fixed.constant is None
    assert float(fixed.evaluate(N=50.0, C_star=4.0)) == pytest.approx(math.sqrt(4 * math.log(200) / 50), rel=1e-14)
    assert LCB_LIKE.constant == "C"  # the original is unchanged
    with pytest.raises(ValueError, match="unknown symbols"):
        LCB_LIKE.substitute(M=1)
    delta = sympy.Symbol("delta", positive=True)
    hp = make(N * delta, delta=delta)
    assert hp.substitute(delta=sympy.Rational(1, 10)).delta == sympy.Rational(1, 10)


def test_str_is_a_readable_one_liner():
    text = str(lcb.LCB_MAB_UPPER)
    assert "\n" not in text
    for piece in ("LCB_MAB_UPPER", "<=", "2021", "NeurIPS", "recalled", "Rashidinejad"):
        assert piece in text
    assert ">=" in str(lcb.MAB_MINIMAX_LOWER)
    assert "with probability >= 1 - delta" in str(lcb.LCB_EVENT_SUBOPT)


# -- validation ---------------------------------------------------------------------------


def test_bound_validation():
    with pytest.raises(ValueError, match="kind must be one of"):
        make(N, kind="sideways")
    with pytest.raises(ValueError, match=r"symbols \['N'\] that are not in symbols"):
        Bound("B", C * N, {"C": C}, SRC, quantity="q")
    with pytest.raises(ValueError, match=r"symbols \['N'\] that are not in symbols"):
        Bound("B", N, {"N": sympy.Symbol("N")}, SRC, quantity="q")  # same name, other assumptions
    with pytest.raises(ValueError, match="constant 'c'"):
        make(C * N, constant="c")
    with pytest.raises(ValueError, match="delta must lie in"):
        make(N, delta=1.5)
    with pytest.raises(ValueError, match="quantity"):
        Bound("B", N, {"N": N}, SRC)
    with pytest.raises(TypeError, match="sympy expression"):
        Bound("B", "N", {"N": N}, SRC, quantity="q")
    with pytest.raises(TypeError, match="Source"):
        Bound("B", N, {"N": N}, "paper", quantity="q")
    with pytest.raises(ValueError, match="keys must be symbol names"):
        Bound("B", N, {"M": N}, SRC, quantity="q")


def test_source_validation():
    with pytest.raises(ValueError, match="status must be one of"):
        Source("p", 2021, "Thm 1", "v", "probably")
    with pytest.raises(TypeError, match="year"):
        Source("p", "2021", "Thm 1", "v", "verified")
    with pytest.raises(ValueError, match="locator"):
        Source("p", 2021, "", "v", "verified")


def test_bounds_are_hashable_and_immutable():
    assert hash(LCB_LIKE) == hash(LCB_LIKE.substitute())
    with pytest.raises(AttributeError):
        LCB_LIKE.kind = "lower"


# -- the LCB catalogue --------------------------------------------------------------------


def test_catalogue_statuses_follow_the_spec_sheet():
    status = {name: b.source.status for name, b in lcb.CLAIMS.items()}
    assert status["LCB_MAB_UPPER"] == "recalled"
    assert status["MAB_MINIMAX_LOWER"] == "recalled"
    assert status["MPA_CHERNOFF_UPPER"] == "derived"
    assert status["CB_MISSING_MASS"] == "derived"
    assert status["VI_LCB_MDP_NEAR_EXPERT"] == "not verified"
    assert status["LI2022_SAMPLE_COMPLEXITY"] == "verified"
    assert all(isinstance(b, Bound) and b.name == name for name, b in lcb.CLAIMS.items())
    assert lcb.MAB_MINIMAX_LOWER.kind == "lower" and lcb.LCB_MAB_UPPER.kind == "upper"


@pytest.mark.parametrize(
    "bound, sym, expected",
    [
        (lcb.LCB_MAB_UPPER, "N", -0.5),
        (lcb.MAB_MINIMAX_LOWER, "N", -0.5),
        (lcb.VI_LCB_MDP_UPPER, "N", -0.5),
        (lcb.VI_LCB_MDP_NEAR_EXPERT, "N", -1),
        (lcb.MDP_MINIMAX_LOWER, "N", -0.5),
        (lcb.CB_MISSING_MASS, "N", -1),
        (lcb.LI2022_SAMPLE_COMPLEXITY, "epsilon", -2),
    ],
)
def test_catalogue_rates(bound, sym, expected):
    to = 0 if sym == "epsilon" else sympy.oo
    assert bound.rate(sym, to=to) == sympy.nsimplify(expected)


def test_lcb_mab_upper_local_slope_on_the_figure_grid():
    slope = lcb.LCB_MAB_UPPER.local_slope("N", [1e2, 1e3, 1e4, 1e5], C=1, C_star=4, nA=2)
    assert slope == pytest.approx(-0.445, abs=0.003)


def test_mpa_chernoff_bound_dominates_the_exact_binomial_error():
    for C_value, N_value in [(1.5, 10), (1.5, 101), (1.2, 40), (1.9, 1000)]:
        q = 1 / C_value
        kl = 0.5 * math.log(0.5 / q) + 0.5 * math.log(0.5 / (1 - q))  # kl(1/2 || q) by hand
        bound = float(lcb.MPA_CHERNOFF_UPPER.evaluate(gap_max=1.0, N=N_value, C_star=C_value))
        assert bound == pytest.approx(math.exp(-N_value * kl), rel=1e-12)
        p_wrong = stats.binom.cdf(N_value // 2, N_value, q)  # MPA errs iff N[a*] <= N/2 (ties included)
        assert p_wrong <= bound


def test_lcb_event_union_bound_sums_to_delta():
    nA_value, delta_value = 10, 0.1
    counts = np.array([1, 3, 7, 50, 100, 100, 200, 300, 120, 119])
    b = lcb.LCB_BONUS.evaluate(nA=nA_value, delta=delta_value, N_a=counts)
    hoeffding = 2 * np.exp(-2 * counts * b**2)  # per-arm two-sided Hoeffding failure probability
    assert hoeffding.sum() == pytest.approx(float(lcb.LCB_EVENT.evaluate(delta=delta_value)), rel=1e-12)


def test_cb_missing_mass_approaches_s_minus_one_over_e_n():
    value = float(lcb.CB_MISSING_MASS.evaluate(S=20, N=1e6))
    assert value == pytest.approx(19 / (math.e * 1e6), rel=1e-5)


def test_asserted_verdict_fails_on_any_failed_claim_and_never_on_reports():
    from proofs_check.claims import asserted_verdict

    good = [{"claim": "a", "ok": True, "text": "1e-16"}, {"claim": "b", "ok": True, "text": "0"}]
    ok, text = asserted_verdict(good, [{"claim": "r", "text": "not reproduced in this toy"}])
    assert ok and text.startswith("SUPPORTED (all 2 asserted sub-claims hold). a: 1e-16; b: 0.")
    assert text.endswith("EMPIRICAL: r: not reproduced in this toy")
    ok, text = asserted_verdict([good[0], {**good[1], "ok": False}])
    assert not ok and text.startswith("NOT SUPPORTED (b failed).") and "EMPIRICAL" not in text
