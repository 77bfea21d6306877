"""Processes: the worker, the embedded server, the scaled deployment pieces, the demo."""
