"""Delivery channels: one module per provider, all behind the Protocol in base.py."""
