"""The metrics measured where a cascade ends converted (cascade/lifecycle.py:finish): the
conversion-to-stop latency, from the conversion's `recorded_at`, and the count of cascade
messages that went to a provider after it — which must stay 0, and moves when one did."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from omnicascade.cascade import lifecycle
from omnicascade.clock import now_utc
from omnicascade.db.models import ConversionEvent, Delivery
from omnicascade.db.session import session_scope
from omnicascade.vocabulary import EnrollmentStatus
from tests.helpers.campaigns import write_campaign
from tests.helpers.cascades import add_customers, enroll

pytestmark = pytest.mark.db


def sample(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def ends_converted(settings, tmp_path, customer: str, sent_after_s: float) -> None:  # noqa: ANN001
    add_customers(settings, {"id": customer, "email": f"{customer}@example.com"})
    _, rows = await enroll(None, settings, write_campaign(tmp_path / customer), [customer],  # type: ignore[arg-type]
                           start=False)
    e = rows[0]
    recorded = now_utc() - timedelta(seconds=5)
    with session_scope(settings.db_url) as s:
        s.add(ConversionEvent(event_id=f"order-{customer}", type="order_placed",
                              customer_id=customer, occurred_at=recorded,
                              recorded_at=recorded))
        s.add(Delivery(id=f"{e.id}:0", enrollment_id=e.id, run_id=e.run_id,
                       customer_id=customer, step_key="0", step_index=0, phase="cascade",
                       channel="email", template="t_email", status="sent",
                       sending_at=recorded + timedelta(seconds=sent_after_s)))
    with session_scope(settings.db_url) as s:
        assert lifecycle.finish(e.id, EnrollmentStatus.CONVERTED, session=s,
                                conversion_event_id=f"order-{customer}")


async def test_conversion_to_stop_is_measured_and_a_send_before_it_is_not_late(settings,
                                                                             tmp_path):
    count, total = (sample("omnicascade_conversion_to_stop_seconds_count"),
                    sample("omnicascade_conversion_to_stop_seconds_sum"))
    late = sample("omnicascade_sends_after_conversion_total")
    await ends_converted(settings, tmp_path, "early", sent_after_s=-1)
    assert sample("omnicascade_conversion_to_stop_seconds_count") == count + 1
    assert 4 <= sample("omnicascade_conversion_to_stop_seconds_sum") - total < 60
    assert sample("omnicascade_sends_after_conversion_total") == late


async def test_a_send_after_the_conversion_is_counted(settings, tmp_path):
    late = sample("omnicascade_sends_after_conversion_total")
    await ends_converted(settings, tmp_path, "late", sent_after_s=1)
    assert sample("omnicascade_sends_after_conversion_total") == late + 1
