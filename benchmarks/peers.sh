#!/usr/bin/env bash
# Install the peer libraries timed by benchmarks/run.py into their own virtualenv,
# benchmarks/.peers/ (gitignored), never into boundlab's environment.
#   rlberry 0.6.0 (with gymnasium 0.29.1) and pymdptoolbox 4.0b3.
# Older numpy/scipy/numba are pinned here because gymnasium 0.29.1 predates numpy 2.
# numba is installed because rlberry's dynamic-programming utilities are numba-jitted when
# it is present (rlberry's "default" extra) and pure Python otherwise.
# Idempotent: re-running reuses the venv. Usage: bash benchmarks/peers.sh
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="$here/.peers"
python="${PEERS_PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet \
    "numpy==1.26.4" "scipy==1.13.1" "numba==0.60.0" "threadpoolctl==3.5.0" \
    "gymnasium==0.29.1" "rlberry==0.6.0" "pymdptoolbox==4.0b3"
"$venv/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("rlberry", "gymnasium", "pymdptoolbox", "numpy", "scipy", "numba"):
    print(f"{name}=={md.version(name)}")
import mdptoolbox.mdp  # noqa: F401
from rlberry.agents.dynprog.utils import value_iteration  # noqa: F401
print("peers: ok")
PY
