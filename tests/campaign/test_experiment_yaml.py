"""`experiment.winner`, `experiment.allocation` and `transactional` in the campaign YAML
(issue 28): read as written, kept through the launch snapshot, and every mistake named by
file, line and column."""

from __future__ import annotations

import pytest

from omnicascade.campaign.load import load_campaign, spec_from_snapshot
from tests.campaign.test_spec import line_of, only_problem
from tests.helpers.campaigns import CASCADE_YAML, write_campaign

BLOCK = """\
transactional: true
experiment:
  holdout: 10%
  variants:
    control: {{weight: 50}}
    sms_first:
      weight: 50
      steps: [{{channel: sms, template: t_sms, wait: 1h}}]
  winner:
    metric: {metric}
    confidence: {confidence}
    min_per_variant: 200
    max_duration: 14d
  allocation: {allocation}
  floor: {floor}
  update_every: 1h
"""


def _yaml(metric: str = "conversion_rate", confidence: str = "95%",
          allocation: str = "fixed", floor: str = "10%") -> str:
    return CASCADE_YAML + BLOCK.format(metric=metric, confidence=confidence,
                                       allocation=allocation, floor=floor)


def test_the_full_block_is_read_and_survives_the_snapshot(tmp_path):
    loaded = load_campaign(write_campaign(tmp_path, _yaml(allocation="bandit")))
    for spec in (loaded.spec, spec_from_snapshot(loaded.snapshot())):
        assert spec.transactional is True
        e = spec.experiment
        assert e is not None and e.winner is not None
        assert (e.winner.metric, e.winner.confidence, e.winner.min_per_variant,
                e.winner.max_duration) == ("conversion_rate", 0.95, 200, 14 * 86400)
        assert (e.allocation, e.floor, e.update_every) == ("bandit", 10.0, 3600)


@pytest.mark.parametrize(("kwargs", "needle", "words"), [
    ({"metric": "clicks"}, "metric:", "conversion_rate"),
    ({"confidence": "120%"}, "confidence:", "below 100%"),
    ({"allocation": "greedy"}, "allocation:", "fixed"),
    ({"floor": "60%", "allocation": "bandit"}, "variants:", "floor × variants"),
])
def test_mistakes_are_named_by_line(tmp_path, kwargs, needle, words):
    text = _yaml(**kwargs)
    p = only_problem(write_campaign(tmp_path, text))
    assert words in p.message
    if needle != "variants:":
        assert p.line == line_of(text, needle) and p.col is not None
