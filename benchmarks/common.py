"""What the benchmark scripts share: reading a list of seeds from the command line."""
from __future__ import annotations


def parse_seeds(text: str) -> list[int]:
    """``"0-19"`` or ``"0,3,7"`` as a list of seeds."""
    if "-" in text:
        lo, hi = text.split("-")
        return list(range(int(lo), int(hi) + 1))
    return [int(s) for s in text.split(",")]
