"""The catalogue of what the papers state: one module per paper, each with its Bounds and a ``CLAIMS`` dict."""
from proofs_check.theorems import lcb_pessimism

__all__ = ["lcb_pessimism"]
