"""Theorem statements as data: a stated bound as a sympy expression with its source and assumptions."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Mapping

import numpy as np
import sympy

STATUSES = ("verified", "recalled", "derived", "not verified")
KINDS = ("upper", "lower", "identity")


@dataclass(frozen=True)
class Source:
    """Where a stated guarantee comes from, and how sure we are of its wording.

    Parameters
    ----------
    paper : str
        Authors and title, e.g. ``"Rashidinejad, Zhu, Ma, Jiao, Russell: Bridging ..."``.
    year : int
        Publication year.
    locator : str
        Theorem, equation or section inside the paper.
    venue : str
        Conference, journal or preprint server.
    status : str
        One of ``"verified"`` (checked against the paper's record), ``"recalled"`` (from
        memory, not re-checked), ``"derived"`` (derived by us, not stated by the paper) or
        ``"not verified"`` (a standard formulation offered without a check).

    Raises
    ------
    ValueError
        If ``status`` is not one of the four values, or a text field is empty.
    TypeError
        If ``year`` is not an int.
    """

    paper: str
    year: int
    locator: str
    venue: str
    status: str

    def __post_init__(self):
        for name in ("paper", "locator", "venue"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name).strip():
                raise ValueError(f"Source.{name} must be a non-empty string, got {getattr(self, name)!r}")
        if isinstance(self.year, bool) or not isinstance(self.year, (int, np.integer)):
            raise TypeError(f"Source.year must be an int, got {type(self.year).__name__}")
        if self.status not in STATUSES:
            raise ValueError(f"Source.status must be one of {STATUSES}, got {self.status!r}")

    def __str__(self) -> str:
        return f"{self.paper} ({self.venue} {self.year}), {self.locator} [{self.status}]"


@dataclass(frozen=True)
class Bound:
    """One stated guarantee: ``quantity <= expr`` (upper), ``>= expr`` (lower) or ``= expr``.

    Parameters
    ----------
    name : str
        Identifier, e.g. ``"LCB_MAB_UPPER"``.
    expr : sympy expression
        The bound, in the paper's symbols; an unspecified absolute constant appears as a
        symbol named by ``constant``.
    symbols : mapping str -> sympy.Symbol
        Every symbol that ``expr`` (and ``delta``) may contain, keyed by its name.
    source : Source
        Paper, locator and verification status.
    assumptions : tuple of str
        Conditions under which the statement holds, in words.
    delta : float, sympy expression or None
        Failure probability of a high-probability statement (the bound holds with
        probability at least ``1 - delta``); None for bounds in expectation, identities and
        bounds on a probability.
    kind : {"upper", "lower", "identity"}
    quantity : str
        What is bounded, e.g. ``"expected sub-optimality E[J(pi*) - J(pi_hat)]"``.
    constant : str or None
        Name of the symbol standing for an absolute constant the paper leaves unspecified.

    Raises
    ------
    ValueError
        On an unknown ``kind``, a free symbol of ``expr`` or ``delta`` missing from
        ``symbols``, a ``constant`` that is not a symbol name, a numeric ``delta`` outside
        (0, 1), or an empty name or quantity.
    TypeError
        If ``expr`` is not a sympy expression, a value of ``symbols`` is not a sympy Symbol,
        or ``source`` is not a :class:`Source`.
    """

    name: str
    expr: sympy.Expr
    symbols: Mapping[str, sympy.Symbol] = field(hash=False)
    source: Source
    assumptions: tuple = ()
    delta: object = None
    kind: str = "upper"
    quantity: str = ""
    constant: str | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"Bound.name must be a non-empty string, got {self.name!r}")
        if not isinstance(self.expr, sympy.Expr):
            raise TypeError(f"Bound {self.name}: expr must be a sympy expression, got {type(self.expr).__name__}")
        symbols = dict(self.symbols)
        for key, sym in symbols.items():
            if not isinstance(sym, sympy.Symbol):
                raise TypeError(f"Bound {self.name}: symbols[{key!r}] must be a sympy Symbol, got {type(sym).__name__}")
            if sym.name != key:
                raise ValueError(f"Bound {self.name}: symbols[{key!r}] is the symbol {sym.name!r}; keys must be symbol names")
        object.__setattr__(self, "symbols", symbols)
        self._check_free_symbols(self.expr, "expr")
        if not isinstance(self.source, Source):
            raise TypeError(f"Bound {self.name}: source must be a Source, got {type(self.source).__name__}")
        assumptions = tuple(self.assumptions)
        if not all(isinstance(a, str) for a in assumptions):
            raise TypeError(f"Bound {self.name}: assumptions must be strings")
        object.__setattr__(self, "assumptions", assumptions)
        self._check_delta()
        if self.kind not in KINDS:
            raise ValueError(f"Bound {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.quantity, str) or not self.quantity.strip():
            raise ValueError(f"Bound {self.name}: quantity must say what is bounded, got {self.quantity!r}")
        if self.constant is not None and self.constant not in symbols:
            raise ValueError(f"Bound {self.name}: constant {self.constant!r} is not one of the symbols {sorted(symbols)}")

    def _check_free_symbols(self, expr, what):
        missing = sorted(s.name for s in expr.free_symbols if self.symbols.get(s.name) != s)
        if missing:
            raise ValueError(
                f"Bound {self.name}: {what} uses symbols {missing} that are not in symbols "
                f"(with the same assumptions); known: {sorted(self.symbols)}"
            )

    def _check_delta(self):
        if self.delta is None:
            return
        if isinstance(self.delta, sympy.Basic) and self.delta.free_symbols:
            self._check_free_symbols(self.delta, "delta")
            return
        value = float(self.delta)
        if not 0.0 < value < 1.0:
            raise ValueError(f"Bound {self.name}: delta must lie in (0, 1), got {self.delta}")

    # -- helpers --------------------------------------------------------------------------

    def _symbol(self, sym) -> sympy.Symbol:
        name = sym.name if isinstance(sym, sympy.Symbol) else sym
        if name not in self.symbols:
            raise ValueError(f"Bound {self.name}: unknown symbol {name!r}; known: {sorted(self.symbols)}")
        return self.symbols[name]

    def _check_names(self, values) -> None:
        unknown = sorted(set(values) - set(self.symbols))
        if unknown:
            raise ValueError(f"Bound {self.name}: unknown symbols {unknown}; known: {sorted(self.symbols)}")

    def _subs(self, values) -> dict:
        self._check_names(values)
        return {self.symbols[k]: sympy.sympify(v) for k, v in values.items()}

    # -- public API -----------------------------------------------------------------------

    def evaluate(self, **values) -> np.ndarray:
        """Evaluate the bound numerically (numpy broadcasting over array values).

        Parameters
        ----------
        **values : float or array_like
            A value for every free symbol of ``expr`` (symbols that do not appear are
            accepted and only take part in broadcasting).

        Returns
        -------
        numpy.ndarray of float64
            Shape: the broadcast shape of the given values (0-d for scalars).

        Raises
        ------
        ValueError
            If a symbol of ``expr`` has no value (the message names it) or a name is not a
            symbol of this bound.
        """
        self._check_names(values)
        free = sorted(self.expr.free_symbols, key=lambda s: s.name)
        missing = [s.name for s in free if s.name not in values]
        if missing:
            raise ValueError(f"Bound {self.name}: no value given for symbols {missing}")
        arrays = {k: np.asarray(v, dtype=float) for k, v in values.items()}
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values())) if arrays else ()
        f = sympy.lambdify(free, self.expr, modules="numpy")
        out = np.asarray(f(*(arrays[s.name] for s in free)), dtype=float)
        return np.broadcast_to(out, shape).copy()

    def rate(self, sym, to=sympy.oo, **values):
        """Asymptotic log-log slope: ``lim_{sym -> to} d log f / d log sym``.

        Log factors vanish in the limit (``sqrt(C log(2 nA N) / N)`` has rate -1/2 in N).
        Exponential decay ``exp(-N k)`` has rate ``-oo`` when the sign of ``k`` is known
        (positive symbols, or numbers given in ``values``); otherwise sympy returns an
        expression such as ``-oo*sign(k)``.

        Parameters
        ----------
        sym : str or sympy.Symbol
            The symbol of this bound to vary.
        to : sympy number, default ``sympy.oo``
            The limit point, e.g. ``0`` for ``epsilon -> 0`` (approached from above).
        **values : number or sympy expression
            Values for other symbols; the rest stay symbolic.

        Returns
        -------
        sympy expression
            Usually a rational number such as ``-1/2``.

        Raises
        ------
        ValueError
            If ``sym`` or a name in ``values`` is not a symbol of this bound, or ``sym`` is
            given a value.
        """
        s = self._symbol(sym)
        if s.name in values:
            raise ValueError(f"Bound {self.name}: cannot both vary {s.name!r} and fix it")
        f = self.expr.subs(self._subs(values))
        elasticity = sympy.diff(sympy.log(f), s) * s
        return sympy.simplify(sympy.limit(elasticity, s, to))

    def local_slope(self, sym, grid, **values) -> float:
        """Least-squares slope of ``log f`` on ``log sym`` over ``grid`` (log factors kept).

        This is the slope a log-log fit of data that follow the bound exactly would show on
        the same grid; compare fitted slopes with it, not with :meth:`rate`, when log
        factors matter (``sqrt(log(4 N) / N)`` on N in {1e2, ..., 1e5} gives about -0.445).

        Parameters
        ----------
        sym : str or sympy.Symbol
        grid : array_like, shape (n,)
            Positive values of ``sym``, at least 2 distinct.
        **values : float
            Scalar values for every other free symbol of ``expr``.

        Returns
        -------
        float

        Raises
        ------
        ValueError
            If the grid is not 1-d, finite and positive with at least 2 distinct points, if
            a value is missing, or if f is not positive and finite on the grid.
        """
        s = self._symbol(sym)
        if s.name in values:
            raise ValueError(f"Bound {self.name}: cannot both vary {s.name!r} and fix it")
        grid = np.asarray(grid, dtype=float)
        if grid.ndim != 1 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
            raise ValueError(f"Bound {self.name}: grid of {s.name} must be 1-d, finite and positive, got {grid}")
        if np.unique(grid).size < 2:
            raise ValueError(f"Bound {self.name}: grid of {s.name} needs at least 2 distinct points, got {grid}")
        f = self.evaluate(**values, **{s.name: grid})
        if f.shape != grid.shape:
            raise ValueError(f"Bound {self.name}: values must be scalars; f has shape {f.shape}, grid {grid.shape}")
        bad = ~(np.isfinite(f) & (f > 0))
        if np.any(bad):
            raise ValueError(
                f"Bound {self.name}: f must be positive and finite on the grid; "
                f"f({s.name}={grid[bad][0]:g}) = {f[bad][0]:g}"
            )
        u = np.log(grid) - np.log(grid).mean()
        return float(np.dot(u, np.log(f)) / np.dot(u, u))

    def substitute(self, **values) -> "Bound":
        """Partial evaluation: the same bound with some symbols replaced by values.

        The substituted symbols leave ``symbols``; ``constant`` becomes None when it is
        substituted; ``delta`` is substituted too.

        Raises
        ------
        ValueError
            If a name is not a symbol of this bound.
        """
        subs = self._subs(values)
        delta = self.delta.subs(subs) if isinstance(self.delta, sympy.Basic) else self.delta
        return replace(
            self,
            expr=sympy.sympify(self.expr.subs(subs)),
            symbols={k: v for k, v in self.symbols.items() if k not in values},
            delta=delta,
            constant=None if self.constant in values else self.constant,
        )

    def __str__(self) -> str:
        relation = {"upper": "<=", "lower": ">=", "identity": "="}[self.kind]
        probability = "" if self.delta is None else f" with probability >= 1 - {self.delta}"
        return f"{self.name}: {self.quantity} {relation} {self.expr}{probability} [{self.source}]"
