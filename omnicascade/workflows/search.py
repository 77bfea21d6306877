"""Custom search attributes that make cascades findable in the Temporal Web UI."""

from temporalio.common import SearchAttributeKey

CAMPAIGN = SearchAttributeKey.for_keyword("OmnicascadeCampaign")
RUN = SearchAttributeKey.for_keyword("OmnicascadeRun")
CUSTOMER = SearchAttributeKey.for_keyword("OmnicascadeCustomer")
STATUS = SearchAttributeKey.for_keyword("OmnicascadeStatus")
ALL = (CAMPAIGN, RUN, CUSTOMER, STATUS)


def workflow_id(enrollment_id: str) -> str:
    """Opaque and deterministic: a retried start can never create a second cascade."""
    return f"cascade-{enrollment_id}"
