"""Named claims: what a figure or a check asserts, with its kind and source.

A claim groups the stated bounds and empirical findings that one figure reproduces. Its
``name``, ``statement`` and ``source`` are plain strings, mirrored in
``figures/registry.py`` so that ``boundlab list`` answers without importing anything heavy.
"""
from __future__ import annotations

from dataclasses import dataclass, field

KINDS = ("theorem", "identity", "empirical")


@dataclass(frozen=True)
class Claim:
    """A named claim reproduced by one figure.

    Parameters
    ----------
    name : str
        The public name used on the command line (``boundlab check NAME``).
    statement : str
        One line: what is claimed.
    source : str
        Paper, year and theorem or equation number (and how it was checked: verified,
        recalled, derived).
    kind : {"theorem", "identity", "empirical"}
        Theorems and identities are asserted (``check`` exits 1 when the data contradict
        them); empirical claims report "reproduced" or "not reproduced in this toy".
    bounds : tuple
        The ``proofs_check.bounds.Bound`` objects the claim draws on (may be empty).

    Raises
    ------
    ValueError
        If ``kind`` is not one of the three kinds or a string field is empty.
    """

    name: str
    statement: str
    source: str
    kind: str
    bounds: tuple = field(default=())

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Claim.kind must be one of {KINDS}, got {self.kind!r}")
        for attr in ("name", "statement", "source"):
            if not isinstance(getattr(self, attr), str) or not getattr(self, attr).strip():
                raise ValueError(f"Claim.{attr} must be a non-empty string")

    def metadata(self) -> dict:
        """The plain-string metadata mirrored in ``figures/registry.py``."""
        return {"name": self.name, "claim": self.statement, "source": self.source}


def asserted_verdict(claims, reports=()) -> tuple[bool, str]:
    """A figure's verdict from its asserted sub-claims, with empirical reports appended.

    Parameters
    ----------
    claims : sequence of dict
        Asserted sub-claims, each ``{"claim": name, "ok": bool, "text": numbers}``; any
        failure makes the verdict ``False``.
    reports : sequence of dict
        Empirical findings, each ``{"claim": name, "text": ...}``; they never decide.

    Returns
    -------
    (bool, str)
        ``ok`` and the one-line text: "SUPPORTED (all n asserted sub-claims hold). ..." or
        "NOT SUPPORTED (names failed). ...", then "EMPIRICAL: ..." when there are reports.
    """
    failed = [c["claim"] for c in claims if not c["ok"]]
    summary = "; ".join(f"{c['claim']}: {c['text']}" for c in claims)
    empirical = ""
    if reports:
        empirical = " EMPIRICAL: " + "; ".join(f"{r['claim']}: {r['text']}" for r in reports)
    if failed:
        return False, f"NOT SUPPORTED ({', '.join(failed)} failed). {summary}.{empirical}"
    return True, f"SUPPORTED (all {len(claims)} asserted sub-claims hold). {summary}.{empirical}"
