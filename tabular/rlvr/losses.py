"""Per-token surrogate losses of RLVR methods on tree policies (REINFORCE, PPO-clip/GRPO/Dr.GRPO/DAPO, k3 KL, ROVER's practical loss, DPH-RL's f-divergence rehearsal, noisy-verifier rewards) and their logit gradients, sampled and exactly expected.

Sources: Schulman et al. (2017), arXiv 1707.06347 (PPO-clip); Shao et al. (2024), arXiv
2402.03300 (GRPO, k3 KL per token); Liu et al. (2025), arXiv 2503.20783 (Dr.GRPO); Yu et
al. (2025), arXiv 2503.14476 (DAPO); He et al. (2025), arXiv 2509.24981 (ROVER, practical
loss from the released code); Li et al. (2025), arXiv 2509.07430 (DPH-RL generators); Cai
et al. (2025), arXiv 2510.00915 (noisy verifiers); Zhu et al. (2025), arXiv 2506.01347
(PSR/NSR/W). Spec sheets ``rlvr_misc.md``, ``rover_random_policy_valuation.md``,
``divergence_choice_dph_rl.md``, ``noisy_verifier_corrections.md``,
``nsr_psr_negative_reinforcement.md``.

Every loss here is ``L = sum_{x,i} nu[x, i] sum_{t < L_i} l_{x,i,t}``: a per-token term
``l`` and a per-sample normaliser ``nu`` (:data:`AGGREGATIONS`): ``"seq_mean"`` (GRPO:
``1 / (P G L_i)``, token mean within a sequence, then group and prompt means),
``"constant"`` (Dr.GRPO: ``1 / (P G D)``, D the maximal length), ``"token_mean"`` (DAPO:
``1 / sum_{x,i} L_{x,i}``, one token mean over the batch). DAPO's eq. 8 as printed
normalises by the tokens of the whole batch of groups; some readings take it per prompt
(``1 / sum_i L_{x,i}`` then a prompt mean): here it is batch-wide, which weights a prompt by
its share of the batch's tokens. Each ``l`` depends on the
parameters only through ``log pi_theta(a_t | s_t)`` of the sampled token, so the loss
gradient is ``sum nu dl/dlog pi grad log pi(a_t|s_t)``, computed by
``tabular.tree.score_gradient`` with per-token weights.

Per-token terms, with ``rho_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)`` and advantage ``A_i``:
``"pg"`` ``-rho A`` (gradient ``-A grad log pi`` at ``rho = 1``); ``"ppo"``
``-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A)``, whose gradient is 0 when
``A > 0, rho > 1 + eps_high`` or ``A < 0, rho < 1 - eps_low`` (at the clip boundary the
unclipped branch is used); ``"rover"`` ``(Q_t - y_t)^2`` with ``Q_t = rho_T (log pi_theta -
log pi_old)(a_t|s_t)`` and stop-gradient target ``y_t = A + V^(s_{t+1})`` (``y = A`` at
the last generated token), ``V^(s) = rho_T mean_a (log pi_theta - log pi_old)(a|s)`` over
the tokens ``pi_old`` allows at s (the full log-softmax; ROVER's centred reward ``A = r -
mean r``). Regularisers: ``"k3"`` ``beta (k - log k - 1)``, ``k = pi_ref / pi_theta``, on
the rollout tokens (GRPO's KL term). On pi_theta samples its VALUE is an unbiased
estimate of ``KL(pi_theta || pi_ref)``, but its GRADIENT is not the reverse-KL gradient:
per state s, ``E_{a~pi}[(1 - pi_ref/pi)(a) grad log pi(a|s)] = pi(.|s) - pi_ref(.|s)`` in the
logits of s, so the expected update is ``beta nu d_pi(s) (pi - pi_ref)(.|s)`` (``d_pi(s)``:
the probability of reaching s), a per-state pull towards pi_ref that ignores the future
tokens' KL (the true ``grad KL(pi || pi_ref)`` weights each state's log-ratio by the KL of
the continuation; the two are not parallel in general). For the true reverse-KL gradient use
``"kl_reward"`` (preset ``"reverse_kl"``);
``"forward_kl"``, ``"forward_kl_lowvar"``, ``"js"``: DPH-RL's ``beta f(u_t)``, ``u_t =
pi_theta / pi_ref`` per token, on fresh samples of ``pi_ref`` (token mean within a sequence,
then means over samples and prompts), gradient weight ``u f'(u)``
(:func:`tabular.rlvr.divergences.generator_gradient_weight`); ``"kl_reward"``: the KL as a
reward penalty (Korbak et al. 2022, sheet ``kl_bayesian_inference.md``), the shaped reward
``r(y) - beta log(pi_old(y) / pi_ref(y))`` (sequence log-ratio, fixed at sampling) before
the advantage; at ``theta = theta_old`` with ``advantage="reward"`` its expected gradient is
the gradient of ``E_pi[r] - beta KL(pi || pi_ref)``.

Exact expectations (:func:`expected_loss_gradient`): for fixed parameters theta, the
expectation of the loss gradient over a batch drawn from ``pi_old`` (and ``pi_ref``) is a sum
over all answers weighted by ``pi_old(y)``, once the advantage is replaced by its conditional
expectation given the sample's own outcome. For group-coupled advantages (mean, RLOO, GRPO's
std) that needs two-valued rewards (binary, possibly through a noisy verifier): the other
G - 1 outcomes are Binomial, enumerated exactly. PPO clipping is exact too because the sign
of the advantage is fixed by the own outcome. Not available (ValueError): DAPO's dropping
of equal groups, difficulty bands and PSR/NSR subsets (random normalisers),
``"token_mean"`` with answers of different lengths (a ratio of random sums), group-coupled
advantages with non-binary rewards. After the first inner step of K, theta depends on the
batch: the expectation of the K-step update is not available; at the first step (theta =
theta_old) every method above has it.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy.stats import binom

from proofs_check.seeding import as_generator
from tabular.mdp import _read_int
from tabular.rlvr._checks import read_probability, read_rates, read_scalar
from tabular.rlvr.advantages import KINDS, STDS, group_advantages
from tabular.rlvr.divergences import generator, generator_gradient_weight
from tabular.rlvr.verifiers import (
    backward_correction,
    forward_weights,
    positive_rate,
    sample_verifier,
)
from tabular.tree import (
    PolicyGradient,
    TreeMDP,
    TreePolicy,
    _require_policy,
    answer_lengths,
    leaf_probs,
    path_nodes,
    sample_leaves,
    score_gradient,
    token_log_probs,
    validate_tree_policy,
)

__all__ = [
    "AGGREGATIONS",
    "LOSSES",
    "PRESETS",
    "REGULARIZERS",
    "VERIFIERS",
    "Method",
    "Rollouts",
    "expected_loss_gradient",
    "k3_per_token",
    "loss_gradient",
    "loss_value",
    "make_rollouts",
    "normalizer",
    "observed_rewards",
    "preset",
    "rover_targets",
]

LOSSES = ("pg", "ppo", "rover")
AGGREGATIONS = ("seq_mean", "constant", "token_mean")
REGULARIZERS = (None, "k3", "kl_reward", "forward_kl", "forward_kl_lowvar", "js")
_ON_REF_SAMPLES = ("forward_kl", "forward_kl_lowvar", "js")
VERIFIERS = (None, "none", "backward", "forward")
_PER_SAMPLE = ("reward", "psr", "nsr", "w", "rlvr")


@dataclass(frozen=True)
class Method:
    """One training method: advantage, per-token loss, aggregation, regulariser, verifier.

    Attributes
    ----------
    advantage : one of :data:`tabular.rlvr.advantages.KINDS`
    loss : {"pg", "ppo", "rover"}
    std, eps_std : GRPO's std (``"population"`` or ``"sample"``) and its epsilon.
    lam : W-REINFORCE's weight on correct samples.
    clip_low, clip_high : PPO's ``eps_low``, ``eps_high`` (DAPO clip-higher: 0.2, 0.28).
    aggregation : one of :data:`AGGREGATIONS`.
    drop_equal : DAPO: groups whose rewards are all equal are left out of the batch (and of
        the normaliser).
    band : (p_lo, p_hi) or None: balanced online difficulty filtering (Bae et al. 2025): a
        group is kept iff its share of correct samples ``p^ = mean(r > 0)`` lies in
        ``[p_lo, p_hi]`` (e.g. (0.25, 0.75)); dropped groups leave the normaliser like
        ``drop_equal``. Re-sampling until the batch is full is the caller's.
    subset : the PSR/NSR code's batch subsetting: samples with advantage 0 (wrong ones for
        PSR, correct ones for NSR) are left out of the normaliser too, which changes the
        effective step size (sheet, pitfalls).
    regularizer : one of :data:`REGULARIZERS`; ``beta`` its coefficient (>= 0).
    n_ref : samples of ``pi_ref`` per prompt and step for the f-divergence regularisers.
    rho : ROVER's temperature ``rho_T`` (``Q = rho_T log-ratio``).
    verifier : None (clean rewards), ``"none"`` (noisy, uncorrected), ``"backward"``,
        ``"forward"``; ``rho0`` (false-positive) and ``rho1`` (false-negative) rates, floats or
        per-prompt tuples; ``rho1_used``: the rate plugged into the forward weights (default
        ``rho1``). ``"forward"`` needs a group advantage with a baseline (not ``"psr"``,
        ``"nsr"``, ``"w"``, ``"rlvr"``): its weights are 0/1 scores, and a +-1 sign of ``w >
        0`` would silently drop the samples the weights zero out at ``rho1 = 0``.
    """

    advantage: str = "grpo"
    loss: str = "ppo"
    std: str = "population"
    eps_std: float = 0.0
    lam: float = 0.1
    clip_low: float = 0.2
    clip_high: float = 0.2
    aggregation: str = "seq_mean"
    drop_equal: bool = False
    band: tuple | None = None
    subset: bool = False
    regularizer: str | None = None
    beta: float = 0.0
    n_ref: int = 8
    rho: float = 1.0
    verifier: str | None = None
    rho0: float | tuple = 0.0
    rho1: float | tuple = 0.0
    rho1_used: float | tuple | None = None

    def __post_init__(self):
        for name, value, allowed in (("advantage", self.advantage, KINDS),
                                     ("loss", self.loss, LOSSES), ("std", self.std, STDS),
                                     ("aggregation", self.aggregation, AGGREGATIONS),
                                     ("regularizer", self.regularizer, REGULARIZERS),
                                     ("verifier", self.verifier, VERIFIERS)):
            if value not in allowed:
                raise ValueError(f"Method.{name} must be one of {allowed}, got {value!r}")
        for name in ("eps_std", "lam", "beta"):
            read_scalar(getattr(self, name), f"Method.{name}", low=0.0)
        read_scalar(self.clip_low, "Method.clip_low", low=0.0, high=1.0, high_open=True)
        read_scalar(self.clip_high, "Method.clip_high", low=0.0)
        read_scalar(self.rho, "Method.rho", low=0.0, low_open=True)
        _read_int(self.n_ref, "Method.n_ref")
        for name in ("drop_equal", "subset"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Method.{name} must be a bool, got "
                                f"{type(getattr(self, name)).__name__}")
        read_rates(self.rho0, self.rho1)
        if self.rho1_used is not None:
            read_probability(self.rho1_used, "Method.rho1_used")
        if self.verifier == "forward" and self.advantage in ("psr", "nsr", "w", "rlvr"):
            raise ValueError(f"Method.verifier='forward' with advantage={self.advantage!r}: the "
                             "forward weights are not 0/1 outcomes (use 'none' or 'backward', or "
                             "a group advantage)")
        if self.band is not None:
            if not isinstance(self.band, tuple) or len(self.band) != 2:
                raise TypeError(f"Method.band must be a (p_lo, p_hi) tuple or None, got {self.band!r}")
            lo = read_scalar(self.band[0], "Method.band[0] (p_lo)", low=0.0, high=1.0)
            read_scalar(self.band[1], "Method.band[1] (p_hi)", low=lo, high=1.0)


PRESETS = {
    "reinforce": Method(advantage="reward", loss="pg"),
    "reinforce_mean": Method(advantage="mean", loss="pg"),
    "rloo": Method(advantage="rloo", loss="pg"),
    "psr": Method(advantage="psr", loss="ppo"),
    "nsr": Method(advantage="nsr", loss="ppo"),
    "psr_subset": Method(advantage="psr", loss="ppo", subset=True, aggregation="token_mean"),
    "nsr_subset": Method(advantage="nsr", loss="ppo", subset=True, aggregation="token_mean"),
    "w_reinforce": Method(advantage="w", loss="ppo", lam=0.1),
    "grpo": Method(advantage="grpo", loss="ppo", aggregation="seq_mean"),
    "drgrpo": Method(advantage="drgrpo", loss="ppo", aggregation="constant"),
    "dapo": Method(advantage="grpo", loss="ppo", clip_low=0.2, clip_high=0.28,
                   aggregation="token_mean", drop_equal=True),
    "rover": Method(advantage="mean", loss="rover", aggregation="token_mean"),
    "grpo_balanced": Method(advantage="grpo", loss="ppo", band=(0.25, 0.75)),
    "reinforce_kl_reward": Method(advantage="reward", loss="pg", regularizer="kl_reward",
                                  beta=0.1),
    "grpo_reverse_kl": Method(advantage="grpo", loss="ppo", regularizer="k3", beta=0.05),
    "reverse_kl": Method(advantage="reward", loss="pg", regularizer="kl_reward", beta=0.05),
    "dph_forward_kl": Method(advantage="grpo", loss="ppo", regularizer="forward_kl", beta=0.03),
    "dph_js": Method(advantage="grpo", loss="ppo", regularizer="js", beta=0.1),
}
"""Named methods with the sheets' defaults (ppo eps 0.2; DAPO 0.2/0.28, token mean, equal
groups dropped; DPH forward KL eta 0.03, JS eta 0.1). ``psr_subset``/``nsr_subset``: the
PSR/NSR code's subset, then one token mean over the kept samples (a global rescale, as the
sheet describes). ``grpo_reverse_kl``: GRPO's k3 loss, beta 0.05 (ProRL's value); its
expected gradient is the per-state ``beta d_pi(s) (pi - pi_ref)``, NOT ``grad KL(pi ||
pi_ref)`` (module docstring). ``reverse_kl``: REINFORCE on the KL-shaped reward ``r - beta
log(pi_old/pi_ref)(y)``, beta 0.05, whose expected first step is the exact gradient of ``E[r]
- beta KL(pi || pi_ref)`` (up to the normaliser ``1/(P D)`` without EOS)."""


def preset(name: str, **changes) -> Method:
    """``PRESETS[name]`` with some fields changed (``dataclasses.replace``)."""
    if name not in PRESETS:
        raise ValueError(f"unknown method {name!r}; presets: {sorted(PRESETS)}")
    return dataclasses.replace(PRESETS[name], **changes)


def _rates(method: Method, n_prompts: int):
    rho0, rho1 = read_rates(method.rho0, method.rho1)
    used = rho1 if method.rho1_used is None else np.asarray(method.rho1_used, dtype=np.float64)
    out = []
    for v in (rho0, rho1, used):
        if v.ndim == 1 and v.shape != (n_prompts,):
            raise ValueError(f"per-prompt rates must have shape ({n_prompts},), got {v.shape}")
        out.append(v[:, None] if v.ndim == 1 else v)
    return out


def _transform(R_tilde: np.ndarray, method: Method, rates) -> np.ndarray:
    """The reward the advantage sees: observed ``R~`` or its backward / forward correction."""
    rho0, rho1, used = rates
    if method.verifier == "backward":
        return backward_correction(R_tilde, rho0, rho1)
    if method.verifier == "forward":
        return forward_weights(R_tilde, used)
    return R_tilde


def observed_rewards(tree: TreeMDP, leaves, method: Method, *, seed=None) -> np.ndarray:
    """Rewards of sampled answers as the method sees them, (n_prompts, n) float64.

    Clean ``R[x, y]`` without a verifier; otherwise one fresh verifier call per sample
    (:func:`tabular.rlvr.verifiers.sample_verifier`), then the correction of ``method.verifier``.
    """
    leaves = np.asarray(leaves)
    tree.leaf_tokens(leaves)  # range check
    if leaves.ndim != 2 or leaves.shape[0] != tree.n_prompts:
        raise ValueError(f"leaves must have shape (n_prompts, n), got {leaves.shape}")
    R = np.take_along_axis(tree.R, leaves, axis=1)
    if method.verifier is None:
        return R
    rates = _rates(method, tree.n_prompts)
    return _transform(sample_verifier(R, rates[0], rates[1], seed=seed), method, rates)


@dataclass(frozen=True, eq=False)
class Rollouts:
    """One batch: ``n`` answers per prompt from ``pi_old`` and what the losses need.

    Attributes
    ----------
    leaves : int64 (n_prompts, n)
    rewards : float64 (n_prompts, n): after the verifier and its correction, if any, and,
        with ``regularizer="kl_reward"``, KL-shaped: ``r - beta log(pi_old/pi_ref)(y)``
    advantages : float64 (n_prompts, n)
    kept : bool (n_prompts,): groups in the batch (False: dropped, DAPO)
    pi_old : float64 (n_prompts, n_nodes, V): the behaviour policy
    ref_leaves : int64 (n_prompts, n_ref) samples of ``pi_ref``, or None
    ref_prompts : bool (n_prompts,): prompts whose reference samples enter the regulariser
    """

    leaves: np.ndarray
    rewards: np.ndarray
    advantages: np.ndarray
    kept: np.ndarray
    pi_old: np.ndarray
    ref_leaves: np.ndarray | None = None
    ref_prompts: np.ndarray | None = None


def _advantages(rewards: np.ndarray, method: Method) -> np.ndarray:
    return group_advantages(rewards, method.advantage, std=method.std, eps=method.eps_std,
                            lam=method.lam)


def _read_prompts(mask, name, n_prompts):
    if mask is None:
        return np.ones(n_prompts, dtype=bool)
    mask = np.asarray(mask)
    if mask.dtype != bool or mask.shape != (n_prompts,):
        raise ValueError(f"{name} must be a bool mask of shape ({n_prompts},), got dtype "
                         f"{mask.dtype}, shape {mask.shape}")
    return mask


def make_rollouts(tree: TreeMDP, pi_old, method: Method, n: int, *, pi_ref=None,
                  rl_prompts=None, ref_prompts=None, seed=None) -> Rollouts:
    """Sample a batch: ``n`` answers per prompt from ``pi_old`` (``sample_leaves``), their
    (verified) rewards and advantages, and ``method.n_ref`` answers of ``pi_ref`` when the
    regulariser is an f-divergence. Draw order: rollouts, verifier, reference samples.

    ``rl_prompts``, ``ref_prompts`` (bool (n_prompts,), default all): the prompts of the RL
    term and of the f-divergence term (DPH-RL: exploration set and near-perfect set). Every
    prompt is sampled either way, so the draws do not depend on the masks.

    Parameters
    ----------
    tree : TreeMDP
    pi_old : float64 (n_prompts, n_nodes, V): the behaviour policy
    method : Method
    n : int >= 1: answers per prompt (the group size G)
    pi_ref : float64 (n_prompts, n_nodes, V), optional: needed when ``method.regularizer``
    rl_prompts, ref_prompts : bool (n_prompts,), optional
    seed : int, SeedSequence or Generator

    Returns
    -------
    Rollouts (``leaves`` (n_prompts, n), ``ref_leaves`` (n_prompts, method.n_ref) or None)
    """
    n = _read_int(n, "n")
    if not isinstance(method, Method):
        raise TypeError(f"method must be a Method, got {type(method).__name__}")
    rng = as_generator(seed)
    pi_old = validate_tree_policy(tree, pi_old)
    leaves = sample_leaves(tree, pi_old, n, seed=rng)
    rewards = observed_rewards(tree, leaves, method, seed=rng)
    kept = _read_prompts(rl_prompts, "rl_prompts", tree.n_prompts).copy()
    ref_prompts = _read_prompts(ref_prompts, "ref_prompts", tree.n_prompts)
    if method.drop_equal:
        kept &= ~np.all(rewards == rewards[:, :1], axis=1)
    if method.band is not None:
        p_hat = (rewards > 0).mean(axis=1)
        kept &= (p_hat >= method.band[0]) & (p_hat <= method.band[1])
    ref_leaves = None
    if method.regularizer is not None and pi_ref is None:
        raise ValueError(f"regularizer {method.regularizer!r} needs pi_ref")
    if method.regularizer == "kl_reward":
        rewards = rewards - method.beta * _sequence_log_ratio(tree, pi_old, pi_ref, leaves)
    if method.regularizer in _ON_REF_SAMPLES:
        ref_leaves = sample_leaves(tree, pi_ref, method.n_ref, seed=rng)
    return Rollouts(leaves, rewards, _advantages(rewards, method), kept, pi_old, ref_leaves,
                    ref_prompts)


def _sequence_log_ratio(tree, pi, pi_ref, leaves):
    """``log pi(y) - log pi_ref(y)`` of each answer (n_prompts, n), 0 where ``pi(y) = 0``;
    ValueError where ``pi(y) > 0 = pi_ref(y)`` (infinite penalty)."""
    log_p = token_log_probs(tree, pi, leaves).sum(-1)
    log_ref = token_log_probs(tree, pi_ref, leaves).sum(-1)
    live = np.isfinite(log_p)
    if np.any(live & np.isneginf(log_ref)):
        raise ValueError("an answer has pi(y) > 0 = pi_ref(y): the KL reward penalty is infinite")
    with np.errstate(invalid="ignore"):
        return np.where(live, log_p - log_ref, 0.0)


def normalizer(tree: TreeMDP, leaves, aggregation: str, kept=None) -> np.ndarray:
    """Per-sample normaliser ``nu`` (n_prompts, n) of a batch (module docstring).

    ``kept``: bool, (n_prompts,) (groups) or (n_prompts, n) (samples); default all.
    ``"seq_mean"``: ``1 / (P_kept n_kept(x) L_i)`` (token mean within a sequence, mean over
    the kept samples of the group, mean over kept groups); ``"constant"``: ``1 / (P_kept
    n_kept(x) D)``; ``"token_mean"``: ``1 / (generated tokens of all kept samples)``; 0 for
    samples left out.
    """
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    L = answer_lengths(tree, leaves).astype(np.float64)
    kept = np.ones(L.shape, dtype=bool) if kept is None else np.asarray(kept, dtype=bool)
    if kept.ndim == 1:
        kept = np.broadcast_to(kept[:, None], L.shape)
    if kept.shape != L.shape:
        raise ValueError(f"kept has shape {kept.shape}, expected {L.shape[:1]} or {L.shape}")
    n_x = kept.sum(axis=1, keepdims=True).astype(np.float64)
    n_groups = (n_x > 0).sum()
    if n_groups == 0:
        return np.zeros_like(L)
    n_x = np.maximum(n_x, 1.0)
    if aggregation == "seq_mean":
        nu = 1.0 / (n_groups * n_x * L)
    elif aggregation == "constant":
        nu = np.broadcast_to(1.0 / (n_groups * n_x * tree.depth), L.shape)
    else:
        nu = np.full_like(L, 1.0 / L[kept].sum())
    return np.where(kept, nu, 0.0)


def _token_mask(tree: TreeMDP, leaves) -> np.ndarray:
    return np.arange(tree.depth) < answer_lengths(tree, leaves)[..., None]


def _log_ratio_table(pi: np.ndarray, pi_old: np.ndarray) -> np.ndarray:
    """``log pi - log pi_old`` per node and token, 0 where ``pi_old = 0``."""
    allowed = pi_old > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.log(np.where(allowed, pi, 1.0)) - np.log(np.where(allowed, pi_old, 1.0))
    return np.where(allowed, d, 0.0)


def _next_state_values(tree, pi, pi_old, leaves, rho):
    """``V^(s_{t+1})`` along each answer (n_prompts, n, D), 0 at and after the last
    generated token (terminal)."""
    allowed = pi_old > 0
    V_hat = rho * _log_ratio_table(pi, pi_old).sum(-1) / np.maximum(allowed.sum(-1), 1)
    nodes, _ = path_nodes(tree, leaves)
    x = np.arange(tree.n_prompts)[:, None, None]
    nxt = np.zeros(nodes.shape)
    nxt[..., :-1] = V_hat[x, nodes[..., 1:]]
    last = answer_lengths(tree, leaves)[..., None] - 1
    return np.where(np.arange(tree.depth) < last, nxt, 0.0)


def rover_targets(tree: TreeMDP, pi, pi_old, leaves, advantages, rho: float = 1.0) -> np.ndarray:
    """ROVER's per-token targets ``y_t = A_i + V^(s_{t+1})``, ``y = A_i`` at the last token.

    Parameters
    ----------
    tree : TreeMDP
    pi, pi_old : (n_prompts, n_nodes, V) current and behaviour policies
    leaves : int (n_prompts, n)
    advantages : (n_prompts, n) centred rewards ``r~``
    rho : ROVER's temperature

    Returns
    -------
    numpy.ndarray float64 (n_prompts, n, D) (values after the last token are 0)

    Source: He et al. (2025), arXiv 2509.24981, released code (sheet, practical ROVER 3-5).
    """
    pi = validate_tree_policy(tree, pi)
    pi_old = validate_tree_policy(tree, pi_old)
    rho = read_scalar(rho, "rho", low=0.0, low_open=True)
    leaves = np.asarray(leaves)
    if leaves.ndim != 2 or leaves.shape[0] != tree.n_prompts:
        raise ValueError(f"leaves must have shape (n_prompts, n) = ({tree.n_prompts}, n), "
                         f"got {leaves.shape}")
    advantages = np.asarray(advantages, dtype=np.float64)
    if advantages.shape != leaves.shape:
        raise ValueError(f"advantages must have the shape of leaves {leaves.shape}, got "
                         f"{advantages.shape}")
    mask = _token_mask(tree, leaves)
    y = advantages[..., None] + _next_state_values(
        tree, pi, pi_old, leaves, rho)
    return np.where(mask, y, 0.0)


def _rl_terms(tree, method, pi, pi_old, leaves, components, targets=None):
    """Per-token loss values and their derivatives in log pi_theta, mixed over the advantage
    components ``[(A, prob), ...]`` (the sampled batch has one, prob 1)."""
    logp = token_log_probs(tree, pi, leaves)
    logp_old = token_log_probs(tree, pi_old, leaves)
    with np.errstate(invalid="ignore"):
        log_ratio = np.where(np.isfinite(logp_old), logp - logp_old, 0.0)
    ratio = np.exp(log_ratio)
    value = np.zeros(ratio.shape)
    weight = np.zeros(ratio.shape)
    if method.loss == "rover":
        Q = method.rho * log_ratio
        V_next = _next_state_values(tree, pi, pi_old, leaves, method.rho)
    for A, prob in components:
        A = np.asarray(A, dtype=np.float64)[..., None]
        prob = np.asarray(prob, dtype=np.float64)[..., None]
        if method.loss == "pg":
            value += prob * (-ratio * A)
            weight += prob * (-ratio * A)
        elif method.loss == "ppo":
            clipped = np.clip(ratio, 1.0 - method.clip_low, 1.0 + method.clip_high)
            active = ratio * A <= clipped * A
            value += prob * -np.where(active, ratio * A, clipped * A)
            weight += prob * np.where(active, -ratio * A, 0.0)
        else:
            y = A + V_next if targets is None else targets
            value += prob * (Q - y) ** 2
            weight += prob * 2.0 * method.rho * (Q - y)
    return value, weight


def _k3_terms(tree, pi, pi_ref, leaves, beta):
    """k3's per-token value and weight ``beta (1 - k)`` on ``grad log pi``: unbiased for the
    KL's value, but its expected gradient is ``beta d_pi(s) (pi - pi_ref)`` per state."""
    logp = token_log_probs(tree, pi, leaves)
    logk = token_log_probs(tree, pi_ref, leaves) - logp  # log(pi_ref / pi_theta)
    k = np.exp(logk)
    return beta * (k - logk - 1.0), beta * (1.0 - k)


