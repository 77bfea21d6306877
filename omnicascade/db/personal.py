"""Where a person is stored: the one list of tables (and their columns) that hold a customer
or what identifies them. An erasure (cascade/erasure.py) removes or anonymises each of
these tables' rows of the person, an export (reports/export_person.py) hands each back to
them, and tests/db/test_personal.py fails when a new table with a customer-looking column
is in neither PERSON_TABLES nor NOT_PERSONAL — so a new table cannot be forgotten by both.
"""

from __future__ import annotations

# table → the columns that hold the person (their id, an address, or what they did/said).
PERSON_TABLES: dict[str, tuple[str, ...]] = {
    "customers": ("id", "email", "phone", "telegram_chat_id", "push_token", "timezone",
                  "locale", "attributes", "consents"),
    "enrollments": ("customer_id", "entry_key", "match_key", "event_data", "promo_code"),
    "deliveries": ("customer_id", "to_address", "reason"),
    # found through the person's deliveries, or (inbound messages) through their numbers
    "delivery_events": ("address", "data"),
    "outbox_messages": ("customer_id", "to_address", "subject", "title", "body", "html"),
    "conversions": ("customer_id", "order_id", "data"),
    "events": ("customer_id", "data"),
    "telegram_links": ("customer_id", "chat_id"),
    "suppressions": ("address",),  # found through the person's addresses
}

# Tables with a column that looks personal but holds nobody, and why.
NOT_PERSONAL: dict[str, str] = {
    "login_attempts": "address is a SHA-256 of a console client's IP address, no customer",
    "erased_subjects": "keyed hashes (HMAC) of an erased person's id and addresses: the "
                       "suppression that keeps them out, unreadable without the key",
    "erasures": "the audit of erasures: counts per table, never whom",
    "request_signatures": "hashes of API request signatures, no customer",
    "console_sessions": "keyed hashes of console session tokens, no customer",
}

# Column names that, in any table, mean "this may hold a person" (the test's net).
PERSON_COLUMN_NAMES = frozenset({
    "customer_id", "address", "to_address", "email", "phone", "chat_id", "telegram_chat_id",
    "push_token", "order_id", "attributes", "event_data", "data", "body", "subject"})

# Channels whose inbound messages store the sender in delivery_events.address, as
# "<channel>:<address>" (cascade/conversations.py).
INBOUND_CHANNELS = ("sms", "whatsapp", "telegram")
