"""Stated guarantees of Rashidinejad, Zhu, Ma, Jiao, Russell (NeurIPS 2021), "Bridging Offline RL and Imitation Learning: A Tale of Pessimism".

Sympy data only. Paper: Rashidinejad, Zhu, Ma, Jiao, Russell (2021), NeurIPS, arXiv
2103.12021. The bounds and their statuses follow the project's spec sheet audit, which could
not re-check the paper's full text: most rates are *recalled* (theorem numbers
and log factors not re-checked), some are *derived* by us, and one exponent is *not
verified*; each Source says which. ``min(1, .)`` / ``min(Vmax, .)`` caps are left out of the
expressions (they bind only at small N) and noted in the assumptions. ``C`` (upper) and
``c`` (lower) stand for the unspecified absolute constants.
"""
from __future__ import annotations

import sympy

from proofs_check.bounds import Bound, Source

PAPER = (
    "Rashidinejad, Zhu, Ma, Jiao, Russell: Bridging Offline Reinforcement Learning and "
    "Imitation Learning: A Tale of Pessimism"
)
VENUE = "NeurIPS (arXiv 2103.12021)"
YEAR = 2021

# Symbols, all positive; gamma < 1, C_star >= 1 and similar ranges are stated in assumptions.
_NAMES = "N nA S C_star C c gap_max delta N_a N_astar N_sa gamma epsilon H C_star_clipped"
SYMBOLS = {s.name: s for s in sympy.symbols(_NAMES, positive=True)}
N, nA, S, C_star, C, c = (SYMBOLS[k] for k in ("N", "nA", "S", "C_star", "C", "c"))
gap_max, delta, N_a, N_astar = (SYMBOLS[k] for k in ("gap_max", "delta", "N_a", "N_astar"))
N_sa = SYMBOLS["N_sa"]
gamma, epsilon, H, C_star_clipped = (SYMBOLS[k] for k in ("gamma", "epsilon", "H", "C_star_clipped"))

HALF = sympy.Rational(1, 2)


def _source(locator: str, status: str) -> Source:
    return Source(PAPER, YEAR, locator, VENUE, status)


def _symbols(expr, *extra) -> dict:
    names = {s.name for s in expr.free_symbols} | set(extra)
    return {k: SYMBOLS[k] for k in sorted(names)}


def bernoulli_kl(p, q):
    """Bernoulli relative entropy ``kl(p || q) = p log(p/q) + (1-p) log((1-p)/(1-q))`` (sympy)."""
    return p * sympy.log(p / q) + (1 - p) * sympy.log((1 - p) / (1 - q))


_MAB_DATA = "data: N iid pairs (a_i, r_i), a_i ~ mu, rewards in [0, 1]"
_MAB_CSTAR = "C_star = 1 / mu(a*) (single-arm concentrability)"

_lcb_mab = C * sympy.sqrt(C_star * sympy.log(2 * nA * N) / N)
LCB_MAB_UPPER = Bound(
    name="LCB_MAB_UPPER",
    expr=_lcb_mab,
    symbols=_symbols(_lcb_mab),
    source=_source("MAB upper bound for LCB (theorem number not re-checked)", "recalled"),
    assumptions=(
        _MAB_DATA,
        _MAB_CSTAR,
        "LCB with b[a] = sqrt(log(2 nA / delta) / (2 N[a])) and delta = 1/N",
        "min(1, .) cap omitted from expr",
        "log factor as recalled: log(2 nA N) = log(2 nA / delta) at delta = 1/N",
    ),
    delta=None,
    kind="upper",
    quantity="expected sub-optimality E[r(a*) - r(a_hat)] of LCB",
    constant="C",
)

_mab_lower = c * sympy.sqrt(C_star / N)
MAB_MINIMAX_LOWER = Bound(
    name="MAB_MINIMAX_LOWER",
    expr=_mab_lower,
    symbols=_symbols(_mab_lower),
    source=_source("MAB minimax lower bound, regime C_star >= 2", "recalled"),
    assumptions=(
        _MAB_DATA,
        _MAB_CSTAR,
        "C_star >= 2",
        "minimax over instances with concentrability <= C_star (inf over algorithms, sup over instances)",
        "up to log factors; min(1, .) cap omitted",
        "hard pair: mu = (1/C_star, 1 - 1/C_star), means (1/2 +- D, 1/2), D = c sqrt(C_star/N) (Le Cam, derived)",
    ),
    delta=None,
    kind="lower",
    quantity="minimax expected sub-optimality inf_alg sup_instance E[r(a*) - r(a_hat)]",
    constant="c",
)