def _ref_terms(tree, pi, pi_ref, ref_leaves, kind, beta):
    log_ref = token_log_probs(tree, pi_ref, ref_leaves)
    live = np.isfinite(log_ref)  # u is undefined where pi_ref = 0 (weight 0 there anyway)
    logu = np.where(live, token_log_probs(tree, pi, ref_leaves) - np.where(live, log_ref, 0.0), 0.0)
    u = np.exp(logu)
    return beta * generator(u, kind), beta * generator_gradient_weight(u, kind)


def _ref_normalizer(tree, ref_leaves, ref_prompts):
    """``1 / (P_ref m L_j)`` on the reference prompts, 0 elsewhere."""
    L = answer_lengths(tree, ref_leaves).astype(np.float64)
    nu = 1.0 / (max(int(ref_prompts.sum()), 1) * L.shape[1] * L)
    return np.where(ref_prompts[:, None], nu, 0.0)


def _weighted(coef, weight):
    """``coef * weight``, 0 where ``coef = 0`` (tokens after EOS, answers of probability 0,
    whose per-token weight may be undefined)."""
    with np.errstate(invalid="ignore"):
        return np.where(coef != 0, coef * weight, 0.0)


def _check_pi_ref(method, pi_ref, tree):
    if method.regularizer is None:
        return None
    if pi_ref is None:
        raise ValueError(f"regularizer {method.regularizer!r} needs pi_ref")
    return validate_tree_policy(tree, pi_ref)


