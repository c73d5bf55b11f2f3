"""Shared plotting style: one colour and marker per algorithm across all figures."""

POLICY_STYLE = {
    "lcb": {"label": "LCB (pessimism)", "line": {"color": "C0", "marker": "o", "ls": "-"}},
    "greedy": {"label": "greedy (empirical best)", "line": {"color": "C1", "marker": "s", "ls": "--"}},
    "mpa": {"label": "most-played arm (imitation)", "line": {"color": "C2", "marker": "^", "ls": "-."}},
}
