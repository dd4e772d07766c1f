"""Judging open-ended answers with a model (``assay run --judge MODEL``).

Stored answers → judge prompts (``prompts``) → judge requests, stored and cached like any
other (``build``) → verdicts parsed from the judge's replies (``verdicts``) → per-task judge
scores, pairwise win rates and ratings (``results``, with ``scoring.ratings``).
"""
