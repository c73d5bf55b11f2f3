"""Sampled GRPO on the audited reasoning-boundary tree: base and trained pass@k cross at large k and the correct support shrinks (Yue et al. 2025; Wu et al. 2025).

Instance (spec sheet ``passk_reasoning_boundary.md``, the audited construction, built by
:func:`figures.passk_exact.build_instance` with ``instance_seed``): ``V = 4``, ``D = 6``,
``P = 64`` prompts, logits ``z[x][s] = z_shared[s] + 0.3 z_prompt[x][s]`` (``z_shared ~
N(0, 2^2)`` trained, ``z_prompt ~ N(0, 1)`` frozen); correct leaves: the popular family (the
64 leaves under the depth-3 node whose prompt-averaged base reach is closest to 0.1) for 45
of 64 prompts, 1-3 private leaves per prompt with base probability in (2e-3, 2e-2), and one
correct leaf per prompt behind a ``-inf`` logit of the base (the exact leash).

Training (sheet values, fixed before running): GRPO without KL, ``n = 8`` rollouts per
prompt, one inner step (``K = 1``, so PPO's ratio is 1 and the surrogate's gradient is the
sheet's ``mean_x (1/(nD)) sum_i A_i sum_t grad log pi``: the ``seq_mean`` normaliser of
:mod:`tabular.rlvr.losses`), plain SGD with ``lr = 0.3`` on ``z_shared`` only, 300 steps,
3 seeds. Metrics are exact (leaf probabilities), not sampled. Smoke and quick use smaller
trees (smoke ``D = 4, P = 16``, 60 steps, 2 seeds; quick ``D = 5``): changes forced by the
time budget, not by the results.

Empirical rule (fixed in advance): "reproduced" iff in EVERY seed (a) the trained policy's
mean pass@1 exceeds the base's by at least ``margin_k1 = 0.01``, (b) its mean
pass@k_max is below the base's by at least ``margin_kmax = 0.005`` (a crossing), and (c) the
correct support shrinks: summed over prompts, |S| > |E| at every epsilon in ``epsilons``
(1e-2, 1e-3; Invisible Leash categories, :func:`tabular.rlvr.passk.support_categories`).
The seeds share ONE instance (``instance_seed``): "every seed" is robust to the sampling noise
of training only, not to the draw of the tree. Reported alongside: the first k where the
trained curve falls below the base, how many prompts end with p_RL < p_base (audit: 18-19 of
64), token vs answer entropy. The headline reads "reproduced: ..." or "not reproduced in this
toy: ..." (fix round: it was "reproduced (crossing ..., support ...)"), followed by which
of the crossing and the shrinkage were reproduced.

Asserted (exact, every seed, exit 1 when violated): leaves with base probability exactly 0
keep probability exactly 0 at every recorded step. This support invariant follows from the
parametrisation (the masks are ``-inf`` entries of the frozen ``z_prompt``, so the softmax
gives them exactly 0 whatever ``z_shared`` becomes); what the assertion checks is that the
training loop never writes to the frozen masks. The other assertions are identities of the
metric code, checked on the run's numbers: leaf distributions sum to 1 (1e-12); mean pass@k
is non-decreasing and concave in k (1e-15); a crossing comes with prompts where p_RL <
p_base (single-prompt dominance); the categories P, S, E, O partition the correct set; H_ans
<= H_seq and D H_tok = H_seq (1e-9). Planted error: ``train_logit_floor`` (a finite floor
``z_prompt <- max(z_prompt, floor)`` applied after every training step, from step 1 on, as a
logit "sanitiser" in the loop would; the training loop is a private one-step loop,
:func:`_train_steps`, equal to :func:`tabular.rlvr.training.train` with ``K = 1``) leaks
mass onto the masked leaves after the first step. Fix round: the earlier planted error wrote
the floor before training, so it failed at step 0, before any training step.

Timing (2 shared cores, ``time .venv/bin/boundlab check passk-boundary --config ...``):
smoke 2.4 s, quick 8.8 s (fix round).
"""
from __future__ import annotations