def _assemble(tree, policy, method, batch, pi_ref, targets, *, want_value):
    _require_policy(tree, policy)
    if not isinstance(batch, Rollouts):
        raise TypeError(f"batch must be Rollouts, got {type(batch).__name__}")
    pi = policy.pi(tree)
    pi_ref = _check_pi_ref(method, pi_ref, tree)
    mask = _token_mask(tree, batch.leaves)
    kept = np.broadcast_to(batch.kept[:, None], batch.leaves.shape)
    if method.subset:
        kept = kept & (batch.advantages != 0)
    nu = normalizer(tree, batch.leaves, method.aggregation, kept)[..., None] * mask
    value, weight = _rl_terms(tree, method, pi, batch.pi_old, batch.leaves,
                              [(batch.advantages, 1.0)], targets)
    if method.regularizer == "k3":
        v, w = _k3_terms(tree, pi, pi_ref, batch.leaves, method.beta)
        value, weight = value + v, weight + w
    total = float((nu * value).sum()) if want_value else None
    dz = score_gradient(tree, pi, batch.leaves, _weighted(nu, weight))
    if method.regularizer in _ON_REF_SAMPLES:
        if batch.ref_leaves is None:
            raise ValueError("the batch has no samples of pi_ref (make_rollouts with pi_ref)")
        ref_prompts = _read_prompts(batch.ref_prompts, "ref_prompts", tree.n_prompts)
        nu_ref = (_ref_normalizer(tree, batch.ref_leaves, ref_prompts)[..., None]
                  * _token_mask(tree, batch.ref_leaves))
        v, w = _ref_terms(tree, pi, pi_ref, batch.ref_leaves, method.regularizer, method.beta)
        dz = dz + score_gradient(tree, pi, batch.ref_leaves, _weighted(nu_ref, w))
        if want_value:
            total += float((nu_ref * v).sum())
    return total, dz


