"""RLVR training loop: SGD and Adam against hand-computed steps, exact metrics, seeded reproducibility, the loop against a manual replay."""
import numpy as np
import pytest

from tabular.rlvr import losses as L
from tabular.rlvr.training import SGD, Adam, History, exact_metrics, train
from tabular.tree import PolicyGradient, TreeMDP, TreePolicy


def _tree(seed=0, V=3, D=3, P=3):
    rng = np.random.default_rng(seed)
    R = rng.random((P, V**D)) < 0.2
    R[:, 0] = True
    return TreeMDP(R, n_vocab=V, depth=D)


def _grad(a, b):
    return PolicyGradient(z_shared=np.array([[a, b]]), z_prompt=np.array([[[b, a]]]))


def test_sgd_step_by_hand():
    policy = TreePolicy(np.array([[1.0, 2.0]]), np.array([[[0.5, -0.5]]]), 1.0)
    new = policy.step(SGD(0.1).delta(_grad(0.5, -2.0)), -1.0)
    assert np.allclose(new.z_shared, [[1.0 - 0.05, 2.0 + 0.2]], rtol=0, atol=1e-15)
    assert np.allclose(new.z_prompt, [[[0.5 + 0.2, -0.5 - 0.05]]], rtol=0, atol=1e-15)


def test_adam_two_steps_by_hand():
    opt = Adam(0.01)  # beta1 0.9, beta2 0.999, eps 1e-8
    d1 = opt.delta(_grad(0.5, -2.0))
    # step 1: m^ = g, v^ = g^2, delta = lr g / (|g| + eps)
    assert np.allclose(d1.z_shared, [[0.01 * 0.5 / (0.5 + 1e-8), 0.01 * -2.0 / (2.0 + 1e-8)]],
                       rtol=0, atol=1e-15)
    d2 = opt.delta(_grad(-1.0, 1.0))
    # step 2, first entry: m = 0.9*0.05 - 0.1 = -0.055, v = 0.999*0.00025 + 0.001 = 0.00124975
    m_hat = -0.055 / (1 - 0.9**2)
    v_hat = 0.00124975 / (1 - 0.999**2)
    assert abs(d2.z_shared[0, 0] - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)) < 1e-15
    # second entry: m = 0.9*(-0.2) + 0.1 = -0.08, v = 0.999*0.004 + 0.001 = 0.004996
    m_hat = -0.08 / 0.19
    v_hat = 0.004996 / (1 - 0.999**2)
    assert abs(d2.z_shared[0, 1] - 0.01 * m_hat / (np.sqrt(v_hat) + 1e-8)) < 1e-15
    opt.reset()
    assert np.allclose(opt.delta(_grad(0.5, -2.0)).z_shared, d1.z_shared, rtol=0, atol=0)


def test_exact_metrics_against_direct_computation():
    tree = _tree()
    policy = TreePolicy.random(tree, seed=1)
    acc, pk, ent, sup = exact_metrics(tree, policy, [1, 4])
    pi = policy.pi(tree)
    V, D = tree.n_vocab, tree.depth
    for x in range(tree.n_prompts):
        probs = np.array([np.prod([pi[x, tree.offsets[t] + y // V ** (D - t), (y // V ** (D - 1 - t)) % V]
                                   for t in range(D)]) for y in range(tree.n_leaves)])
        a = probs[tree.R[x] > 0].sum()
        assert abs(acc[x] - a) < 1e-12
        assert np.allclose(pk[x], [a, 1 - (1 - a) ** 4], atol=1e-12, rtol=0)
        assert abs(ent[x] + (probs * np.log(probs)).sum()) < 1e-12
        assert sup[x] == (probs > 1e-4).sum()


def test_training_is_bit_identical_for_a_seed_and_follows_the_manual_loop():
    tree = _tree()
    policy = TreePolicy.random(tree, seed=2)
    method = L.preset("grpo")
    kw = {"n": 6, "n_steps": 3, "K": 2, "ks": (1, 8)}
    h1 = train(tree, policy, method, optimizer=Adam(0.05), seed=7, **kw)
    h2 = train(tree, policy, method, optimizer=Adam(0.05), seed=7, **kw)
    h3 = train(tree, policy, method, optimizer=Adam(0.05), seed=8, **kw)
    assert isinstance(h1, History) and h1.accuracy.shape == (4, 3)
    assert h1.pass_at_k.shape == (4, 3, 2)
    for f in ("accuracy", "pass_at_k", "entropy", "support"):
        assert np.array_equal(getattr(h1, f), getattr(h2, f))
    assert not np.array_equal(h1.accuracy, h3.accuracy)
    assert np.array_equal(h1.policy.z_prompt, h2.policy.z_prompt)
    # manual replay of the documented loop with the same stream
    rng = np.random.default_rng(9)
    opt = SGD(0.3)
    p = policy.copy()
    for _ in range(3):
        batch = L.make_rollouts(tree, p.pi(tree), method, 6, seed=rng)
        for _ in range(2):
            p = p.step(opt.delta(L.loss_gradient(tree, p, batch, method)), -1.0)
    h = train(tree, policy, method, optimizer=SGD(0.3), seed=np.random.default_rng(9), **kw)
    assert np.array_equal(h.policy.z_prompt, p.z_prompt)
    assert np.array_equal(h.accuracy[-1], exact_metrics(tree, p, (1,))[0])
    assert np.array_equal(policy.z_prompt, TreePolicy.random(tree, seed=2).z_prompt)  # untouched


@pytest.mark.parametrize("name", ["grpo", "rover", "nsr", "dph_js", "dapo"])
def test_training_improves_accuracy(name):
    """Sanity on a fixed seed: every method raises the mean exact accuracy in 30 steps."""
    tree = _tree(seed=3)
    policy = TreePolicy.random(tree, seed=4)
    pi_ref = policy.pi(tree)
    h = train(tree, policy, L.preset(name), n=8, n_steps=30, optimizer=Adam(0.1), K=2,
              pi_ref=pi_ref, seed=5)
    assert h.accuracy[-1].mean() > h.accuracy[0].mean() + 0.05


def test_bad_input():
    tree = _tree()
    policy = TreePolicy.random(tree, seed=0)
    method = L.preset("grpo")
    with pytest.raises(ValueError):
        train(tree, policy, method, n=0, n_steps=1, optimizer=SGD(0.1))
    with pytest.raises(ValueError):
        train(tree, policy, method, n=4, n_steps=1, K=0, optimizer=SGD(0.1))
    with pytest.raises(TypeError):
        train(tree, policy, method, n=4, n_steps=1, optimizer=0.1)
    with pytest.raises(TypeError):
        train(tree, policy, "grpo", n=4, n_steps=1, optimizer=SGD(0.1))
    with pytest.raises(ValueError, match="ks"):
        train(tree, policy, method, n=4, n_steps=1, optimizer=SGD(0.1), ks=(0, 2))
    with pytest.raises(ValueError, match="lr"):
        SGD(-1.0)
    with pytest.raises(ValueError, match="beta2"):
        Adam(0.1, beta2=1.0)
    with pytest.raises(TypeError):
        SGD(0.1).delta(np.zeros(3))