import numpy as np

from proofs_check.claims import Claim

NAME = "passk-boundary"
CLAIM = Claim(
    name=NAME,
    statement=(
        "Sampled GRPO (n = 8, no KL, lr 0.3, shared logits) on the audited reasoning-boundary "
        "tree raises pass@1 above the base but ends below the base at large k, and the "
        "correct support shrinks (|S| > |E|); masked leaves stay at probability exactly 0."
    ),
    source=(
        "Yue et al. (2025) arXiv 2504.13837 (pass@k crossing); Wu et al. (2025) arXiv "
        "2507.14843 v1 (support categories, support preservation); toy construction and "
        "numbers from the project spec sheet's audit."
    ),
    kind="empirical",
)

_BASE = {
    "V": 4, "D": 6, "P": 64, "c": 0.3, "shared_scale": 2.0, "prompt_scale": 1.0,
    "family_depth": 3, "family_reach": 0.1, "family_share": 45 / 64,
    "private_lo": 2e-3, "private_hi": 2e-2, "private_max": 3, "masked": True,
    "instance_seed": 0,
    "n": 8, "lr": 0.3, "steps": 300, "checkpoints": [0, 100, 300], "record_every": 25,
    "n_runs": 3, "k_max": 1024, "epsilons": [1e-2, 1e-3],
    "margin_k1": 0.01, "margin_kmax": 0.005,
    "train_logit_floor": -np.inf,  # planted error: finite: z_prompt floored after every step
}
CONFIGS = {
    "smoke": {**_BASE, "D": 4, "P": 16, "steps": 60, "checkpoints": [0, 20, 60],
              "record_every": 20, "n_runs": 2, "k_max": 256},
    "quick": {**_BASE, "D": 5},
    "paper": {**_BASE},
}
AGGREGATE_KEYS = ("margin_k1", "margin_kmax")

TOL = 1e-9
_INSTANCE_KEYS = ("V", "D", "P", "c", "shared_scale", "prompt_scale", "family_depth",
                  "family_reach", "family_share", "private_lo", "private_hi", "private_max",
                  "masked", "instance_seed")


def validate_config(config) -> None:
    """Raise ``ValueError`` naming the key when a configuration cannot give a verdict."""
    for key, low in (("V", 2), ("D", 4), ("P", 1), ("n", 2), ("steps", 1), ("n_runs", 1),
                     ("k_max", 2), ("record_every", 1)):
        if not isinstance(config[key], int) or isinstance(config[key], bool) or config[key] < low:
            raise ValueError(f"{key} must be an int >= {low}, got {config[key]!r}")
    if config["k_max"] & (config["k_max"] - 1):
        raise ValueError(f"k_max must be a power of 2, got {config['k_max']}")
    cps = config["checkpoints"]
    if cps[0] != 0 or sorted(set(cps)) != cps or cps[-1] != config["steps"]:
        raise ValueError(f"checkpoints must increase from 0 to steps = {config['steps']}, got {cps}")
    if any(c % config["record_every"] for c in cps):
        raise ValueError(f"checkpoints {cps} must be multiples of record_every = "
                         f"{config['record_every']}")
    if not config["lr"] > 0:
        raise ValueError(f"lr must be positive, got {config['lr']!r}")
    if not config["epsilons"] or any(not 0 < e < 1 for e in config["epsilons"]):
        raise ValueError(f"epsilons must be in (0, 1), got {config['epsilons']}")
    floor = config["train_logit_floor"]
    if not (np.isfinite(floor) or floor == -np.inf):
        raise ValueError(f"train_logit_floor must be -inf (no planted error) or a finite logit, "
                         f"got {floor!r}")


def runs(config) -> list[dict]:
    """``n_runs`` seeds of the same training (validated first)."""
    validate_config(config)
    return [{"seed_index": s} for s in range(config["n_runs"])]


def _ks(config) -> np.ndarray:
    return 2 ** np.arange(int(np.log2(config["k_max"])) + 1)


