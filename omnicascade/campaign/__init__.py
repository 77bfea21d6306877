"""Campaigns: YAML → validated spec (problems as file:line:col), durations, variants, templates."""
