"""RL with verifiable rewards on tree MDPs (:mod:`tabular.tree`), exactly and by sampling.

Exact theory: ``rover`` (ROVER's uniform-policy Q, greedy and softmax policies), ``kl``
(the KL-regularised optimum as a posterior), ``passk`` (pass@k, support, entropy),
``divergences`` (reverse-KL, forward-KL and JS regularised optima), ``verifiers`` (noisy
verifiers and their corrections), ``difficulty`` (difficulty-filtering bounds), ``brorl``
(BroRL's mass balance), ``psr_nsr`` (positive and negative sample reinforcement) and
``misc`` (the identities behind RLCR, PACS, Posterior-GRPO, FAPO, Lp-Reg, SIREN, ProRL,
CURE, Echo Chamber and 1-shot RLVR). Sampled training: ``advantages``, ``losses`` and
``training``, each method with its exact expected update where one exists.

Submodules are imported explicitly (``from tabular.rlvr.rover import rover_policy``), so
``import tabular.rlvr`` stays light.
"""