_mpa = gap_max * sympy.exp(-N * bernoulli_kl(HALF, 1 / C_star))
MPA_CHERNOFF_UPPER = Bound(
    name="MPA_CHERNOFF_UPPER",
    expr=_mpa,
    symbols=_symbols(_mpa),
    source=_source("spec sheet derivation (Chernoff bound for the most-played arm), not a statement of the paper", "derived"),
    assumptions=(
        _MAB_DATA,
        "two arms; 1 < C_star < 2, so mu(a*) = 1/C_star > 1/2",
        "MPA errs only if N[a*] <= N/2, and P(Bin(N, 1/C_star) <= N/2) <= exp(-N kl(1/2 || 1/C_star)) (Chernoff)",
        "gap_max = r(a*) - r(other arm), in [0, 1]",
    ),
    delta=None,
    kind="upper",
    quantity="expected sub-optimality E[r(a*) - r(a_hat)] of the most-played arm (MPA)",
)

_bonus = sympy.sqrt(sympy.log(2 * nA / delta) / (2 * N_a))
LCB_BONUS = Bound(
    name="LCB_BONUS",
    expr=_bonus,
    symbols=_symbols(_bonus),
    source=_source("LCB for MAB: Hoeffding penalty (algorithm definition)", "recalled"),
    assumptions=("arm a seen N_a >= 1 times", "unseen arm: rhat = 0, b = 1"),
    delta=None,
    kind="identity",
    quantity="LCB penalty b[a]",
)

LCB_EVENT = Bound(
    name="LCB_EVENT",
    expr=delta,
    symbols=_symbols(delta, "nA", "N_a"),
    source=_source("LCB for MAB: concentration event (Hoeffding + union bound over nA arms)", "recalled"),
    assumptions=(
        "rewards in [0, 1]; conditionally on the counts N[a], rewards of arm a are iid",
        "b[a] = sqrt(log(2 nA / delta) / (2 N_a)) for each seen arm (LCB_BONUS)",
        "each seen arm fails with probability <= 2 exp(-2 N_a b[a]^2) = delta / nA; union over nA arms",
    ),
    delta=None,
    kind="upper",
    quantity="failure probability P(exists seen arm a: |rhat[a] - r[a]| > b[a])",
)

_event_subopt = 2 * sympy.sqrt(sympy.log(2 * nA / delta) / (2 * N_astar))
LCB_EVENT_SUBOPT = Bound(
    name="LCB_EVENT_SUBOPT",
    expr=_event_subopt,
    symbols=_symbols(_event_subopt),
    source=_source("spec sheet property 4: standard LCB argument on the concentration event", "derived"),
    assumptions=(
        "on the event of LCB_EVENT (holds surely there, so per run)",
        "optimal arm seen N_astar >= 1 times; expr = 2 b[a*]",
    ),
    delta=delta,
    kind="upper",
    quantity="sub-optimality r(a*) - r(a_hat) of LCB in one run",
)

_CB_CSTAR = (
    "C_star = max_s rho(s) / mu(s, pi*(s)) with (s, a) ~ mu jointly (audit's reading, not verified; "
    "the per-context definition contradicts these rates)"
)

_cb_upper = C * (sympy.sqrt(S * (C_star - 1) / N) + S / N)
LCB_CB_UPPER = Bound(
    name="LCB_CB_UPPER",
    expr=_cb_upper,
    symbols=_symbols(_cb_upper),
    source=_source("contextual-bandit upper bound for LCB (theorem number not re-checked)", "recalled"),
    assumptions=(
        "S contexts, J(pi) = E_{s ~ rho} r(s, pi(s)); N iid (s, a, r), (s, a) ~ mu jointly; rewards in [0, 1]",
        _CB_CSTAR,
        "C_star >= 1; LCB per context with b[s, a] = sqrt(log(2 S nA / delta) / (2 N[s, a])) (LCB_CB_BONUS), delta = 1/N",
        "up to log factors; min(1, .) cap on the first term omitted: min(1, sqrt(S (C_star - 1)/N)) + S/N",
    ),
    delta=None,
    kind="upper",
    quantity="expected sub-optimality E[J(pi*) - J(pi_hat)] of LCB (contextual bandit)",
    constant="C",
)