def loss_value(tree: TreeMDP, policy: TreePolicy, batch: Rollouts, method: Method, *,
               pi_ref=None, targets=None) -> float:
    """The batch loss ``L(theta)`` (module docstring) at ``policy``, a float.

    ``targets`` (ROVER): fixed targets (from :func:`rover_targets`); default: computed at
    ``policy``, as the stop-gradient does (its gradient is :func:`loss_gradient`'s only with
    targets held fixed).

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy: the parameters theta
    batch : Rollouts: from :func:`make_rollouts` (``batch.pi_old`` (n_prompts, n_nodes, V))
    method : Method
    pi_ref : float64 (n_prompts, n_nodes, V), optional: needed when there is a regulariser
    targets : float64 (n_prompts, n, D), optional: ROVER's fixed targets
    """
    return _assemble(tree, policy, method, batch, pi_ref, targets, want_value=True)[0]


def loss_gradient(tree: TreeMDP, policy: TreePolicy, batch: Rollouts, method: Method, *,
                  pi_ref=None) -> PolicyGradient:
    """Gradient of the batch loss with respect to the policy's parameters (descend it).

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy
        The current parameters theta (``batch.pi_old`` is the behaviour policy).
    batch : Rollouts
    method : Method
    pi_ref : (n_prompts, n_nodes, V), optional
        Reference policy of the regulariser (needed when there is one).

    Returns
    -------
    PolicyGradient
    """
    return policy.gradient(_assemble(tree, policy, method, batch, pi_ref, None,
                                     want_value=False)[1])


