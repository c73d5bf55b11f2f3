"""The catalogue of figures and checks, as plain strings.

``boundlab list`` reads only this module, so it must import nothing but the standard
library: no figure module, numba, scipy, sympy or matplotlib. Each entry mirrors its
module's ``CLAIM.metadata()`` (a test checks they agree).
"""

FIGURES = {
    "lcb-bandit": {
        "module": "figures.lcb_bandit",
        "claim": (
            "Offline two-armed bandit: LCB's worst-case sub-optimality decays as "
            "sqrt(C* log N / N) (up to logs) for every C*, greedy's as N^-1/2, and imitation "
            "(most-played arm) fails at C* = 4 but is exponentially small at C* = 1.5."
        ),
        "source": (
            "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline Reinforcement "
            "Learning and Imitation Learning: A Tale of Pessimism, NeurIPS; MAB upper bound "
            "for LCB and the minimax lower bounds (theorem numbers recalled, not re-checked)."
        ),
    },
}