_cb_lower = c * (sympy.sqrt(S * (C_star - 1) / N) + S / N)
CB_MINIMAX_LOWER = Bound(
    name="CB_MINIMAX_LOWER",
    expr=_cb_lower,
    symbols=_symbols(_cb_lower),
    source=_source("contextual-bandit minimax lower bound (theorem number not re-checked)", "recalled"),
    assumptions=(
        "S >= 2 contexts",
        _CB_CSTAR,
        "minimax over instances with concentrability <= C_star",
        "min(1, .) caps on both terms omitted; up to log factors",
    ),
    delta=None,
    kind="lower",
    quantity="minimax expected sub-optimality (contextual bandit)",
    constant="c",
)

_cb_bonus = sympy.sqrt(sympy.log(2 * S * nA / delta) / (2 * N_sa))
LCB_CB_BONUS = Bound(
    name="LCB_CB_BONUS",
    expr=_cb_bonus,
    symbols=_symbols(_cb_bonus),
    source=_source("LCB for contextual bandits: per-context Hoeffding penalty (algorithm definition)", "recalled"),
    assumptions=(
        "pair (s, a) seen N_sa >= 1 times; union bound over all S * nA pairs",
        "unseen pairs: never preferred over a seen action (library convention); unseen contexts get action 0",
    ),
    delta=None,
    kind="identity",
    quantity="LCB penalty b[s, a] (contextual bandit)",
)

LCB_CB_EVENT = Bound(
    name="LCB_CB_EVENT",
    expr=delta,
    symbols=_symbols(delta, "S", "nA", "N_sa"),
    source=_source("LCB for contextual bandits: concentration event (Hoeffding + union bound over S nA pairs; "
                   "standard argument, not a statement of the paper)", "derived"),
    assumptions=(
        "rewards in [0, 1]; conditionally on the counts N[s, a], rewards of pair (s, a) are iid",
        "b[s, a] as LCB_CB_BONUS for each seen pair",
        "each seen pair fails with probability <= 2 exp(-2 N_sa b^2) = delta / (S nA); union over S nA pairs",
    ),
    delta=None,
    kind="upper",
    quantity="failure probability P(exists seen (s, a): |rhat[s, a] - r[s, a]| > b[s, a])",
)

_missing_mass = (S - 1) / N * (1 - 1 / N) ** N
CB_MISSING_MASS = Bound(
    name="CB_MISSING_MASS",
    expr=_missing_mass,
    symbols=_symbols(_missing_mass),
    source=_source("spec sheet hard instance (C_star = 1, missing mass), exact formula", "derived"),
    assumptions=(
        "C_star = 1 (expert data); S - 1 rare contexts with rho = 1/N each, the rest on context 0",
        "reward 1 for pi*(s), else 0; pi*(s) != 0 on rare contexts; unseen contexts get action 0",
        "about (S - 1) / (e N) for large N",
    ),
    delta=None,
    kind="identity",
    quantity="expected sub-optimality of LCB on the missing-mass contextual bandit",
)

_MDP_SETTING = (
    "discounted MDP, rewards in [0, 1], Vmax = 1/(1 - gamma), 0 < gamma < 1; N iid (s, a, r, s'), (s, a) ~ mu"
)
_MDP_CSTAR = "C_star = max_{s,a} d^{pi*}(s, a) / mu(s, a), d normalised occupancy (sums to 1)"

_vi_lcb = C * sympy.sqrt(S * C_star / ((1 - gamma) ** 5 * N))
VI_LCB_MDP_UPPER = Bound(
    name="VI_LCB_MDP_UPPER",
    expr=_vi_lcb,
    symbols=_symbols(_vi_lcb),
    source=_source("MDP upper bound for VI-LCB (theorem number not re-checked)", "recalled"),
    assumptions=(_MDP_SETTING, _MDP_CSTAR, "up to log factors; min(Vmax, .) cap omitted", "delta = 1/N folded in"),
    delta=None,
    kind="upper",
    quantity="expected sub-optimality E[J(pi*) - J(pi_hat)] of VI-LCB",
    constant="C",
)

