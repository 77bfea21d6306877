"""Settings: one class, environment variables OMNICASCADE_*, optional .env file.

The embedded default needs no configuration at all. Anything that points at shared
infrastructure (Temporal cluster, PostgreSQL) or holds a secret comes from here, and only
from here: nothing else reads the environment or .env (tests/test_layout.py). Channels and
providers: config/channels.py and config/providers.py; `config check`: config/check.py.
"""

from __future__ import annotations

import json
import os
import secrets
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from omnicascade.config.channels import ChannelSettings
from omnicascade.config.money import COST_PLACES, CURRENCY, parse_fx_rates
from omnicascade.errors import ConfigError

PLACEHOLDER_SECRETS = {"", "changeme", "change-me", "secret", "dev", "test", "placeholder", "xxx"}
MIN_SECRET_LENGTH = 16


def looks_like_placeholder(value: str | None) -> bool:
    """The one rule for secrets outside development: set, not a well-known placeholder,
    and at least MIN_SECRET_LENGTH characters."""
    if value is None:
        return True
    text = value.strip()
    return (text.lower() in PLACEHOLDER_SECRETS or "changeme" in text.lower()
            or len(text) < MIN_SECRET_LENGTH)


# Secrets generated into a state dir never change while a process runs; read each once.
_secret_files: dict[Path, str] = {}
# Secrets with one set of rules: from the environment, no placeholder in production,
# generated 0600 into the state dir (a file named as the field) in development.
# field → (environment variable, required in production at start, what it is).
SECRETS = {"webhook_secret": ("OMNICASCADE_WEBHOOK_SECRET", True, "webhook secret"),
           "api_token": ("OMNICASCADE_API_TOKEN", False, "API token"),  # required by the API
           "console_password": ("OMNICASCADE_CONSOLE_PASSWORD", False, "console password")}


