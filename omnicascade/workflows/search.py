"""Custom search attributes that make cascades findable in the Temporal Web UI."""

from temporalio.common import SearchAttributeKey

CAMPAIGN = SearchAttributeKey.for_keyword("OmnicascadeCampaign")
RUN = SearchAttributeKey.for_keyword("OmnicascadeRun")
CUSTOMER = SearchAttributeKey.for_keyword("OmnicascadeCustomer")
STATUS = SearchAttributeKey.for_keyword("OmnicascadeStatus")
ALL = (CAMPAIGN, RUN, CUSTOMER, STATUS)
