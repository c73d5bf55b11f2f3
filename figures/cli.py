"""The ``boundlab`` command line: list, reproduce and check the library's figures.

Exit codes: 0 the data support the claim, 1 they do not, 2 an error (bad arguments, a
failed run, or an experiment that cannot decide, such as a grid too narrow). For an
empirical claim (a paper's experimental finding, DESIGN.md) 0 and 1 cover its asserted
sub-claims only; whether the paper's effect showed in the toy is in the printed verdict.
"""
from __future__ import annotations

import argparse
import json
import sys

EXIT_SUPPORTED, EXIT_NOT_SUPPORTED, EXIT_ERROR = 0, 1, 2
EMPIRICAL_NOTE = ("[empirical claim: the exit code covers its asserted sub-claims only; "
                  "whether the paper's effect showed in this toy is stated below]")


def _parse_value(text: str):
    """A ``--set`` value: JSON (numbers, true/false, lists such as [100, 1000]) or a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _overrides(pairs) -> dict:
    overrides = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects KEY=VALUE, got {pair!r}")
        overrides[key.strip()] = _parse_value(value.strip())
    return overrides


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="boundlab",
        description="Check reinforcement-learning theory by simulation.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="the figures and checks, with their claims and sources")
    for command, default, help_text in (
        ("reproduce", "quick", "run a figure: plot (PNG, PDF), raw results and verdict"),
        ("check", "quick", "run a claim's statistical checks and print the verdict"),
    ):
        p = sub.add_parser(command, help=help_text)
        p.add_argument("name", help="figure name, e.g. lcb-bandit (see `boundlab list`)")
        p.add_argument("--config", default=default, choices=("smoke", "quick", "paper"))
        p.add_argument("--seed", type=int, default=0, help="root seed (non-negative int)")
        p.add_argument("--jobs", type=int, default=1, help="parallel workers (results do not depend on it)")
        p.add_argument("--out", default=None,
                       help="output folder (default results/NAME/CONFIG; finished runs there are reused)")
        p.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a configuration key, e.g. --set bonus_scale=0.5")
        p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _list() -> int:
    from figures.registry import FIGURES

    for name, entry in FIGURES.items():
        print(f"{name}\n    claim:  {entry['claim']}\n    source: {entry['source']}")
    return EXIT_SUPPORTED


def _run(args) -> int:
    from pathlib import Path

    from figures.runner import reproduce

    out = Path(args.out) if args.out else Path("results") / args.name / args.config
    result = reproduce(
        args.name, args.config, seed=args.seed, jobs=args.jobs, out=out,
        overrides=_overrides(args.set), progress=not args.no_progress,
        draw=args.command == "reproduce",
    )
    if result.kind == "empirical":
        print(EMPIRICAL_NOTE)
    print(result.text)
    if args.command == "reproduce":
        print(f"wrote {out}/{result.name}.png, .pdf, results.npz, results.json, verdict.txt")
    if result.n_loaded:
        print(f"reused {result.n_loaded} finished run(s) from {out}/runs")
    if result.ok is None:
        return EXIT_ERROR
    return EXIT_SUPPORTED if result.ok else EXIT_NOT_SUPPORTED


def main(argv=None) -> int:
    """Entry point of the ``boundlab`` console script; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return _list()
        return _run(args)
    except KeyboardInterrupt:
        print("boundlab: interrupted; finished runs are kept in the output folder's runs/ "
              "and reused when the same command is run again", file=sys.stderr)
        return 130
    except Exception as error:  # any failure is exit 2, never mistaken for "not supported"
        print(f"boundlab: error: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
