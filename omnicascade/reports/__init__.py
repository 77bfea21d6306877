"""Reports: run summaries and funnels (views.py)."""
