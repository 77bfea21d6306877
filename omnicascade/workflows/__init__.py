"""Deterministic orchestration only: no I/O, no SQLAlchemy, no provider SDKs."""
