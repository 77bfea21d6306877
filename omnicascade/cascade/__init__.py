"""Cascades: enroll, launch, events, conversions, feedback, reconcile, preview, and the one
gateway to Temporal (temporal.py)."""