def _outcome_advantages(method, values, q_bar, n):
    """``a_v = E[A_1 | own outcome v]`` for v in (0, 1) when the other n - 1 rewards are
    ``values[1]`` with probability ``q_bar`` (per prompt), else ``values[0]``.

    values: (P, 2) reward values; q_bar: (P,). Returns (P, 2) and checks that A_1 has one
    sign for each own outcome (the PPO clip branch depends on it)."""
    P = values.shape[0]
    c = np.arange(n)  # other correct outcomes
    out = np.empty((P, 2))
    for v in (0, 1):
        group = np.empty((P, n, n))
        group[:, :, 0] = values[:, v][:, None]
        others = np.arange(1, n)[None, :] <= c[:, None]  # (n, n-1): first c others are hi
        group[:, :, 1:] = np.where(others[None], values[:, 1, None, None], values[:, 0, None, None])
        A = _advantages(group, method)[:, :, 0]  # (P, n)
        pmf = binom.pmf(c[None, :], n - 1, q_bar[:, None])
        live = pmf > 0
        mixed = np.any(live & (A > 0), axis=1) & np.any(live & (A < 0), axis=1)
        if mixed.any():
            raise ValueError("the advantage changes sign with the other samples' outcomes: "
                             "no exact expectation")
        out[:, v] = (pmf * A).sum(axis=1)
    return out


