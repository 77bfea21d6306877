"""Application database: models, sessions, migrations and repository functions."""