_vi_lcb_expert = C * S / ((1 - gamma) ** 4 * N)
VI_LCB_MDP_NEAR_EXPERT = Bound(
    name="VI_LCB_MDP_NEAR_EXPERT",
    expr=_vi_lcb_expert,
    symbols=_symbols(_vi_lcb_expert),
    source=_source("MDP nearly-expert regime for VI-LCB; (1 - gamma) exponent not verified", "not verified"),
    assumptions=(_MDP_SETTING, _MDP_CSTAR, "C_star - 1 = O(1/N)", "up to log factors"),
    delta=None,
    kind="upper",
    quantity="expected sub-optimality E[J(pi*) - J(pi_hat)] of VI-LCB, nearly-expert data",
    constant="C",
)

_mdp_lower = c * (sympy.sqrt(S * (C_star - 1) / ((1 - gamma) ** 3 * N)) + S / ((1 - gamma) ** 2 * N))
MDP_MINIMAX_LOWER = Bound(
    name="MDP_MINIMAX_LOWER",
    expr=_mdp_lower,
    symbols=_symbols(_mdp_lower),
    source=_source("MDP minimax lower bound (theorem number not re-checked)", "recalled"),
    assumptions=(_MDP_SETTING, _MDP_CSTAR, "min(Vmax, .) caps on both terms omitted; up to log factors"),
    delta=None,
    kind="lower",
    quantity="minimax expected sub-optimality (discounted MDP)",
    constant="c",
)

_LI2022 = ("Li, Shi, Chen, Chi, Wei, Settling the sample complexity of model-based offline "
           "reinforcement learning (arXiv 2204.05275); Bernstein penalties")

_li_discounted = C * S * C_star_clipped / ((1 - gamma) ** 3 * epsilon**2)
LI2022_SAMPLE_COMPLEXITY = Bound(
    name="LI2022_SAMPLE_COMPLEXITY",
    expr=_li_discounted,
    symbols=_symbols(_li_discounted),
    source=Source(_LI2022, 2022, "discounted sample complexity (closes VI-LCB's horizon gap)", "arXiv preprint", "verified"),
    assumptions=(_MDP_SETTING, "C_star_clipped: clipped single-policy concentrability", "up to log factors"),
    delta=None,
    kind="upper",
    quantity="number of samples N sufficient for an epsilon-optimal policy",
    constant="C",
)

_li_episodic = C * H**4 * S * C_star_clipped / epsilon**2
LI2022_SAMPLE_COMPLEXITY_EPISODIC = Bound(
    name="LI2022_SAMPLE_COMPLEXITY_EPISODIC",
    expr=_li_episodic,
    symbols=_symbols(_li_episodic),
    source=Source(_LI2022, 2022, "finite-horizon sample complexity", "arXiv preprint", "verified"),
    assumptions=("finite horizon H, time-inhomogeneous", "C_star_clipped: clipped concentrability", "up to log factors"),
    delta=None,
    kind="upper",
    quantity="sample size sufficient for an epsilon-optimal policy (finite horizon; sample unit as in the paper, not recorded in the sheet)",
    constant="C",
)

CLAIMS = {
    b.name: b
    for b in (
        LCB_MAB_UPPER,
        MAB_MINIMAX_LOWER,
        MPA_CHERNOFF_UPPER,
        LCB_BONUS,
        LCB_EVENT,
        LCB_EVENT_SUBOPT,
        LCB_CB_UPPER,
        CB_MINIMAX_LOWER,
        LCB_CB_BONUS,
        LCB_CB_EVENT,
        CB_MISSING_MASS,
        VI_LCB_MDP_UPPER,
        VI_LCB_MDP_NEAR_EXPERT,
        MDP_MINIMAX_LOWER,
        LI2022_SAMPLE_COMPLEXITY,
        LI2022_SAMPLE_COMPLEXITY_EPISODIC,
    )
}
