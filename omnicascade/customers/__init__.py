"""Customers: the customer model and import, consent and suppression, quiet hours, signed links."""
