"""Verdicts read from a judge's reply; a reply without one is ``None`` (counted, never
dropped). The last verdict form in the reply counts (a judge may quote the forms first)."""

from __future__ import annotations

import re

_RATING = re.compile(r"\[\[\s*(10|[1-9])(?:\.\d+)?\s*\]\]")
_RATING_LOOSE = re.compile(r"rating\s*[:=]\s*(10|[1-9])\b", re.I)
_PASS = re.compile(r"\[\[\s*(PASS|FAIL)\s*\]\]", re.I)
_PAIR = re.compile(r"\[\[\s*([ABC])\s*\]\]")


def single(reply: str, scale: str) -> float | None:
    """A rating 1–10, or 1.0 (pass) / 0.0 (fail)."""
    if scale == "pass/fail":
        found = _PASS.findall(reply)
        return None if not found else 1.0 if found[-1].upper() == "PASS" else 0.0
    found = _RATING.findall(reply) or _RATING_LOOSE.findall(reply)
    return float(found[-1]) if found else None


def pairwise(reply: str) -> float | None:
    """From the first-shown answer's side: 1.0 (A better), 0.5 (tie), 0.0 (B better)."""
    found = _PAIR.findall(reply)
    return None if not found else {"A": 1.0, "C": 0.5, "B": 0.0}[found[-1]]
