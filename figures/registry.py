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
    "lcb-contextual": {
        "module": "figures.lcb_contextual",
        "claim": (
            "Offline contextual bandit, (s, a) ~ mu jointly: with expert data (C* = 1, "
            "missing-mass instance) LCB's expected sub-optimality is (S-1)(1/N)(1-1/N)^N, slope "
            "-1 in N; at C* = 2 its worst case over a fixed gap grid decays as N^-1/2."
        ),
        "source": (
            "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline Reinforcement "
            "Learning and Imitation Learning: A Tale of Pessimism, NeurIPS; contextual-bandit "
            "upper bound for LCB (recalled, theorem number not re-checked), hard instances "
            "derived in the spec sheet, C* in the sheet's joint reading (not verified)."
        ),
    },
    "vi-lcb-mdp": {
        "module": "figures.vi_lcb_mdp",
        "claim": (
            "Offline six-state chain (RiverSwim, gamma = 0.9), data mu = lam d^pi* + "
            "(1 - lam) uniform, deterministic or Bernoulli rewards: VI-LCB is no worse "
            "than plain model-based VI under "
            "partial coverage (lam = 0.5, 0) and behaviour cloning plateaus at lam = "
            "0; VI-LCB's guarantee needs c >= 1/2, at which this chain never updates "
            "(V_T = 0, pi_T = pi_0)."
        ),
        "source": (
            "Rashidinejad, Zhu, Ma, Jiao, Russell (2021), Bridging Offline "
            "Reinforcement Learning and Imitation Learning: A Tale of Pessimism, "
            "NeurIPS; VI-LCB with data splitting (as recalled, constants not "
            "re-checked); qualitative expectations and the c >= 1/2 audit from the "
            "spec sheet (derived)."
        ),
    },
    "trajectory-weighting": {
        "module": "figures.trajectory_weighting",
        "claim": (
            "On a mixed dataset (few high-return trajectories) of a deterministic MDP with "
            "stochastic initial states, behaviour cloning on return- or advantage-weighted "
            "resamples (alpha = 0.1) beats uniform sampling at every share of high-return "
            "trajectories; the weighted data's mean return is never below the uniform mean."
        ),
        "source": (
            "Hong, Agrawal, Tachet des Combes, Laroche (2023), Harnessing Mixed Offline RL "
            "Datasets via Trajectory Weighting, ICLR: return- and advantage-weighted sampling "
            "(exponential weights per the spec sheet; default temperature not verified); the "
            "weighted-mean inequality is derived (Chebyshev's sum inequality)."
        ),
    },
    "stitching": {
        "module": "figures.stitching",
        "claim": (
            "On a tabular stitching graph whose data hold A->B->C and D->B->E but never the "
            "optimal A->B->E, return-conditioned supervised learning (RCSL) acting with its "
            "target clipped to the largest return-to-go seen at each state never reaches E from "
            "A, while model-based RCSL (MBRCSL, same rule) and value iteration on the empirical "
            "model do; unclipped RCSL (nearest seen return-to-go, target inf) does reach E, so "
            "the failure belongs to the clipped rule."
        ),
        "source": (
            "Zhou, Zhu, Zhou, Cui, Gupta, Du (2024), Free from Bellman Completeness: Trajectory "
            "Stitching via Model-based Return-conditioned Supervised Learning, ICLR; Ghugare, "
            "Geist, Berseth, Eysenbach (2024), Closing the Gap between TD Learning and Supervised "
            "Learning, ICLR (stitching qualitative; the instance is the spec sheet's, rewards ours; "
            "both tabular acting rules are ours, the clipped one extending the return coverage "
            "of Brandfonbrener, Bietti, Buckman, Laroche, Bruna (2022), NeurIPS)."
        ),
    },
    "dual-rl-lp": {
        "module": "figures.dual_rl_lp",
        "claim": (
            "On random MDPs the LP over occupancy measures and its dual over V, solved by HiGHS, "
            "have the optimal value (1 - gamma) mu0 . V* of value iteration and zero duality gap "
            "to 1e-9 * (1 - gamma) * max(1, |V*|); the policy recovered from d is optimal (its "
            "exact value equals V* to 1e-9 * max(1, |V*|)) and d is its occupancy; regularising "
            "the dual by a_reg * D_f(d || dO) (KL, chi2) makes the return J(pi_a) and the "
            "divergence non-increasing in a_reg, from J* to J(behaviour)."
        ),
        "source": (
            "Manne (1960); Puterman (1994), Markov Decision Processes, sec. 6.9 (LP and dual); "
            "Sikchi, Zheng, Zhang, Niekum (2024), Dual RL, ICLR, arXiv 2302.08560 (f-regularised "
            "dual); monotonicity and bounds in a_reg derived from optimality, not quoted."
        ),
    },
    "recoil-imitation": {
        "module": "figures.recoil_imitation",
        "claim": (
            "6x6 grid world, K in {1, 2, 5, 10, 50} expert demonstrations, suboptimal data from "
            "a uniform policy with the expert's states deleted: ReCOIL's policy returns more "
            "than the occupancy-ratio (SMODICE-style) baseline, whose offline data also hold "
            "the demonstrations, at every K (empirical, paired sign tests; both tabular primals "
            "use the true P; BC on expert and on all data shown); with the exact expert "
            "occupancy ReCOIL's optimal divergence is 0 and its policy is the expert's on "
            "supp(dE) (asserted)."
        ),
        "source": (
            "Sikchi, Zheng, Zhang, Niekum (2024), Dual RL: Unification and New Methods for "
            "Reinforcement and Imitation Learning, ICLR, arXiv 2302.08560 (ReCOIL; tabular "
            "primal as derived in the spec sheet, its scaling not checked against the paper's "
            "equation); baseline after SMODICE (Ma et al. 2022)."
        ),
    },
    "odice-orthogonal": {
        "module": "figures.odice_orthogonal",
        "claim": (
            "V-DICE on a 20-state chain with 5 RBF features and held-out states: the "
            "orthogonal-gradient update's values at the held-out states move less, relative to "
            "the same rule trained on full coverage, than those of the semi- and true-gradient "
            "updates (empirical, paired sign tests); the projected backward gradient is "
            "orthogonal to the forward one and eta = 0 gives the semi-gradient exactly "
            "(asserted)."
        ),
        "source": (
            "Mao, Xu, Zhang, Zhan (2024), ODICE: Revealing the Mystery of Distribution "
            "Correction Estimation via Orthogonal-gradient Update, ICLR, arXiv 2402.00348; "
            "update rule as in the public code (whole-batch projection); the paper's theorem "
            "statements not verified."
        ),
    },
    "robust-regularized": {
        "module": "figures.robust_regularized",
        "claim": (
            "Two-state trap, finite horizon: R2PVI (KL, chi-square and TV regularised robust "
            "backups) learns from nominal offline data a policy whose worst-case return over "
            "dynamics shifted toward the trap exceeds that of plain pessimistic VI with the same "
            "estimator and penalty at its best penalty weight on a fixed grid; asserted: the "
            "closed-form backups equal a direct minimisation over the simplex and robust values "
            "never exceed nominal ones."
        ),
        "source": (
            "Tang, Liu, Xu (2025), Robust Offline Reinforcement Learning with Linearly Structured "
            "f-Divergence Regularization, ICML, arXiv 2411.18612: R2PVI and its experiments "
            "(robustness to dynamics shifts); closed forms derived for the spec sheet, not read "
            "off the paper."
        ),
    },
    "rover-tree": {
        "module": "figures.rover_tree",
        "claim": (
            "On a tree MDP with binary terminal reward, greedy over the uniform-policy Q is "
            "optimal (sign lemma: Q_u > 0 exactly where Q* = 1), but not with graded rewards or "
            "stochastic transitions; ROVER's softmax over Q_u trades success for mass on sparser "
            "correct strategies as the temperature rho grows."
        ),
        "source": (
            "He, Ye, Cai, Hu, Jiao, Jiang, Pan (2025), Random Policy Valuation is Enough for LLM "
            "Reasoning with Verifiable Rewards, arXiv 2509.24981, Theorem 3.1 (statement verified); "
            "sign lemma and counterexamples derived; the softmax trade-off is the spec sheet's "
            "audited toy (no formal softmax guarantee verified)."
        ),
    },
    "kl-posterior": {
        "module": "figures.kl_posterior",
        "claim": (
            "The maximiser of E[r] - beta KL(pi || pi0) is the posterior pi0 exp(r/beta) / Z: its "
            "token-level recursion and soft policy iteration (exact after depth sweeps) reach it, "
            "binary rewards tilt the accuracy to logit(p) + 1/beta keeping within-class "
            "proportions, and exact gradient ascent raises J_KL at every step while its iterates "
            "stay below b log Z_b for every b (Gibbs' inequality)."
        ),
        "source": (
            "Korbak, Perez, Buckley (2022), RL with KL penalties is better viewed as Bayesian "
            "inference, Findings of EMNLP, arXiv 2205.11275 (target distribution and variational "
            "identity verified); tree factorisation and binary-reward corollaries derived "
            "(standard soft-RL algebra)."
        ),
    },
    "passk-exact": {
        "module": "figures.passk_exact",
        "claim": (
            "Exact per-prompt optima of E[r] - coef D(pi || q) for reverse KL, forward KL and"
            " JS are stationary (r - coef f'(pi/q) constant on supp q), stay > 0 on supp q "
            "and raise pass@k at every k; masked leaves stay at 0 under training; the "
            "unbiased pass@k estimator is exact in expectation. Reported: the sampled "
            "estimator, the pass@k crossing, DPH's divergence ranking, support shrinkage and"
            " entropies in a shared-parameter tree."
        ),
        "source": (
            "Yue et al. (2025) arXiv 2504.13837 (pass@k crossing); Wu et al. (2025) arXiv "
            "2507.14843 v1 (support, NSCR denominator not verified); Li et al. (2025) arXiv "
            "2509.07430 (DPH-RL divergences); Chen et al. (2021) arXiv 2107.03374 sec. 2.1 "
            "(estimator); optima and identities derived (project spec sheets)."
        ),
    },
    "brorl-mass-balance": {
        "module": "figures.brorl_mass_balance",
        "claim": (
            "BroRL's mass balance: after one update from N rollouts, the first-order change "
            "of the correct mass equals (eta/N)[(R_c - S_R) Q_neg A_2 + (S_R - R_w) Q_pos B_2"
            " + S_R (Q_pos U_neg,2 - Q_neg U_pos,2)], the first two terms >= 0; reported, "
            "with rewards +1/-1: whether the unsampled term shrinks the correct mass at small"
            " N and fades at large N (it depends on which tokens go unsampled)."
        ),
        "source": (
            "Hu et al. (2025), BroRL: Scaling Reinforcement Learning via Broadened "
            "Exploration, arXiv 2510.01180 (mass-balance equation verified from a review "
            "quoting it; the logit update reproducing it is our reconstruction; simulation "
            "settings not verified)."
        ),
    },
    "passk-boundary": {
        "module": "figures.passk_boundary",
        "claim": (
            "Sampled GRPO (n = 8, no KL, lr 0.3, shared logits) on the audited reasoning-boundary "
            "tree raises pass@1 above the base but ends below the base at large k, and the "
            "correct support shrinks (|S| > |E|); masked leaves stay at probability exactly 0."
        ),
        "source": (
            "Yue et al. (2025) arXiv 2504.13837 (pass@k crossing); Wu et al. (2025) arXiv "
            "2507.14843 v1 (support categories, support preservation); toy construction and "
            "numbers from the project spec sheet's audit."
        ),
    },
    "nsr-psr": {
        "module": "figures.nsr_psr",
        "claim": (
            "Tree toy of negative reinforcement: after sampled training, PSR has a higher pass@1 "
            "than NSR and a lower pass@k at large k while NSR stays at or above the base at every "
            "k (paper's shape, Welch tests, reported as found; the audit saw plain SGD keep PSR and "
            "NSR within 0.002); exactly, E grad NSR = E grad PSR and E grad W = (1 + lambda) E grad PSR."
        ),
        "source": (
            "Zhu, Xia, Wei, Chen, Chen, Meng (2025), The Surprising Effectiveness of Negative "
            "Reinforcement in LLM Reasoning, arXiv 2506.01347 (advantages and lambda = 0.1 from "
            "the official code; gradient identity derived in the project spec sheet)."
        ),
    },
    "rover-training": {
        "module": "figures.rover_training",
        "claim": (
            "Tree toy with unequal correct strategies: practical ROVER ends with pass@k at large "
            "k and expected distinct correct answers above GRPO's (Welch tests), pass@1 within 0.05 "
            "(paper's claim, reported as found against GRPO and REINFORCE with a mean baseline); "
            "exactly, ROVER's first-step gradient is 2 rho times the mean-baseline REINFORCE one."
        ),
        "source": (
            "He, Ye, Cai, Hu, Jiao, Jiang, Pan (2025), Random Policy Valuation is Enough for LLM "
            "Reasoning with Verifiable Rewards, arXiv 2509.24981 (practical loss from the released "
            "code; the paper's diversity metric not verified); toy and identity from the spec sheet."
        ),
    },
    "difficulty-filtering": {
        "module": "figures.difficulty_filtering",
        "claim": (
            "GRPO with balanced online difficulty filtering (keep prompts whose observed accuracy"
            " over 8 rollouts lies in [0.25, 0.75]) reaches a higher mean accuracy over training "
            "than uniform prompt sampling at equal gradient steps; filtering keeps prompts of "
            "higher success variance p(1-p) (exact, symmetric band)."
        ),
        "source": (
            "Bae, Hong, Lee, Kim, Nam, Kwak (2025), Online Difficulty Filtering for Reasoning "
            "Oriented Reinforcement Learning, arXiv 2504.03380 (idea and headline claims verified"
            " from the abstract; exact bound and thresholds not verified); variance inequality "
            "derived in the spec sheet."
        ),
    },
    "brorl-rollouts": {
        "module": "figures.brorl_rollouts",
        "claim": (
            "Training a 1000-token softmax bandit with rewards +1/-1 for 200 steps, BroRL's set "
            "update loses correct mass on a positive share of steps at N = 2 rollouts and on none"
            " at large N, non-increasing in N, and at large N every correct token gains "
            "probability; the mass-balance identity holds at every step."
        ),
        "source": (
            "Hu et al. (2025), BroRL: Scaling Reinforcement Learning via Broadened Exploration, "
            "arXiv 2510.01180 (claims and mass-balance equation verified from a review quoting "
            "it; update reconstructed; simulation settings and step size not verified)."
        ),
    },
    "divergence-choice": {
        "module": "figures.divergence_choice",
        "claim": (
            "Tree MDP with shared logits, RL on the exploration prompts: mass-covering rehearsal "
            "to the base policy (forward KL or JS on base samples of the near-perfect prompts) "
            "keeps more final accuracy on the near-perfect prompts than GRPO without KL (one-sided "
            "paired sign test over seeds, level 0.05 Bonferroni over the two; the near-perfect "
            "construction is ours, the sheet gives none); pass@k, true reverse-KL and GRPO-k3 "
            "runs are reported; asserted: the forward-KL rehearsal gradient's closed form."
        ),
        "source": (
            "Li, Zhou, Hao, Liu, Miao, Pang, Tan, Chu, Wang, Pan, Qu, Qi (2025), The Choice of "
            "Divergence: A Neglected Key to Mitigating Diversity Collapse in Reinforcement "
            "Learning with Verifiable Reward, arXiv 2509.07430 (framework, split and coefficient "
            "ranges verified; the toy instance and the expected-gradient closed form are the "
            "spec sheet's)."
        ),
    },
    "noisy-verifier": {
        "module": "figures.noisy_verifier",
        "claim": (
            "REINFORCE on a tree MDP under asymmetric verifier noise (rho0 = 0.1, rho1 = 0.5). "
            "Asserted along the run (exact expected updates): E[g_forward] = E[g_uncorrected], "
            "E[g_backward] = E[g_clean], E[g_uncorrected] = (1 - rho0 - rho1) E[g_clean]. "
            "Empirical: the backward and forward corrections each reach a higher final clean "
            "accuracy than uncorrected training (one-sided paired sign test over seeds, level "
            "0.05 Bonferroni over the two)."
        ),
        "source": (
            "Cai, Wang, Liu, Liu, Niu, Sugiyama (2025), Reinforcement Learning with Verifiable yet "
            "Noisy Rewards under Imperfect Verifiers, arXiv 2510.00915 (channel, backward and "
            "forward corrections verified from the abstract and a summary; the expectation "
            "identities and the toy are the spec sheet's derivations, audited)."
        ),
    },
}
