"""Experiment variants: who is in which, and what each variant sends.

A customer's bucket is a hash of (campaign, customer id) into 10,000 buckets, so the same
customer lands in the same variant on every launch, retry and re-computation. The first
`holdout` share of buckets is the holdout; the rest is split by variant weight in the
order the variants are written.
"""

from __future__ import annotations

import hashlib

from omnicascade.campaign.model import CampaignSpec, Order, Promo, Step
from omnicascade.vocabulary import DEFAULT_VARIANT, HOLDOUT

BUCKETS = 10_000


def bucket(campaign: str, customer_id: str) -> int:
    digest = hashlib.sha256(f"{campaign}\x1f{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign_variant(spec: CampaignSpec, customer_id: str) -> str:
    experiment = spec.experiment
    if experiment is None:
        return DEFAULT_VARIANT
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


def variant_names(spec: CampaignSpec) -> list[str]:
    """Every variant a customer can be assigned to (the holdout not included)."""
    return list(spec.experiment.variants) if spec.experiment else [DEFAULT_VARIANT]


def variant_steps(spec: CampaignSpec, variant: str) -> list[Step]:
    if spec.experiment and variant in spec.experiment.variants:
        return list(spec.experiment.variants[variant].steps or spec.steps)
    return list(spec.steps)


def variant_order(spec: CampaignSpec, variant: str) -> Order:
    if spec.experiment and variant in spec.experiment.variants:
        return spec.experiment.variants[variant].order or spec.order
    return spec.order


def variant_promo(spec: CampaignSpec, variant: str) -> Promo | None:
    if variant == HOLDOUT:
        return None  # the holdout gets no messages, so no code either
    if spec.experiment and variant in spec.experiment.variants:
        return spec.experiment.variants[variant].promo or spec.promo
    return spec.promo


def step_lists(spec: CampaignSpec) -> dict[str, list[Step]]:
    """Every distinct list of steps the campaign can send: the campaign's own (key "") and
    each variant's override."""
    lists = {"": list(spec.steps)}
    if spec.experiment:
        for name, variant in spec.experiment.variants.items():
            if variant.steps:
                lists[name] = list(variant.steps)
    return lists