def expected_loss_gradient(tree: TreeMDP, policy: TreePolicy, method: Method, n: int, *,
                           pi_old=None, pi_ref=None, rl_prompts=None,
                           ref_prompts=None) -> PolicyGradient:
    """Exact expectation, over a batch of ``n`` answers per prompt from ``pi_old``, of
    :func:`loss_gradient` at the fixed parameters ``policy``.

    Computed as a sum over all answers weighted by ``pi_old(y|x)``, with the advantage
    replaced by its conditional expectation given the answer's own outcome (Binomial
    enumeration over the other ``n - 1`` outcomes for group advantages) and, for the
    f-divergence regularisers, a sum over answers weighted by ``pi_ref(y|x)``. At
    ``pi_old = policy.pi(tree)`` (default) it is the exact expected first inner step.
    ``rl_prompts``, ``ref_prompts``: as in :func:`make_rollouts`.

    Raises
    ------
    ValueError
        When no exact expectation is available (module docstring): ``drop_equal``,
        ``"token_mean"`` with answers of different lengths, group advantages with rewards
        that are not two-valued.
    """
    n = _read_int(n, "n")
    _require_policy(tree, policy)
    pi = policy.pi(tree)
    pi_old = pi if pi_old is None else validate_tree_policy(tree, pi_old)
    pi_ref = _check_pi_ref(method, pi_ref, tree)
    if method.drop_equal or method.subset or method.band is not None:
        raise ValueError("no exact expectation with drop_equal, band or subset: the "
                         "normaliser counts the kept groups or samples (random)")
    answers = np.flatnonzero(tree.answer_mask)
    P = tree.n_prompts
    leaves = np.broadcast_to(answers, (P, answers.size)).copy()
    L = answer_lengths(tree, leaves).astype(np.float64)
    if method.aggregation == "token_mean" and np.any(L != L[0, 0]):
        raise ValueError("no exact expectation for the batch token mean with answers of "
                         "different lengths (a ratio of random sums)")
    rl = _read_prompts(rl_prompts, "rl_prompts", P)
    ref = _read_prompts(ref_prompts, "ref_prompts", P)
    P_ref = max(int(ref.sum()), 1)
    # the batch normaliser of one sample per answer, times the number of answers: the
    # weight of an answer drawn with probability p_old (n samples per prompt, each 1/n)
    nu = normalizer(tree, leaves, method.aggregation, rl) * answers.size
    p_old = leaf_probs(tree, pi_old)[:, answers]
    components = _expected_components(tree, method, leaves, p_old, n, pi_old, pi_ref)
    mask = _token_mask(tree, leaves)
    _, weight = _rl_terms(tree, method, pi, pi_old, leaves, components)
    if method.regularizer == "k3":
        weight = weight + _k3_terms(tree, pi, pi_ref, leaves, method.beta)[1]
    dz = score_gradient(tree, pi, leaves, _weighted((p_old * nu)[..., None] * mask, weight))
    if method.regularizer in _ON_REF_SAMPLES:
        p_ref = leaf_probs(tree, pi_ref)[:, answers]
        w = _ref_terms(tree, pi, pi_ref, leaves, method.regularizer, method.beta)[1]
        coef = (p_ref * ref[:, None] / (P_ref * L))[..., None] * mask
        dz = dz + score_gradient(tree, pi, leaves, _weighted(coef, w))
    return policy.gradient(dz)


