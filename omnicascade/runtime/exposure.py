"""Development defaults must not travel: an API that others can reach gets the production
rules for its secrets, whatever OMNICASCADE_ENV says.

- Bound to a loopback address (127.0.0.1, ::1, localhost) in development: secrets may be
  generated into the state directory; one set in the environment that production would
  refuse (a placeholder, or shorter than MIN_SECRET_LENGTH = 16 characters — e.g. a
  one-character console password) starts with a loud warning on stderr.
- Bound to any other address in development (reachable by other machines): every secret —
  the webhook secret, the API token, the console password — must come from the
  environment and pass the production rule (config.looks_like_placeholder); otherwise the
  command refuses to start and says which variables to set. A generated secret is refused
  too: it sits in a state directory that may travel with the machine or the image.
- Production already refuses placeholders when the settings are read (config.py).
"""

from __future__ import annotations

import sys

from omnicascade.config import MIN_SECRET_LENGTH, SECRETS, Settings, looks_like_placeholder
from omnicascade.config.check import is_loopback
from omnicascade.errors import ConfigError

__all__ = ["check_exposure", "is_loopback"]


def check_exposure(settings: Settings) -> None:
    """Refuse (ConfigError) a development API on a reachable address with generated or weak
    secrets; warn on stderr about weak ones on loopback. `settings.api_host` is the address
    the API is about to bind."""
    if settings.env != "development":
        return
    weak = [variable for field, (variable, _, _) in SECRETS.items()
            if looks_like_placeholder(getattr(settings, field))]
    if not weak:
        return
    if not is_loopback(settings.api_host):
        raise ConfigError(
            f"the API would listen on {settings.api_host}, reachable from other machines, "
            f"with development secrets: set {', '.join(weak)} to real secrets "
            f"({MIN_SECRET_LENGTH}+ random characters each, e.g. `openssl rand -hex 32`; "
            f"a generated one in the state directory is not enough), or listen on this "
            f"machine only (--host 127.0.0.1)")
    short = [variable for field, (variable, _, _) in SECRETS.items()
             if getattr(settings, field) is not None
             and looks_like_placeholder(getattr(settings, field))]
    if short:
        print(f"WARNING: {', '.join(short)} {'is' if len(short) == 1 else 'are'} weak "
              f"(a placeholder or under {MIN_SECRET_LENGTH} characters): acceptable on this "
              f"machine only; production and any other --host refuse to start with "
              f"{'it' if len(short) == 1 else 'them'}.", file=sys.stderr, flush=True)
