"""Deterministic, stable variant assignment.

A customer's bucket is a hash of (campaign, customer id) into 10,000 buckets, so the same
customer lands in the same variant on every launch, retry and re-computation. The first
`holdout` share of buckets is the holdout; the rest is split by variant weight in the
order the variants are written.
"""

from __future__ import annotations

import hashlib

from omnicascade.spec import CampaignSpec

BUCKETS = 10_000
HOLDOUT = "holdout"
DEFAULT = "default"


def bucket(campaign: str, customer_id: str) -> int:
    digest = hashlib.sha256(f"{campaign}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign_variant(spec: CampaignSpec, customer_id: str) -> str:
    experiment = spec.experiment
    if experiment is None:
        return DEFAULT
    b = bucket(spec.campaign, customer_id)
    holdout_buckets = round(experiment.holdout * BUCKETS / 100)
    if b < holdout_buckets:
        return HOLDOUT
    position = (b - holdout_buckets) / (BUCKETS - holdout_buckets)  # in [0, 1)
    total = sum(v.weight for v in experiment.variants.values())
    edge = 0.0
    names = list(experiment.variants)
    for name in names:
        edge += experiment.variants[name].weight / total
        if position < edge:
            return name
    return names[-1]
