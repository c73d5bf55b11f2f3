"""Sampled RLVR training on tree policies: SGD and Adam (Kingma and Ba 2015) on the logits, and a seeded loop (n rollouts per prompt, K inner steps with pi_old fixed) recording exact metrics per step.

Sources: Kingma and Ba (2015), "Adam: A Method for Stochastic Optimization", ICLR,
Algorithm 1 (bias-corrected moments); the methods are those of :mod:`tabular.rlvr.losses`
(GRPO inner loop: Shao et al. 2024, arXiv 2402.03300, Algorithm 1: sample a batch from
pi_old = pi_theta, then K gradient steps on the clipped surrogate with pi_old fixed).
Metrics are exact, from ``tabular.tree.leaf_probs``: accuracy ``p_x``, pass@k ``1 - (1 -
p_x)^k``, the entropy of the answer distribution and the support size.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from proofs_check.seeding import as_generator
from tabular.mdp import _read_int
from tabular.rlvr._checks import read_scalar
from tabular.rlvr.losses import Method, loss_gradient, make_rollouts
from tabular.rlvr.passk import entropy, pass_at_k
from tabular.tree import (
    PARTS,
    PolicyGradient,
    TreeMDP,
    TreePolicy,
    _require_policy,
    leaf_probs,
)

__all__ = ["SGD", "Adam", "History", "exact_metrics", "train"]


class SGD:
    """Plain gradient descent: ``delta = lr * g`` (the step is ``z -= delta``).

    Parameters
    ----------
    lr : float > 0
    """

    def __init__(self, lr: float):
        self.lr = read_scalar(lr, "lr", low=0.0, low_open=True)

    def reset(self) -> None:
        """SGD has no state."""

    def delta(self, grad: PolicyGradient) -> PolicyGradient:
        """The parameter change to subtract, a PolicyGradient."""
        _require_gradient(grad)
        return PolicyGradient(self.lr * grad.z_shared, self.lr * grad.z_prompt)


class Adam:
    """Adam (Kingma and Ba 2015, Algorithm 1), per parameter entry:

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``, ``m^ = m / (1 - b1^t)``,
    ``v^ = v / (1 - b2^t)``, ``delta = lr m^ / (sqrt(v^) + eps)`` (the step is ``z -= delta``).

    Parameters
    ----------
    lr : float > 0
    beta1, beta2 : float in [0, 1)
    eps : float > 0
    """

    def __init__(self, lr: float, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.lr = read_scalar(lr, "lr", low=0.0, low_open=True)
        self.beta1 = read_scalar(beta1, "beta1", low=0.0, high=1.0, high_open=True)
        self.beta2 = read_scalar(beta2, "beta2", low=0.0, high=1.0, high_open=True)
        self.eps = read_scalar(eps, "eps", low=0.0, low_open=True)
        self.reset()

    def reset(self) -> None:
        """Forget the moments and the step count (ProRL's optimiser reset)."""
        self.t = 0
        self.m = {part: None for part in PARTS}
        self.v = {part: None for part in PARTS}

    def delta(self, grad: PolicyGradient) -> PolicyGradient:
        """The parameter change to subtract, a PolicyGradient; advances the step count."""
        _require_gradient(grad)
        self.t += 1
        out = {}
        for part in PARTS:
            g = getattr(grad, part)
            m = self.m[part] if self.m[part] is not None else np.zeros_like(g)
            v = self.v[part] if self.v[part] is not None else np.zeros_like(g)
            m = self.beta1 * m + (1.0 - self.beta1) * g
            v = self.beta2 * v + (1.0 - self.beta2) * g * g
            self.m[part], self.v[part] = m, v
            m_hat = m / (1.0 - self.beta1 ** self.t)
            v_hat = v / (1.0 - self.beta2 ** self.t)
            out[part] = self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return PolicyGradient(**out)


def _require_gradient(grad) -> None:
    if not isinstance(grad, PolicyGradient):
        raise TypeError(f"grad must be a PolicyGradient, got {type(grad).__name__}")


@dataclass(frozen=True, eq=False)
class History:
    """Exact metrics after each training step (row 0: before training).

    Attributes
    ----------
    accuracy : float64 (n_steps + 1, n_prompts): ``p_x = sum_{y in C(x)} pi(y|x)``
    pass_at_k : float64 (n_steps + 1, n_prompts, len(ks))
    entropy : float64 (n_steps + 1, n_prompts): entropy of pi(.|x) over answers, nats
    support : int64 (n_steps + 1, n_prompts): answers with ``pi(y|x) > support_epsilon``
    ks : int64 (len(ks),)
    policy : TreePolicy, the final policy
    """

    accuracy: np.ndarray
    pass_at_k: np.ndarray
    entropy: np.ndarray
    support: np.ndarray
    ks: np.ndarray
    policy: TreePolicy = field(repr=False)


def exact_metrics(tree: TreeMDP, policy: TreePolicy, ks, support_epsilon: float = 1e-4):
    """``(accuracy (P,), pass@k (P, len(ks)), entropy (P,), support (P,))`` of ``policy``,
    exact from the leaf distribution (correct = ``tree.correct``)."""
    _require_policy(tree, policy)
    return _metrics(tree, policy.pi(tree), np.asarray(ks), support_epsilon)


def _metrics(tree, pi, ks, support_epsilon):
    p = leaf_probs(tree, pi)
    acc = np.where(tree.correct, p, 0.0).sum(axis=1).clip(0.0, 1.0)
    return (acc, pass_at_k(acc[:, None], ks[None, :]), entropy(p / p.sum(axis=1, keepdims=True)),
            (p > support_epsilon).sum(axis=1))


def train(tree: TreeMDP, policy: TreePolicy, method: Method, *, n: int, n_steps: int,
          optimizer, K: int = 1, ks=(1, 2, 4, 8, 16, 32, 64, 128, 256), pi_ref=None,
          rl_prompts=None, ref_prompts=None, support_epsilon: float = 1e-4,
          seed=None) -> History:
    """Train ``policy`` on ``tree`` with ``method`` and record exact metrics.

    Each step: ``pi_old = pi_theta``; sample ``n`` answers per prompt (and ``method.n_ref``
    of ``pi_ref`` for f-divergence regularisers) with :func:`tabular.rlvr.losses.make_rollouts`;
    then ``K`` inner steps ``z -= optimizer.delta(loss_gradient(...))`` with the batch and
    ``pi_old`` fixed. One random stream (``seed``) drives all draws, so the same seed gives a
    bit-identical history.

    Parameters
    ----------
    tree : TreeMDP
    policy : TreePolicy
        Initial policy (not modified; the trained parts are its ``parts``).
    method : Method
    n : int >= 1
        Rollouts per prompt and step (the group size G).
    n_steps : int >= 0
    optimizer : SGD or Adam
        Its state carries on across steps (it is not reset here).
    K : int >= 1
        Inner steps per batch.
    ks : sequence of int >= 1
        pass@k values recorded.
    pi_ref : (n_prompts, n_nodes, V), optional
        Reference policy (k3 KL, f-divergences).
    rl_prompts, ref_prompts : bool (n_prompts,), optional
        Prompts of the RL term and of the f-divergence term (DPH-RL's split); default all.
    support_epsilon : float in [0, 1)
    seed : int, SeedSequence, Generator or None

    Returns
    -------
    History
    """
    _require_policy(tree, policy)
    if not isinstance(method, Method):
        raise TypeError(f"method must be a Method, got {type(method).__name__}")
    if not hasattr(optimizer, "delta"):
        raise TypeError(f"optimizer must be an SGD or Adam, got {type(optimizer).__name__}")
    n = _read_int(n, "n")
    n_steps = _read_int(n_steps, "n_steps", minimum=0)
    K = _read_int(K, "K")
    ks = np.asarray(ks)
    if ks.ndim != 1 or ks.dtype.kind not in "iu" or np.any(ks < 1):
        raise ValueError(f"ks must be a 1-d sequence of ints >= 1, got {ks!r}")
    support_epsilon = read_scalar(support_epsilon, "support_epsilon", low=0.0, high=1.0,
                                  high_open=True)
    rng = as_generator(seed)
    policy = policy.copy()
    pi = policy.pi(tree)
    rows = [_metrics(tree, pi, ks, support_epsilon)]
    for _ in range(n_steps):
        batch = make_rollouts(tree, pi, method, n, pi_ref=pi_ref, rl_prompts=rl_prompts,
                              ref_prompts=ref_prompts, seed=rng)
        for _ in range(K):
            grad = loss_gradient(tree, policy, batch, method, pi_ref=pi_ref)
            policy = policy.step(optimizer.delta(grad), -1.0)
        pi = policy.pi(tree)
        rows.append(_metrics(tree, pi, ks, support_epsilon))
    acc, pk, ent, sup = (np.array(col) for col in zip(*rows))
    return History(accuracy=acc, pass_at_k=pk, entropy=ent, support=sup.astype(np.int64),
                   ks=ks.astype(np.int64), policy=policy)
