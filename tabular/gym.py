"""A Gymnasium environment (Towers et al. 2024, the gymnasium.Env API) simulating any TabularMDP."""
from __future__ import annotations

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tabular.gym needs gymnasium; install the 'gym' extra (pip install -e \".[gym]\" from a checkout) or gymnasium itself"
    ) from err

from tabular.mdp import TabularMDP, _read_int, _require_mdp

__all__ = ["TabularEnv"]


def _sample(cdf: np.ndarray, u: float) -> int:
    """Inverse-CDF draw from an unnormalised cumulative row; never a zero-mass index."""
    i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
    if i >= cdf.shape[0]:  # u * total rounded up to total
        i = int(np.flatnonzero(np.diff(cdf, prepend=0.0) > 0)[-1])
    return i


class TabularEnv(gymnasium.Env):
    """A ``gymnasium.Env`` over a :class:`~tabular.mdp.TabularMDP`.

    Observations and actions are ``Discrete(S)`` and ``Discrete(A)`` integers. ``reset``
    draws ``s_0 ~ mu0`` with ``self.np_random``; ``step(a)`` at step ``h`` (0-based) draws
    ``s' ~ P_h(h)[s, a]``, returns the reward ``R_h(h)[s, a]`` (the expected reward: the
    MDP stores no reward noise), ``terminated = terminal[s']`` and ``truncated`` when
    ``h + 1`` reaches ``mdp.H`` or ``max_episode_steps``. ``info = {"h": h}`` holds the
    number of steps taken so far (0 after ``reset``). Discounting is left to the caller.

    Parameters
    ----------
    mdp : TabularMDP
    max_episode_steps : int or None
        Extra truncation limit (useful for discounted MDPs, which never end on their own).
    render_mode : None or "ansi"
        ``"ansi"``: ``render()`` returns a one-line text description of the current step.

    Raises
    ------
    TypeError
        If ``mdp`` is not a TabularMDP, or ``max_episode_steps`` is neither None nor an int
        (bools included).
    ValueError
        For ``max_episode_steps < 1`` or an unsupported ``render_mode``; from ``step``, for
        an action outside ``Discrete(A)``.
    RuntimeError
        From ``step`` before ``reset`` or after the episode ended.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, mdp: TabularMDP, *, max_episode_steps: int | None = None,
                 render_mode: str | None = None):
        _require_mdp(mdp)
        if max_episode_steps is not None:
            max_episode_steps = _read_int(max_episode_steps, "max_episode_steps")
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(
                f"render_mode = {render_mode!r} is not supported; use one of "
                f"{self.metadata['render_modes']} or None"
            )
        self.mdp = mdp
        self.max_episode_steps = max_episode_steps
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(mdp.S)
        self.action_space = spaces.Discrete(mdp.A)
        self._cdf_P = np.cumsum(mdp.P, axis=-1)
        self._cdf_mu0 = np.cumsum(mdp.mu0)
        self._s = None
        self._h = 0
        self._done = True

    def reset(self, *, seed=None, options=None):
        """Start an episode: ``s_0 ~ mu0``. Returns ``(s_0, {"h": 0})``."""
        super().reset(seed=seed)
        self._s = _sample(self._cdf_mu0, self.np_random.random())
        self._h = 0
        self._done = False
        return np.int64(self._s), {"h": 0}

    def step(self, action):
        """Take ``action``; returns ``(s', r, terminated, truncated, {"h": h + 1})``."""
        if self._s is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode has ended (terminated or truncated); call reset()")
        if isinstance(action, (bool, np.bool_)) or not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in Discrete({self.mdp.A})")
        a, s, h = int(action), self._s, self._h
        cdf = self._cdf_P[h, s, a] if self._cdf_P.ndim == 4 else self._cdf_P[s, a]
        reward = float(self.mdp.R_h(h)[s, a])
        s_next = _sample(cdf, self.np_random.random())
        self._s, self._h = s_next, h + 1
        terminated = bool(self.mdp.terminal[s_next])
        truncated = (self.mdp.H is not None and self._h >= self.mdp.H) or (
            self.max_episode_steps is not None and self._h >= self.max_episode_steps
        )
        self._done = terminated or truncated
        return np.int64(s_next), reward, terminated, bool(truncated), {"h": self._h}

    def render(self):
        """``"ansi"``: the text ``"h=<h> s=<s>"``; None without a render mode."""
        if self.render_mode == "ansi":
            return f"h={self._h} s={self._s}"
        return None
