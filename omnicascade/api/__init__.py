"""HTTP API for the shop's backend: customers, trigger events, conversions, webhooks."""
