"""One settings object, read from `STUDIO_*` environment variables (DESIGN §3)."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MiB = 1024 * 1024
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"  # the worker's default too (worker/celery_app.py)


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """The service's configuration. Unsafe combinations (no auth on a public address) are refused."""

    model_config = SettingsConfigDict(env_prefix="STUDIO_", extra="ignore")

    data_dir: Path = Path("~/.studio")
    # URLs may hold passwords: read from the environment only, and kept out of repr() (logs, tracebacks)
    database_url: str = Field(default="", repr=False)  # empty = sqlite:///{data_dir}/studio.db
    redis_url: str | None = Field(default=None, repr=False)  # None = embedded Redis
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    auth: Literal["off", "on"] | None = None  # None = off on loopback, on otherwise
    model_dirs: str = ""  # os.pathsep-separated folders local base models may be loaded from
    max_upload_bytes: int = Field(default=512 * MiB, gt=0)
    max_request_bytes: int = Field(default=4 * MiB, gt=0)  # any other request body (JSON): 413 above it
    # Dataset caps (docs/datasets.md): uploads are read as a stream and refused with 400 past these
    max_dataset_rows: int = Field(default=2_000_000, gt=0)
    max_dataset_chars: int = Field(default=4096 * MiB, gt=0)  # text of all examples once decoded
    max_row_bytes: int = Field(default=8 * MiB, gt=0)  # one line / row / JSON item / paragraph
    max_dataset_expansion: int = Field(default=50, gt=0)  # Parquet: decoded text at most this x the file
    cors_origins: str = ""  # comma-separated origins allowed cross-origin (default: same-origin only)
    # HTTP front door (docs/team-mode.md): Host names served besides loopback and STUDIO_HOST ("*.x" = its
    # subdomains; "*" = any, auth on only), proxies whose X-Forwarded-For/-Proto/-Host count (IPs, CIDRs),
    # and requests per API key (per client address with auth off): `limits` syntax, "a/minute; b/second", or "off"
    allowed_hosts: str = ""
    trusted_proxies: str = ""
    rate_limit: str = "600/minute"
    max_job_attempts: int = Field(default=3, ge=1)
    redis_prefix: str = Field(default="studio", min_length=1)  # `{prefix}:jobs:{id}:…` keys (worker's STUDIO_REDIS_PREFIX)
    broker_prefix: str | None = None  # Celery's global key prefix; must match the workers' STUDIO_BROKER_PREFIX
    relay_enabled: bool = True  # copy worker events from Redis into the DB in the background
    relay_interval_seconds: float = Field(default=0.25, gt=0)
    # The scheduler (docs/queue.md): dispatch queued jobs to free GPU workers by priority, fair share, FIFO
    scheduler_enabled: bool = True
    scheduler_interval_seconds: float = Field(default=0.5, gt=0)
    max_running_per_user: int = Field(default=0, ge=0)  # dispatched or running jobs per user; 0 = no limit
    team_quotas: str = ""  # "nlp=4,vision=2,*=8": jobs per team at once; `*` for unlisted teams; none = no limit
    lease_grace_seconds: float = Field(default=15.0, gt=0)  # no lease + no live worker this long = worker lost
    dispatch_timeout_seconds: float = Field(default=120.0, gt=0)  # an unclaimed dispatch is replaced after this
    sse_poll_seconds: float = Field(default=0.2, gt=0)  # how often an event stream looks for new events
    sse_keepalive_seconds: float = Field(default=15.0, gt=0)
    inference_timeout_seconds: float = Field(default=300.0, gt=0)  # a chat/completion gives up (504) after this
    inference_max_tokens: int = Field(default=512, ge=1)  # max_tokens is capped here (and defaults to it)
    max_lora_rank: int = Field(default=64, ge=1)  # adapters above it are flagged (vLLM's --max-lora-rank)

    @model_validator(mode="after")
    def _resolve(self) -> "Settings":
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'studio.db'}"
        if not self.redis_url:
            self.redis_url = None
        self.broker_prefix = self.broker_prefix or None
        loopback = is_loopback(self.host)
        if self.auth is None:
            self.auth = "off" if loopback else "on"
        if self.auth == "off" and not loopback:
            raise ValueError(f"STUDIO_AUTH=off is refused when STUDIO_HOST={self.host!r} is not a loopback "
                             "address: anyone on the network could use the studio. Set STUDIO_AUTH=on "
                             "or bind to 127.0.0.1.")
        if "*" in self.allowed_host_list and self.auth == "off":
            raise ValueError("STUDIO_ALLOWED_HOSTS=* is refused while STUDIO_AUTH=off: a page on any site could then "
                             "reach the studio by DNS rebinding. Name the hosts, or turn auth on.")
        if "*" in self.cors_origin_list and self.auth == "off":
            raise ValueError("STUDIO_CORS_ORIGINS=* is refused while STUDIO_AUTH=off: any web page could then drive "
                             "the studio. Name the origins, or turn auth on.")
        return self

    @property
    def broker_url(self) -> str:
        """The Redis the API talks to: `redis_url`, or the worker's default when none is configured."""
        return self.redis_url or DEFAULT_REDIS_URL

    @property
    def auth_enabled(self) -> bool:
        return self.auth == "on"

    @property
    def cors_origin_list(self) -> list[str]:
        """`cors_origins` split on commas, trailing slashes dropped (`http://localhost:5173`)."""
        return [o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip()]

    @property
    def allowed_host_list(self) -> list[str]:
        """`allowed_hosts` split on commas, lower-case (`studio.example.com`, `*.corp.example`)."""
        return [h.strip().lower() for h in self.allowed_hosts.split(",") if h.strip()]

    @property
    def trusted_proxy_list(self) -> list[str]:
        """`trusted_proxies` split on commas (addresses or networks, `10.0.0.0/8`)."""
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @field_validator("rate_limit")
    @classmethod
    def _check_rate_limit(cls, value: str) -> str:
        parse_rate_limit(value)
        return value

    @property
    def rate_limits(self) -> list:
        """`rate_limit` as `limits` items ([] when "off")."""
        return parse_rate_limit(self.rate_limit)

    @property
    def model_dir_list(self) -> list[Path]:
        """`model_dirs` split on os.pathsep, expanded, empty entries dropped."""
        return [Path(p).expanduser().resolve() for p in self.model_dirs.split(os.pathsep) if p.strip()]

    @field_validator("team_quotas")
    @classmethod
    def _check_quotas(cls, value: str) -> str:
        parse_quotas(value)
        return value

    @property
    def team_quota_map(self) -> dict[str, int]:
        """`team_quotas` as {team: max concurrent jobs}; the key `*` applies to teams not listed."""
        return parse_quotas(self.team_quotas)

    @property
    def files_dir(self) -> Path:
        """Where uploaded datasets are stored, one file per file id."""
        return self.data_dir / "files"

    @property
    def jobs_dir(self) -> Path:
        """Where each job's output and checkpoints live (`jobs/{job_id}/`)."""
        return self.data_dir / "jobs"

    @property
    def tmp_dir(self) -> Path:
        """Uploads in progress; on the same filesystem as `files_dir` so the final move is a rename."""
        return self.data_dir / "tmp"

    def ensure_dirs(self) -> None:
        """Create the data folders if they are missing."""
        for path in (self.data_dir, self.files_dir, self.jobs_dir, self.tmp_dir):
            path.mkdir(parents=True, exist_ok=True)


def parse_quotas(text: str) -> dict[str, int]:
    """`"nlp=4, vision=2, *=8"` → {"nlp": 4, "vision": 2, "*": 8}; raises ValueError naming a bad entry."""
    quotas: dict[str, int] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        team, _, limit = entry.partition("=")
        if not team.strip() or not limit.strip().isdigit():
            raise ValueError(f"STUDIO_TEAM_QUOTAS: {entry!r} is not `team=N` (N a whole number ≥ 0)")
        quotas[team.strip()] = int(limit)
    return quotas


def parse_rate_limit(text: str) -> list:
    """`"600/minute"`, `"20/second; 600/minute"` → `limits` items; `"off"` → []; raises ValueError otherwise."""
    if text.strip().lower() == "off":
        return []
    try:
        return parse_many(text)
    except ValueError:
        raise ValueError(f"STUDIO_RATE_LIMIT: {text!r} is not a rate like '600/minute' or '20/second; 600/minute' "
                         "(or 'off')") from None


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read from the environment once."""
    return Settings()
