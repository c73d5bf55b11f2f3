"""Speed of the exact tree computations (tabular.tree): leaf distributions and expected gradients at n_vocab = 4, depth = 8 (65,536 leaves).

Usage: ``.venv/bin/python benchmarks/tree_speed.py [--reps N] [--prompts 1,16]``. Prints a
Markdown table of the median (and minimum) wall-clock time per call and per prompt, after
one warm-up call, with BLAS on one thread. Target (issue 5): at most 0.1 s per prompt.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from tabular.tree import (
    TreeMDP, TreePolicy, expected_reward_gradient, leaf_probs, objective_gradient,
    sample_leaves,
)

V, D = 4, 8
TARGET_S = 0.1


def time_calls(fn, reps: int) -> np.ndarray:
    fn()  # warm-up (and Numba compilation for the sampler)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return np.array(times)


def cases(n_prompts: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    tree = TreeMDP(rng.random((n_prompts, V**D)) < 0.01, n_vocab=V, depth=D)
    policy = TreePolicy.random(tree, shared_scale=1.0, prompt_scale=1.0, c=0.5, seed=rng)
    G = rng.standard_normal((n_prompts, V**D))
    return {
        "policy probabilities (softmax of z_shared + c z_prompt)": lambda: policy.pi(tree),
        "leaf distribution pi(y|x) (from logits)": lambda: leaf_probs(tree, policy.pi(tree)),
        "expected-reward gradient (both parts)": lambda: expected_reward_gradient(tree, policy),
        "generic backward from dF/dpi (both parts)": lambda: objective_gradient(tree, policy, G),
        "sample 1000 rollouts per prompt (Numba)":
            lambda: sample_leaves(tree, policy.pi(tree), 1000, seed=1),
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--prompts", default="1,16")
    args = parser.parse_args(argv)
    print(f"n_vocab = {V}, depth = {D}: {V**D} leaves, {(V**D - 1) // (V - 1)} internal nodes "
          f"per prompt; median [min] of {args.reps} calls, BLAS on 1 thread\n")
    print("| computation | prompts | per call (ms) | per prompt (ms) | target <= 100 ms/prompt |")
    print("|---|---|---|---|---|")
    with threadpool_limits(1):
        for n_prompts in (int(p) for p in args.prompts.split(",")):
            for name, fn in cases(n_prompts).items():
                t = time_calls(fn, args.reps)
                med, low = np.median(t), t.min()
                per = med / n_prompts
                ok = "met" if per <= TARGET_S else "MISSED"
                print(f"| {name} | {n_prompts} | {1e3 * med:.1f} [{1e3 * low:.1f}] | "
                      f"{1e3 * per:.2f} | {ok} |")


if __name__ == "__main__":
    main()