def _entropies(tree, pi, leaves):
    """``(H_tok, H_ans, H_seq)`` per prompt; answer = last token (sheet)."""
    from tabular.rlvr.passk import answer_distribution, entropy, token_entropy

    answer_of = tree.leaf_tokens(np.arange(tree.n_leaves))[:, -1]
    return (token_entropy(tree, pi), entropy(answer_distribution(leaves, answer_of, tree.n_vocab)),
            entropy(leaves))


def _train_steps(tree, policy, method, opt, n, n_steps, rng, floor):
    """``n_steps`` steps of ``train`` with ``K = 1``; a finite ``floor`` (planted error) clamps
    ``z_prompt`` from below after every step."""
    from tabular.rlvr.losses import loss_gradient, make_rollouts
    from tabular.tree import TreePolicy

    for _ in range(n_steps):
        batch = make_rollouts(tree, policy.pi(tree), method, n, seed=rng)
        policy = policy.step(opt.delta(loss_gradient(tree, policy, batch, method)), -1.0)
        if np.isfinite(floor):
            policy = TreePolicy(policy.z_shared, np.maximum(policy.z_prompt, floor), policy.c,
                                parts=policy.parts)
    return policy


def run_one(config, seed) -> dict:
    """One seed of sampled GRPO; exact metrics every ``record_every`` steps.

    Returns
    -------
    dict
        ``p`` (n_rec, P) accuracies at the recorded steps, ``H_tok, H_ans, H_seq`` (n_rec, P),
        ``zero_max`` (n_rec,) the largest trained probability on base-zero leaves,
        ``sum_err`` (n_rec,) the largest ``|sum_y pi(y|x) - 1|``, ``p_base`` (P,),
        ``support_{i}`` (4,) the counts |P|, |S|, |E|, |O| at ``epsilons[i]``, ``n_correct``.
    """
    from figures.passk_exact import build_instance
    from proofs_check.seeding import as_generator
    from tabular.rlvr.losses import preset
    from tabular.rlvr.passk import support_categories
    from tabular.rlvr.training import SGD
    from tabular.tree import TreePolicy, leaf_probs

    rng = as_generator(seed)
    sub = {k: config[k] for k in _INSTANCE_KEYS}
    tree, base, _ = build_instance(sub)
    q = leaf_probs(tree, base.pi(tree))
    policy = TreePolicy(base.z_shared.copy(), base.z_prompt.copy(), base.c, parts=("z_shared",))
    method, opt = preset("grpo"), SGD(config["lr"])
    out = {key: [] for key in ("p", "H_tok", "H_ans", "H_seq", "zero_max", "sum_err")}
    every, step = config["record_every"], 0
    while True:
        pi = policy.pi(tree)
        leaves = leaf_probs(tree, pi)
        for key, value in zip(("H_tok", "H_ans", "H_seq"), _entropies(tree, pi, leaves)):
            out[key].append(value)
        out["p"].append(np.where(tree.correct, leaves, 0.0).sum(axis=1).clip(0.0, 1.0))
        out["zero_max"].append(float(leaves[q == 0].max(initial=0.0)))
        out["sum_err"].append(float(np.abs(leaves.sum(axis=1) - 1).max()))
        if step == config["steps"]:
            break
        policy = _train_steps(tree, policy, method, opt, config["n"], every, rng,
                              config["train_logit_floor"])
        step += every
    res = {key: np.array(value) for key, value in out.items()}
    res["p_base"] = res["p"][0]
    for i, eps in enumerate(config["epsilons"]):
        cat = support_categories(q, leaves, tree.correct, eps)
        res[f"support_{i}"] = np.array([cat[k].sum() for k in "PSEO"])
    res["n_correct"] = np.array(int(tree.correct.sum()))
    return res


