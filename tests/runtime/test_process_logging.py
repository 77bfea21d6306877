"""Long-running processes (server, worker, api) log with timestamps, and never the URLs the
HTTP client libraries log at INFO (Telegram's carry the bot token)."""

import subprocess
import sys

SCRIPT = """
import logging
from omnicascade.runtime.deploy import configure_logging
configure_logging()
logging.getLogger("omnicascade.cascade.reconcile").info("reconciler: started 3 pending cascades")
logging.getLogger("httpx").info("HTTP Request: POST https://api.telegram.org/bot123:SECRET/x")
logging.getLogger("twilio.http_client").info("-- BEGIN Twilio API Request --")
logging.getLogger("httpx").warning("connection pool is full")
"""


def test_our_info_lines_are_logged_and_http_client_urls_are_not():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert " INFO omnicascade.cascade.reconcile: reconciler: started 3 pending cascades" in r.stderr
    assert "SECRET" not in r.stderr and "Twilio API Request" not in r.stderr
    assert "WARNING httpx: connection pool is full" in r.stderr  # real problems still show


def test_worker_and_api_processes_do_not_load_the_statistics_stack():
    """numpy/scipy/statsmodels cost ~100 MB per process: only a report needs them, so the
    worker and the API import them when one is asked for, never at start."""
    code = ("import sys, omnicascade.runtime.deploy, omnicascade.runtime.server; "
            "print(sorted(m for m in ('numpy', 'scipy', 'statsmodels', 'pandas') "
            "if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