def _expected_components(tree, method, leaves, p_old, n, pi_old, pi_ref):
    """``[(a_v, P(v | y))]`` per answer: the advantage's conditional expectations."""
    R = np.take_along_axis(tree.R, leaves, axis=1)
    if method.regularizer == "kl_reward":
        if method.verifier is not None or method.advantage not in _PER_SAMPLE:
            raise ValueError("no exact expectation for the KL reward penalty with a group "
                             "advantage or a verifier (the shaped reward is not two-valued)")
        R = R - method.beta * _sequence_log_ratio(tree, pi_old, pi_ref, leaves)
    if method.verifier is None and method.advantage in _PER_SAMPLE:
        return [(_advantages(R[..., None], method)[..., 0], 1.0)]
    if method.verifier is None:
        if not tree.binary:
            raise ValueError(f"no exact expectation for the group advantage "
                             f"{method.advantage!r} with non-binary rewards")
        q = R
        values = np.tile([0.0, 1.0], (tree.n_prompts, 1))
    else:
        rates = _rates(method, tree.n_prompts)
        if not tree.binary:
            raise ValueError("the noisy-verifier channel needs binary clean rewards")
        q = positive_rate(R, rates[0], rates[1])
        values = np.broadcast_to(_transform(np.array([[0.0, 1.0]]), method, rates),
                                 (tree.n_prompts, 2)).copy()
    q_bar = (p_old * q).sum(axis=1)
    a = _outcome_advantages(method, values, q_bar, n)
    return [(np.broadcast_to(a[:, 1:2], q.shape), q), (np.broadcast_to(a[:, 0:1], q.shape), 1.0 - q)]


def k3_per_token(tree: TreeMDP, pi, pi_ref, leaves) -> np.ndarray:
    """The k3 estimator per token, ``k - log k - 1`` with ``k = pi_ref(a_t|s_t) / pi(a_t|s_t)``,
    (n_prompts, n, D) float64, 0 after the answer's end.

    On answers drawn from ``pi`` its sum over tokens is an unbiased estimate of
    ``KL(pi(.|x) || pi_ref(.|x))``: ``E_pi[k] = 1`` per token and ``E[-log k]`` sums to the KL
    by the chain rule. Its gradient is NOT the KL's: per state it averages to ``pi - pi_ref``
    in the logits (module docstring; preset ``"reverse_kl"`` for the true gradient).
    Source: Schulman (2020), "Approximating KL divergence" (blog), as used by GRPO (Shao et
    al. 2024, eq. 4).
    """
    pi = validate_tree_policy(tree, pi)
    pi_ref = validate_tree_policy(tree, pi_ref)
    value = _k3_terms(tree, pi, pi_ref, np.asarray(leaves), 1.0)[0]
    return np.where(_token_mask(tree, leaves), value, 0.0)