class Settings(BaseSettings, ChannelSettings):
    # A provider's variables keep their flat names: OMNICASCADE_SENDGRID_API_KEY fills
    # sendgrid.api_key (split once, after the provider's field name).
    model_config = SettingsConfigDict(env_prefix="OMNICASCADE_", env_file=".env",
                                      extra="ignore", env_nested_delimiter="_",
                                      env_nested_max_split=1, hide_input_in_errors=True)

    env: Literal["development", "production"] = "development"
    home: Path = Path(".omnicascade")
    database_url: str | None = None

    temporal_address: str | None = None  # unset → the embedded dev server
    temporal_namespace: str = "default"
    temporal_tls: bool = False
    temporal_api_key: str | None = None
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_bin: str | None = None  # the embedded server's `temporal` binary; unset: ours
    task_queue: str = "omnicascade"
    # Registering custom search attributes needs the dev server or an operator; a cluster
    # without them can switch them off rather than failing every workflow task.
    search_attributes: bool = True

    api_host: str = "127.0.0.1"
    api_port: int = 8787
    public_url: str | None = None  # base for links in messages (unsubscribe); default: API
    # Proxies whose X-Forwarded-For/-Proto uvicorn may believe (comma-separated IPs or
    # networks); empty: forwarded headers are ignored, whoever sends them.
    trusted_proxies: str = ""
    webhook_secret: str | None = None  # API request signatures
    link_secret: str | None = None  # links in messages; unset: the webhook secret's keys
    session_secret: str | None = None  # the console's; unset: the webhook secret's keys
    pseudonym_key: str | None = None  # never changes; unset: derived (customers/pseudonym.py)
    # Bearer token for the read API (GET /v1/runs…, /v1/customers/…): reads carry PII.
    api_token: str | None = None
    # The web console's login (api/console); its sessions: api/console/sessions.py.
    console_password: str | None = None
    console_session_s: int = Field(default=43_200, gt=0)
    console_idle_s: int = Field(default=3_600, gt=0)
    signature_tolerance_s: int = 300
    max_body_bytes: int = 1_000_000
    # Operations: GET /metrics needs the read token unless public; a worker serves its own
    # metrics on this port (None: off); log lines as text or one JSON object each.
    metrics_public: bool = False
    worker_metrics_port: int | None = None
    log_format: Literal["text", "json"] = "text"

    # Activity behaviour — configuration, not constants in code.
    send_timeout_s: float = 30.0
    send_max_attempts: int = 10
    send_initial_retry_s: float = 1.0
    signal_timeout_s: float = 5.0
    # A send held by a paused run is checked again after pause_recheck_s, then after twice
    # as long each time up to pause_recheck_max_s (besides at once on resume): a lost resume
    # signal delays a held send by at most that; a long pause costs a few checks a day.
    pause_recheck_s: float = Field(default=300.0, gt=0)
    pause_recheck_max_s: float = Field(default=21_600.0, gt=0)
    start_concurrency: int = 64
    # Worker sizing. Workflows kept in the worker's sticky cache skip a history replay on
    # their next task; with more customers in flight than this, evicted ones replay. The
    # cache is most of the worker's heap, and a full garbage collection walks all of it:
    # 10,000 cached gave pauses of up to 3.3 s with both cores busy, past Temporal's 2 s
    # deadlock limit (see gc_watch). 3,000 keeps them near a second in the worst case.
    worker_max_cached_workflows: int = 3_000
    worker_max_concurrent_activities: int = 64
    # Workflow tasks run Python under one GIL: with the SDK's default of 100 at once, each
    # got so little of it at 100,000 in flight that some took over 2 s and tripped
    # Temporal's deadlock detector. 32 with the 3,000-cascade cache ran 100,000 cleanly.
    # Fewer slots cost throughput (slots are held across the server round trip): 8 gave
    # 0.69× bare cascade throughput, 32 gave 0.76–0.91×.
    worker_max_concurrent_workflow_tasks: int = Field(default=32, ge=2)
    # Re-import the workflow module for every cascade so the Temporal sandbox also catches
    # non-deterministic calls through module-level imports (datetime.now, random). For
    # developing workflow code (the test suite runs this way); costs ≈ 20% worker CPU.
    worker_strict_sandbox: bool = False

    # Unit cost per message (per SMS segment) in cost_currency, exact: see price_of.
    cost_email: Decimal = Decimal("0.001")
    cost_sms: Decimal = Decimal("0.05")
    cost_whatsapp: Decimal = Decimal("0.03")  # a business-initiated (template) message
    cost_telegram: Decimal = Decimal(0)
    cost_push: Decimal = Decimal(0)
    cost_webhook: Decimal = Decimal(0)
    cost_currency: str = "USD"  # the shop's, the one default: costs, bare amounts, `money`
    global_control: str = "0%"  # share kept from every campaign message (cascade/allocation.py)
    global_control_salt: str = ""  # a new salt reshuffles the global control (at most monthly)
    # Rates into cost_currency, `EUR=1.08,GBP=1.27` (1 EUR = 1.08 of it): only with them
    # does a report add revenue in several currencies up (and it states the rates it used).
    fx_rates: str = ""
    retention: str = ""  # `messages=90d,events=365d,feedback=180d`: cascade/retention.py

    def price_of(self, channel: str, segments: int | None = None) -> Decimal:
        """The one price of a message (ledger, preview, `order: cost`), in cost_currency."""
        unit = Decimal(str(getattr(self, f"cost_{channel}", 0)))  # str: a float set in code
        return (unit * (segments or 1)).quantize(COST_PLACES)

    def fx(self) -> dict[str, float]:
        """OMNICASCADE_FX_RATES as {currency: units of cost_currency per unit}."""
        return parse_fx_rates(self.fx_rates, self.cost_currency)

    @model_validator(mode="after")
    def _check_money(self) -> Settings:
        if not CURRENCY.fullmatch(self.cost_currency.strip().upper()):
            raise ConfigError(f"OMNICASCADE_COST_CURRENCY={self.cost_currency!r} is not a "
                              f"three-letter currency code (e.g. USD, EUR)")
        self.cost_currency = self.cost_currency.strip().upper()
        self.fx()  # a bad rate is refused when the settings are read, not in a report
        return self

    @model_validator(mode="after")
    def _refuse_placeholders(self) -> Settings:
        if self.env == "production" and (found := self.secret_problems()):
            raise ValueError("; ".join(found))
        return self

    def secret_problems(self) -> list[str]:
        """Each secret production refuses, one sentence each (`config check` lists them)."""
        found = []
        for field in (*SECRETS, "link_secret", "session_secret"):  # lists but the password
            value, required = getattr(self, field), field == "webhook_secret"
            keys = [value] if field == "console_password" or not value else value.split(",")
            if (required or value is not None) and any(map(looks_like_placeholder, keys)):
                found.append(f"OMNICASCADE_{field.upper()} must be set to a real secret ("
                             f"{MIN_SECRET_LENGTH}+ characters per key) in production")
        return found + [f"{variable} looks like a placeholder; set the real secret when "
                        f"OMNICASCADE_ENV=production" for variable, value in
                        self.provider_secrets() if looks_like_placeholder(value)]

    # ---- derived -------------------------------------------------------------------
    @property
    def home_dir(self) -> Path:
        return self.home.expanduser().resolve()

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.home_dir / 'omnicascade.db'}"

    @property
    def embedded(self) -> bool:
        return self.temporal_address is None

    @property
    def server_file(self) -> Path:
        return self.home_dir / "server.json"

    @property
    def secret_file(self) -> Path:
        return self.home_dir / "webhook_secret"

    @property
    def api_token_file(self) -> Path:
        return self.home_dir / "api_token"

    @cached_property
    def running_server(self) -> dict | None:
        """What `omnicascade server` wrote about itself, if it is running here."""
        try:
            return json.loads(self.server_file.read_text())
        except (OSError, ValueError):
            return None

    def resolved_temporal_address(self) -> str:
        if self.temporal_address:
            return self.temporal_address
        info = self.running_server
        if info and info.get("temporal_address"):
            return str(info["temporal_address"])
        raise ConfigError(
            "No Temporal server to talk to: start the embedded stack with "
            "`omnicascade server` (in another terminal), or set OMNICASCADE_TEMPORAL_ADDRESS.")

    def api_base_url(self) -> str:
        info = self.running_server
        if info and info.get("api_url"):
            return str(info["api_url"])
        return f"http://{self.api_host}:{self.api_port}"

    def link_base_url(self) -> str:
        return (self.public_url or self.api_base_url()).rstrip("/")

    def public_base_url(self) -> str:
        """Where providers call this API, from configuration only (never from a request's
        Host or X-Forwarded-* headers): OMNICASCADE_PUBLIC_URL, else the address the API is
        bound to (api_host, api_port)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.api_host}]" if ":" in self.api_host else self.api_host
        return f"http://{host}:{self.api_port}"

    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    def resolved_webhook_secret(self, create: bool = False) -> str:
        """The HMAC secret that signs: from the environment, else generated in the state dir."""
        return self.keys("webhook_secret", create)[0]

    def resolved_api_token(self, create: bool = False) -> str:
        return self.keys("api_token", create)[0]

    def keys(self, field: str, create: bool = False) -> list[str]:
        """A secret that rotates, `new,old`: the first signs, each listed one verifies."""
        value = getattr(self, field) or self.resolved(
            field if field in SECRETS else "webhook_secret", create)
        return [k.strip() for k in value.split(",") if k.strip()] or [value]

    def resolved(self, field: str, create: bool = False) -> str:
        value: str | None = getattr(self, field)
        if value:
            return value
        variable, _, what = SECRETS[field]
        if self.env == "production":
            raise ConfigError(f"{variable} is required in production")
        path = self.home_dir / field
        if path not in _secret_files and path.exists():  # read once: every send signs a link
            _secret_files[path] = path.read_text().strip()
        if path in _secret_files:
            return _secret_files[path]
        if not create:
            raise ConfigError(f"No {what}: set {variable} or start `omnicascade server` once "
                              f"to generate {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(32)
        # Written 0600 from the start (never briefly world-readable) and published with a
        # link that fails if the file exists: two processes starting at once agree on one.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.fchmod(fd, 0o600)  # in case a stale temp file from a crash had other bits
        with os.fdopen(fd, "w") as f:
            f.write(value + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            value = path.read_text().strip()
        finally:
            tmp.unlink()
        _secret_files[path] = value
        return value


def load_settings(**overrides: object) -> Settings:
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic ValidationError is a ValueError
        raise ConfigError(str(exc)) from None

