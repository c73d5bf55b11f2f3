"""TabularEnv: Gymnasium conformance, exact trajectories on deterministic MDPs, bad actions, mean return."""
import warnings

import numpy as np
import pytest

pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env  # noqa: E402

from tabular.generators import chain, garnet, gridworld, river_swim  # noqa: E402
from tabular.gym import TabularEnv  # noqa: E402
from tabular.mdp import TabularMDP  # noqa: E402

LEVEL = 1e-3


def _time_inhomogeneous():
    P = np.zeros((2, 2, 1, 2))
    P[0, :, 0, 1] = 1.0      # step 0: go to state 1
    P[1, :, 0, 0] = 1.0      # step 1: go to state 0
    R = np.array([[[1.0], [2.0]], [[3.0], [4.0]]])
    return TabularMDP(P, R, [1.0, 0.0], H=2)


@pytest.mark.parametrize("env", [
    TabularEnv(garnet(5, 3, 2, seed=1), max_episode_steps=20),
    TabularEnv(river_swim(H=6), render_mode="ansi"),
    TabularEnv(gridworld("T...\n....\n....\n...T")),
    TabularEnv(_time_inhomogeneous()),
], ids=["garnet", "riverswim-ansi", "gridworld", "inhomogeneous"])
def test_passes_gymnasium_env_checker(env):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env)
    # The checker always notes that an env built without gymnasium.make has no spec.
    relevant = [w for w in caught if "spec" not in str(w.message)]
    assert relevant == [], [str(w.message) for w in relevant]


def test_deterministic_chain_trajectory():
    env = TabularEnv(chain(4, H=5, gamma=1.0))
    s, info = env.reset(seed=0)
    assert (s, info) == (0, {"h": 0})
    seen = [env.step(1) for _ in range(5)]
    assert [t[0] for t in seen] == [1, 2, 3, 3, 3]
    assert [t[1] for t in seen] == [0.0, 0.0, 0.0, 1.0, 1.0]
    assert [t[3] for t in seen] == [False] * 4 + [True]
    assert not any(t[2] for t in seen) and seen[-1][4] == {"h": 5}
    with pytest.raises(RuntimeError, match="episode has ended"):
        env.step(0)


def test_time_inhomogeneous_dynamics_and_rewards():
    env = TabularEnv(_time_inhomogeneous())
    env.reset(seed=0)
    assert env.step(0)[:4] == (1, 1.0, False, False)    # P_0, R_0[0, 0]
    assert env.step(0)[:4] == (0, 4.0, False, True)     # P_1, R_1[1, 0]


def test_goal_terminates_with_goal_reward():
    env = TabularEnv(gridworld("S.G", goal_reward=10.0))
    env.reset(seed=0)
    assert env.step(1)[:4] == (1, -1.0, False, False)
    assert env.step(1)[:4] == (2, 9.0, True, False)
    assert env.render() is None


def test_invalid_actions_and_order():
    env = TabularEnv(river_swim(), max_episode_steps=3)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=1)
    for bad in (2, -1, 0.5, "left"):
        with pytest.raises(ValueError, match=r"is not in Discrete\(2\)"):
            env.step(bad)
    with pytest.raises(ValueError, match="render_mode"):
        TabularEnv(river_swim(), render_mode="human")
    with pytest.raises(ValueError, match="max_episode_steps"):
        TabularEnv(river_swim(), max_episode_steps=0)
    for flag in (True, np.bool_(True)):
        with pytest.raises(TypeError, match="max_episode_steps must be an int, got bool"):
            TabularEnv(river_swim(), max_episode_steps=flag)
    with pytest.raises(TypeError, match="max_episode_steps must be an int, got float"):
        TabularEnv(river_swim(), max_episode_steps=2.0)
    assert TabularEnv(river_swim(), max_episode_steps=np.int64(2)).max_episode_steps == 2
    with pytest.raises(TypeError, match="TabularMDP"):
        TabularEnv("riverswim")


def test_same_seed_same_trajectory():
    def rollout(seed):
        env = TabularEnv(garnet(6, 2, 3, seed=5), max_episode_steps=30)
        s, _ = env.reset(seed=seed)
        traj = [int(s)]
        for t in range(30):
            traj.append(int(env.step(t % 2)[0]))
        return traj

    assert rollout(7) == rollout(7) and rollout(7) != rollout(8)


def two_state_mdp(p_stay_good):
    """Action 0 moves to state 1 (reward 1) w.p. p from either state; H = 3, start in state 0."""
    P = np.zeros((2, 1, 2))
    P[:, 0] = [1.0 - p_stay_good, p_stay_good]
    R = np.array([[0.0], [1.0]])
    return TabularMDP(P, R, [1.0, 0.0], H=3)


def mean_return_agrees(env, V, n, seed):
    """Hoeffding test at LEVEL: returns lie in [0, H]; |mean - V| <= H sqrt(log(2/LEVEL) / (2n))."""
    H = env.mdp.H
    returns = np.empty(n)
    env.reset(seed=seed)
    for i in range(n):
        env.reset()
        total, done = 0.0, False
        while not done:
            _, r, terminated, truncated, _ = env.step(0)
            total += r
            done = terminated or truncated
        returns[i] = total
    return abs(returns.mean() - V) <= H * np.sqrt(np.log(2 / LEVEL) / (2 * n))


def test_mean_return_matches_closed_form():
    # V = sum_h Pr(s_h = 1) = 0 + p + p = 2p in closed form (rows do not depend on the state).
    assert mean_return_agrees(TabularEnv(two_state_mdp(0.7)), V=1.4, n=3000, seed=11)


def test_mean_return_check_catches_planted_error():
    # A simulator with the wrong transition probability (0.5 instead of 0.7) is rejected.
    assert not mean_return_agrees(TabularEnv(two_state_mdp(0.5)), V=1.4, n=3000, seed=11)