def aggregate(runs_out, config) -> dict:
    """Mean pass@k curves at the checkpoints, support counts, the rule and the assertions."""
    from tabular.rlvr.passk import pass_at_k_curve

    ks = _ks(config)
    every, D = config["record_every"], config["D"]
    rows = [c // every for c in config["checkpoints"]]
    n_seeds = len(runs_out)
    curves = np.array([[pass_at_k_curve(run["p"][r], ks) for r in rows] for run in runs_out])
    base, final = curves[:, 0], curves[:, -1]
    gain_k1 = final[:, 0] - base[:, 0]
    drop_kmax = base[:, -1] - final[:, -1]
    crossing = (gain_k1 > 0) & (drop_kmax > 0)
    first_below = np.array([ks[np.argmax(f < b)] if np.any(f < b) else 0
                            for f, b in zip(final, base)])
    n_worse = np.array([int((run["p"][-1] < run["p_base"]).sum()) for run in runs_out])
    support = np.array([[run[f"support_{i}"] for i in range(len(config["epsilons"]))]
                        for run in runs_out])  # (seeds, eps, 4)
    shrinks = support[:, :, 1] > support[:, :, 2]
    crosses = bool(np.all(gain_k1 >= config["margin_k1"])
                   and np.all(drop_kmax >= config["margin_kmax"]))
    reproduced = crosses and bool(np.all(shrinks))
    H = {key: np.array([run[key].mean(axis=1) for run in runs_out]) for key in
         ("H_tok", "H_ans", "H_seq")}

    checks = []
    zero = max(float(run["zero_max"].max()) for run in runs_out)
    checks.append(("base-zero leaves stay at 0", zero == 0.0,
                   f"largest trained probability on leaves with q = 0: {zero:.3g}"))
    sums = max(float(run["sum_err"].max()) for run in runs_out)
    checks.append(("leaf probabilities sum to 1", sums <= 1e-12, f"max |sum - 1| {sums:.2g}"))
    d1 = np.diff(curves, axis=-1)
    # concave in k: the secant slopes between consecutive grid points never increase
    slopes = d1 / np.diff(ks)
    mono = float(-d1.min()) if d1.size else 0.0
    conc = float(np.diff(slopes, axis=-1).max()) if slopes.shape[-1] > 1 else 0.0
    checks.append(("pass@k non-decreasing and concave in k", mono <= 1e-15 and conc <= 1e-15,
                   f"largest decrease {max(mono, 0):.2g}, largest slope increase {max(conc, 0):.2g}"))
    dom = [bool(n_worse[s] > 0) for s in range(n_seeds) if crossing[s]]
    checks.append(("crossing implies prompts with p_RL < p_base", all(dom),
                   (f"{int(crossing.sum())} seed(s) cross; prompts with p_RL < p_base: "
                    f"{n_worse.tolist()}")))
    part = all(int(run[f"support_{i}"].sum()) == int(run["n_correct"])
               for run in runs_out for i in range(len(config["epsilons"])))
    checks.append(("P, S, E, O partition the correct set", part,
                   f"category counts sum to |C| at every epsilon: {part}"))
    ent = max(float(max((run["H_ans"] - run["H_seq"]).max(),
                        np.abs(D * run["H_tok"] - run["H_seq"]).max())) for run in runs_out)
    checks.append(("H_ans <= H_seq and D H_tok = H_seq", ent <= TOL, f"worst excess {ent:.2g}"))

    return {"ks": ks, "checkpoints": np.array(config["checkpoints"]), "curves": curves,
            "gain_k1": gain_k1, "drop_kmax": drop_kmax, "first_below": first_below,
            "n_worse": n_worse, "support": support, "epsilons": np.array(config["epsilons"]),
            "steps_recorded": np.arange(0, config["steps"] + 1, every), "P": config["P"],
            "D": D, "n_seeds": n_seeds, "lr": config["lr"], "n": config["n"],
            "margin_k1": config["margin_k1"], "margin_kmax": config["margin_kmax"],
            "reproduced": reproduced, "crosses": crosses, "shrinks": bool(np.all(shrinks)),
            **{key: value for key, value in H.items()},
            "checks": [{"claim": c, "ok": bool(ok), "text": t} for c, ok, t in checks]}


def _fmt(a) -> str:
    return "[" + ", ".join(f"{v:.3f}" for v in np.atleast_1d(a)) + "]"


def verdict(results) -> tuple[bool | None, str]:
    """Asserted identities decide the exit code; the empirical rule picks the headline."""
    ks, curves, eps = results["ks"], results["curves"], results["epsilons"]
    sup = "; ".join(f"eps {e:g}: |P|, |S|, |E| = {results['support'][:, i, :3].tolist()}"
                    for i, e in enumerate(eps))
    numbers = (
        f"per seed ({results['n_seeds']}), mean over {results['P']} prompts: pass@1 base "
        f"{_fmt(curves[:, 0, 0])} -> trained {_fmt(curves[:, -1, 0])} (rule: gain >= "
        f"{results['margin_k1']:g}); pass@{ks[-1]} base {_fmt(curves[:, 0, -1])} vs trained "
        f"{_fmt(curves[:, -1, -1])} (rule: drop >= {results['margin_kmax']:g}); first k with "
        f"trained < base {results['first_below'].tolist()} (0 = none; sheet: 16-32); prompts "
        f"ending with p_RL < p_base {results['n_worse'].tolist()} of {results['P']} (audit "
        f"18-19 of 64); support (rule: |S| > |E|) {sup}; mean H_tok {results['H_tok'][:, 0].mean():.3f} "
        f"-> {results['H_tok'][:, -1].mean():.3f}, H_ans {results['H_ans'][:, 0].mean():.3f} -> "
        f"{results['H_ans'][:, -1].mean():.3f} nats.")
    checks = "; ".join(f"{c['claim']}: {c['text']}" for c in results["checks"])
    failed = [c["claim"] for c in results["checks"] if not c["ok"]]
    if failed:
        return False, f"NOT SUPPORTED (asserted: {', '.join(failed)} failed). {checks}. {numbers}"
    parts = (f"crossing {'reproduced' if results['crosses'] else 'not reproduced'}, "
             f"support shrinkage {'reproduced' if results['shrinks'] else 'not reproduced'}")
    head = "reproduced" if results["reproduced"] else "not reproduced in this toy"
    return True, (f"{head}: {parts} (seeds share one instance: robust to sampling noise "
                  f"only); {numbers} Asserted, exact: {checks}.")


def plot(results):
    """Mean pass@k against k at the checkpoints; support counts per epsilon; entropies."""
    import matplotlib.pyplot as plt

    ks, curves, cps = results["ks"], results["curves"], results["checkpoints"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    ax = axes[0]
    mean = curves.mean(axis=0)
    for j, step in enumerate(cps):
        ax.plot(ks, mean[j], "k-" if step == 0 else "-", marker="o", ms=3,
                label="base" if step == 0 else f"GRPO, step {step}")
    ax.set(xscale="log", xlabel="k", ylabel=f"mean pass@k over {results['P']} prompts",
           title=f"pass@k (mean of {results['n_seeds']} seeds, exact)")
    ax.legend(fontsize=8)
    ax = axes[1]
    eps, sup = results["epsilons"], results["support"].mean(axis=0)
    width = 0.8 / len(eps)
    for i, e in enumerate(eps):
        ax.bar(np.arange(3) + i * width, sup[i, :3], width, label=f"epsilon = {e:g}")
    ax.set_xticks(np.arange(3) + 0.4 - width / 2, ["preserved |P|", "shrunk |S|", "expanded |E|"])
    ax.set(ylabel="correct leaves, summed over prompts (seed mean)", title="support at the end")
    ax.legend(fontsize=8)
    ax = axes[2]
    steps = results["steps_recorded"]
    ax.plot(steps, results["H_tok"].mean(axis=0), "-o", ms=3, label="token entropy H_tok")
    ax.plot(steps, results["H_ans"].mean(axis=0), "-s", ms=3, label="answer entropy H_ans (last token)")
    ax.set(xlabel="training step", ylabel="nats (prompt and seed mean)", title="entropies")
    ax.legend(fontsize=8)
    fig.suptitle(f"Reasoning boundary: sampled GRPO (n = {results['n']}, lr {results['lr']:g}), "
                 f"V = 4, D = {results['D']}, shared logits", fontsize=10)
    return fig
