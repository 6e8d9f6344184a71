"""Typed settings: one TOML file plus `SENTINEL_BRIDGE_<SECTION>__<KEY>` environment overrides.

Every problem is reported as `file: key: reason` through ConfigError, all problems at once, so
that ops fix a config in one round trip. Secrets are SecretStr and never printed.
"""

from __future__ import annotations

import codecs
import importlib.util
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from .core.errors import ConfigError
from .core.webhook_signature import decode_secret

ENV_PREFIX = "SENTINEL_BRIDGE_"
CONFIG_ENV = "SENTINEL_BRIDGE_CONFIG"

# Entra ID authority host and ARM endpoint per national cloud.
# https://learn.microsoft.com/en-us/entra/identity-platform/authentication-national-cloud
CLOUDS: dict[str, tuple[str, str]] = {
    "public": ("https://login.microsoftonline.com", "https://management.azure.com"),
    "usgov": ("https://login.microsoftonline.us", "https://management.usgovcloudapi.net"),
    "china": ("https://login.chinacloudapi.cn", "https://management.chinacloudapi.cn"),
}


def _guid(value: str) -> str:
    try:
        return str(UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a GUID") from None


def _https_url(value: str) -> str:
    if not value.startswith("https://") or len(value) <= len("https://"):
        raise ValueError(f"{value!r} must be an https:// URL")
    return value.rstrip("/")


def _http_url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(f"{value!r} must be an http:// or https:// URL")
    return value.rstrip("/")


def _readable_file(value: Path) -> Path:
    path = value.expanduser()
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError as exc:
        raise ValueError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from None
    return path


Guid = Annotated[str, AfterValidator(_guid)]
HttpsUrl = Annotated[str, AfterValidator(_https_url)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]
ReadableFile = Annotated[Path, AfterValidator(_readable_file)]


def _read_secret_file(key: str, path: Path) -> SecretStr:
    try:
        text = path.read_text(encoding="utf-8-sig").strip()
    except UnicodeDecodeError:
        # Never the decoder's message: it quotes the bytes around the error, i.e. the secret.
        raise ValueError(f"{key}: {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ValueError(f"{key}: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    if not text:
        raise ValueError(f"{key}: {str(path)!r} is empty")
    return SecretStr(text)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AzureSettings(Section):
    cloud: Literal["public", "usgov", "china"] = "public"
    authority_host: HttpsUrl | None = None
    arm_endpoint: HttpsUrl | None = None
    client_id: Guid
    client_secret: SecretStr | None = None
    client_secret_file: ReadableFile | None = None
    certificate_path: ReadableFile | None = None
    ca_bundle: ReadableFile | None = None
    api_version: str = "2025-09-01"
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=5, ge=0, le=20)
    max_pages_per_tick: int = Field(default=100, ge=1)

    @model_validator(mode="after")
    def _one_credential(self) -> AzureSettings:
        given = [
            name
            for name in ("client_secret", "client_secret_file", "certificate_path")
            if getattr(self, name) is not None
        ]
        if not given:
            raise ValueError(
                "missing secret: set client_secret, client_secret_file or certificate_path"
            )
        if len(given) > 1:
            raise ValueError(f"set only one credential, got {', '.join(given)}")
        if self.client_secret_file is not None:
            secret = _read_secret_file("client_secret_file", self.client_secret_file)
            object.__setattr__(self, "client_secret", secret)
        if self.client_secret is not None and not self.client_secret.get_secret_value():
            raise ValueError("client_secret is empty")
        return self

    @property
    def resolved_authority_host(self) -> str:
        return self.authority_host or CLOUDS[self.cloud][0]

    @property
    def resolved_arm_endpoint(self) -> str:
        return self.arm_endpoint or CLOUDS[self.cloud][1]


class StoreSettings(Section):
    url: str = "sqlite+aiosqlite:///sentinel-bridge.db"

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must be a sqlite+aiosqlite:// or postgresql+asyncpg:// SQLAlchemy URL"
            )
        return value


class HttpQueueSettings(Section):
    """The central queue speaking contract v1 over HTTP (docs/queue-contract-v1.openapi.yaml)."""

    type: Literal["http"] = "http"
    url: HttpUrl
    token: SecretStr | None = None
    token_file: ReadableFile | None = None
    ca_bundle: ReadableFile | None = None
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    # auto: POST /v1/alerts:batch when GET /v1/capabilities advertises it, single PUTs
    # otherwise; off: single PUTs always.
    batch: Literal["auto", "off"] = "auto"

    @model_validator(mode="after")
    def _one_token(self) -> HttpQueueSettings:
        token = _one_secret("token", self.token, self.token_file)
        object.__setattr__(self, "token", token)
        return self


class TheHiveQueueSettings(Section):
    """TheHive 5 as the central queue, one organisation per customer (README: TheHive)."""

    type: Literal["thehive"]
    url: HttpUrl
    api_key: SecretStr | None = None
    api_key_file: ReadableFile | None = None
    ca_bundle: ReadableFile | None = None
    request_timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_key(self) -> TheHiveQueueSettings:
        key = _one_secret("api_key", self.api_key, self.api_key_file)
        object.__setattr__(self, "api_key", key)
        return self

    @property
    def token(self) -> SecretStr | None:
        """The secret the queue is called with (the API key), named as on every queue."""
        return self.api_key


def _one_secret(key: str, inline: SecretStr | None, file: Path | None) -> SecretStr:
    """A required secret given as `key` or as `<key>_file` (exactly one of the two)."""
    if file is not None:
        if inline is not None:
            raise ValueError(f"set only one of {key} and {key}_file")
        return _read_secret_file(f"{key}_file", file)
    if inline is None:
        raise ValueError(f"missing secret: set {key} or {key}_file")
    return inline


def _kind(key: str, default: str) -> Callable[[Any], str]:
    """What a tagged table asks for under `key` (`[queue] type`, `[[tenants]] source`)."""

    def kind(value: Any) -> str:
        found = value.get(key, default) if isinstance(value, dict) else getattr(value, key, None)
        return found if isinstance(found, str) else "<not a string>"

    return kind


# One settings model per kind of queue, chosen by `type`; a new adapter adds its model here
# (and its tag to _TAGGED, so that problems are reported at the keys the file has).
QueueSettings = Annotated[
    Annotated[HttpQueueSettings, Tag("http")] | Annotated[TheHiveQueueSettings, Tag("thehive")],
    Discriminator(
        _kind("type", "http"),
        custom_error_type="unknown_queue_type",
        custom_error_message="unknown queue type (known: http, thehive)",
    ),
]


_TAGGED = {("queue", "http"), ("queue", "thehive"), ("tenants", "sentinel")}


class SyncSettings(Section):
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    lookback_seconds: float = Field(default=3600.0, ge=0)
    # How far back the very first tick of a new workspace reaches (no checkpoint yet).
    initial_lookback_seconds: float = Field(default=30 * 24 * 3600.0, ge=0)
    page_size: int = Field(default=200, ge=1, le=1000)
    enrich: bool = True
    enrich_concurrency: int = Field(default=8, ge=1, le=64)
    # Over all workspaces: a backlog in many of them must not starve delivery.
    enrich_concurrency_total: int = Field(default=32, ge=1, le=1024)
    delivery_concurrency: int = Field(default=8, ge=1, le=64)
    delivery_max_attempts: int = Field(default=0, ge=0)  # 0: retry forever, never park
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    # Reverse path: analyst actions in the queue -> Sentinel, Sentinel comments -> queue.
    reverse_interval_seconds: float = Field(default=15.0, gt=0)
    default_close_classification: Literal[
        "undetermined", "true_positive", "benign_positive", "false_positive"
    ] = "undetermined"
    # Sentinel's limit per comment (it was 1,000 and 3,000 in older API versions).
    comment_max_chars: int = Field(default=30000, ge=100)
    reverse_concurrency: int = Field(default=8, ge=1, le=64)
    changes_page_size: int = Field(default=200, ge=1, le=1000)
    # The failure budget of one item (an incident's enrichment, a queue change, a comment):
    # tries before it is set aside (parked) while the rest goes on, and the first wait between
    # tries, doubled each time up to an hour.
    item_max_attempts: int = Field(default=5, ge=1, le=100)
    item_retry_seconds: float = Field(default=60.0, gt=0, le=3600)


def _listen_address(value: str | None) -> str | None:
    """'host:port', '[v6]:port' or ':port' (every interface)."""
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535 or " " in host:
        raise ValueError(f"{value!r} must be host:port, e.g. 127.0.0.1:9464")
    return value


def split_listen(listen: str) -> tuple[str, int]:
    """'127.0.0.1:9464', '[::1]:9464' or ':9464' (every interface) -> (host, port)."""
    host, _, port = listen.rpartition(":")
    # ':port' is an explicit choice to listen on every interface (e.g. in a container).
    return host.strip("[]") or "0.0.0.0", int(port)


class ObservabilitySettings(Section):
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # The ops HTTP listener (/healthz, /readyz, /metrics); off unless set.
    listen: Annotated[str | None, AfterValidator(_listen_address)] = None
    # How often each workspace writes its one info `workspace summary` line (at least a minute:
    # shorter would bring back the per-tick noise the summary replaces).
    summary_interval_seconds: float = Field(default=900.0, ge=60, le=86_400)


class RuntimeSettings(Section):
    """The process itself: its event loop and its garbage collector."""

    # auto: uvloop when installed (the `uvloop` extra), asyncio otherwise; asyncio: never
    # uvloop; uvloop: required, refused here when it is not installed.
    event_loop: Literal["auto", "uvloop", "asyncio"] = "auto"
    # Freeze the heap built at start-up and collect young objects less often (CPU per
    # incident; see runtime/event_loop.py). false: CPython's defaults.
    gc_tuning: bool = True

    @field_validator("event_loop")
    @classmethod
    def _uvloop_present(cls, value: str) -> str:
        if value == "uvloop" and importlib.util.find_spec("uvloop") is None:
            raise ValueError(
                "uvloop is not installed: pip install 'sentinel-bridge[uvloop]', or choose"
                " auto or asyncio"
            )
        return value


# A push token shorter than this is guessable by whoever can reach the endpoint.
_MIN_PUSH_TOKEN_CHARS = 16


def _push_token(key: str, token: SecretStr | None, token_file: Path | None) -> SecretStr | None:
    """The tenant's push token from `push_token` or `push_token_file` (at most one)."""
    if token is not None and token_file is not None:
        raise ValueError("set only one of push_token and push_token_file")
    if token_file is not None:
        token = _read_secret_file("push_token_file", token_file)
    if token is not None and len(token.get_secret_value()) < _MIN_PUSH_TOKEN_CHARS:
        raise ValueError(f"{key} must be at least {_MIN_PUSH_TOKEN_CHARS} characters")
    return token


def _default_replica_name() -> str:
    """Host name and pid: unique among the replicas of one store, readable in `status`."""
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterSettings(Section):
    """Several replicas on one PostgreSQL store: each workspace (and the change feed) is
    owned by one replica at a time through a lease row that it renews. SQLite serves one."""

    replica_name: str = Field(default_factory=_default_replica_name, min_length=1, max_length=200)
    # A replica that stops renewing (killed, paused, cut off) loses its workspaces this long
    # after its last renewal; another one takes them over then.
    lease_ttl_seconds: float = Field(default=15.0, ge=3, le=600)
    # Default: a third of the TTL, so two renewals can fail before the lease runs out.
    renew_interval_seconds: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> ClusterSettings:
        if self.renew_interval_seconds is None:
            object.__setattr__(self, "renew_interval_seconds", self.lease_ttl_seconds / 3)
        elif self.renew_interval_seconds > self.lease_ttl_seconds / 2:
            raise ValueError(
                "renew_interval_seconds must be at most half of lease_ttl_seconds, so that a "
                "late renewal does not lose the lease"
            )
        return self

    @property
    def renew_seconds(self) -> float:
        return self.renew_interval_seconds or self.lease_ttl_seconds / 3


class PushSettings(Section):
    """The inbound push endpoint (POST /v1/push/sentinel): off unless `listen` is set.

    A push only makes a workspace's next tick start now; the incidents still come from the
    listing, so the worst a forged push can do is an extra poll.
    """

    listen: Annotated[str | None, AfterValidator(_listen_address)] = None
    # Standard Webhooks secrets (`whsec_...`); several while a rotation is under way.
    secrets: list[SecretStr] = Field(default_factory=list)
    secrets_file: ReadableFile | None = None
    # HTTPS served by the bridge itself; without them, put a TLS reverse proxy in front.
    tls_certificate: ReadableFile | None = None
    tls_private_key: ReadableFile | None = None
    timestamp_tolerance_seconds: float = Field(default=300.0, gt=0, le=3600)
    max_body_bytes: int = Field(default=65_536, ge=1024, le=1_048_576)
    # Logic Apps of a region share outbound addresses: the per-address limit is generous.
    per_address_per_minute: int = Field(default=1200, ge=1)
    per_workspace_per_minute: int = Field(default=120, ge=1)
    # Triggered ticks of one workspace start at least this far apart: a burst is one tick.
    min_tick_spacing_seconds: float = Field(default=2.0, ge=0.1, le=300)

    @model_validator(mode="after")
    def _secrets_and_tls(self) -> PushSettings:
        if self.secrets and self.secrets_file is not None:
            raise ValueError("set only one of secrets and secrets_file")
        if self.secrets_file is not None:
            object.__setattr__(self, "secrets", _secret_lines(self.secrets_file))
        for index, secret in enumerate(self.secrets):
            try:
                decode_secret(secret.get_secret_value())
            except ValueError as exc:
                raise ValueError(f"secrets[{index}]: {exc}") from None
        if (self.tls_certificate is None) != (self.tls_private_key is None):
            raise ValueError("set both tls_certificate and tls_private_key, or neither")
        return self

    @property
    def signing_keys(self) -> list[bytes]:
        return [decode_secret(secret.get_secret_value()) for secret in self.secrets]


def _secret_lines(path: Path) -> list[SecretStr]:
    """One secret per line; blank lines and `#` comments are skipped."""
    text = _read_secret_file("secrets_file", path).get_secret_value()
    lines = [line.strip() for line in text.splitlines()]
    return [SecretStr(line) for line in lines if line and not line.startswith("#")]


class SentinelTenantSettings(Section):
    """One customer workspace in Microsoft Sentinel, read over Azure Resource Manager."""

    source: Literal["sentinel"] = "sentinel"
    name: str = Field(min_length=1)
    tenant_id: Guid
    subscription_id: Guid
    resource_group: str = Field(min_length=1)
    workspace_name: str = Field(min_length=1)
    enabled: bool = True
    # The bearer token this customer's playbook sends to `[push]` (a Logic App cannot sign).
    push_token: SecretStr | None = None
    push_token_file: ReadableFile | None = None
    # With `[queue] type = "thehive"`: the organisation this customer's alerts go to (and
    # whose analysts' changes come back); None: the organisation named like the tenant.
    thehive_organisation: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_push_token(self) -> SentinelTenantSettings:
        token = _push_token("push_token", self.push_token, self.push_token_file)
        object.__setattr__(self, "push_token", token)
        return self

    @property
    def organisation(self) -> str:
        """The TheHive organisation of this tenant."""
        return self.thehive_organisation or self.name

    @property
    def workspace_id(self) -> str:
        """What names the workspace at its source; two tables must not name the same one."""
        return f"{self.subscription_id}/{self.resource_group}/{self.workspace_name}"


def _tenant_source(value: Any) -> str:
    """The `source` a `[[tenants]]` table names; `sentinel` when it does not say."""
    found = (
        value.get("source", "sentinel")
        if isinstance(value, dict)
        else getattr(value, "source", None)
    )
    return found if isinstance(found, str) else "<not a string>"


# One settings model per kind of source, chosen by `source` (Microsoft Graph can sit beside).
TenantSettings = Annotated[
    Annotated[SentinelTenantSettings, Tag("sentinel")],
    Discriminator(
        _kind("source", "sentinel"),
        custom_error_type="unknown_source",
        custom_error_message="unknown source (known: sentinel)",
    ),
]


class _TenantConflicts(ValueError):
    """Problems that each belong to one tenant (`tenants[j]`), not to the whole list."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{key}: {reason}" for key, reason in problems))


def _duplicate_names(tenants: list[TenantSettings]) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems = []
    for index, tenant in enumerate(tenants):
        earlier = first.setdefault(tenant.name, index)
        if earlier != index:
            reason = f"duplicate tenant name {tenant.name!r} (also tenants[{earlier}])"
            problems.append((f"tenants[{index}]", reason))
    return problems


def _duplicate_push_tokens(tenants: list[TenantSettings]) -> list[tuple[str, str]]:
    """A bearer token names its tenant: two tenants sharing one could trigger each other."""
    first: dict[str, int] = {}
    problems = []
    for index, tenant in enumerate(tenants):
        if tenant.push_token is None:
            continue
        earlier = first.setdefault(tenant.push_token.get_secret_value(), index)
        if earlier != index:
            reason = f"push_token is the same as tenants[{earlier}]'s; each tenant needs its own"
            problems.append((f"tenants[{index}].push_token", reason))
    return problems


def _duplicate_workspaces(tenants: list[TenantSettings]) -> list[tuple[str, str]]:
    first: dict[str, int] = {}
    problems = []
    for index, tenant in enumerate(tenants):
        workspace = tenant.workspace_id
        # Case-insensitive, as Azure resource names and the store's workspace keys are.
        earlier = first.setdefault(f"{tenant.source}:{workspace.lower()}", index)
        if earlier != index:
            reason = (
                f"workspace {workspace} of tenant {tenant.name!r} is already configured by "
                f"tenant {tenants[earlier].name!r} (tenants[{earlier}]); "
                "each workspace may be configured once"
            )
            problems.append((f"tenants[{index}]", reason))
    return problems


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    azure: AzureSettings
    store: StoreSettings = StoreSettings()
    queue: QueueSettings
    sync: SyncSettings = SyncSettings()
    observability: ObservabilitySettings = ObservabilitySettings()
    push: PushSettings = PushSettings()
    cluster: ClusterSettings = ClusterSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    tenants: list[TenantSettings] = Field(default_factory=list)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment wins over the file (init kwargs carry the parsed TOML).
        return (env_settings, init_settings)

    @field_validator("tenants")
    @classmethod
    def _unique_tenants(cls, tenants: list[TenantSettings]) -> list[TenantSettings]:
        # A second table for the same workspace would share its store key: one of the two
        # would silently never run.
        problems = [
            *_duplicate_names(tenants),
            *_duplicate_workspaces(tenants),
            *_duplicate_push_tokens(tenants),
        ]
        if problems:
            raise _TenantConflicts(problems)
        return tenants

    @model_validator(mode="after")
    def _push_can_authenticate(self) -> Settings:
        tokens = any(tenant.push_token for tenant in self.tenants)
        if self.push.listen and not self.push.secrets and not tokens:
            raise _PushWithoutCredentials()
        return self

    @property
    def enabled_tenants(self) -> list[TenantSettings]:
        return [tenant for tenant in self.tenants if tenant.enabled]


class _PushWithoutCredentials(ValueError):
    """Reported at `push.listen`: an endpoint nobody can authenticate to refuses everything."""

    problems = [
        (
            "push.listen",
            "no push credentials: set push.secrets, push.secrets_file or a tenant's push_token",
        )
    ]


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str]) -> Path:
    """`--config` wins over SENTINEL_BRIDGE_CONFIG; one of them is required."""
    value = cli_path or environ.get(CONFIG_ENV)
    if not value:
        raise ConfigError("<no file>", [("--config", f"give --config PATH or set {CONFIG_ENV}")])
    return Path(value)


def load_settings(path: Path) -> Settings:
    """Read, merge and validate; raise ConfigError naming the file, key and reason."""
    data = _read_toml(path)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(str(path), _located_problems(exc)) from None


def _located_problems(exc: ValidationError) -> list[tuple[str, str]]:
    """`_problems`, with each tenant conflict reported at the key of the later tenant."""
    located: list[tuple[str, str]] = []
    # _problems yields one problem per error, in order: swap in the conflicts' own keys.
    for error, problem in zip(exc.errors(include_url=False), _problems(exc), strict=True):
        conflicts = error.get("ctx", {}).get("error")
        located += (
            conflicts.problems
            if isinstance(conflicts, _TenantConflicts | _PushWithoutCredentials)
            else [problem]
        )
    return located


def _read_toml(path: Path) -> dict[str, Any]:
    text = _decode(path, _read_bytes(path))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _file_error(path, f"invalid TOML: {exc}") from None


def _file_error(path: Path, reason: str) -> ConfigError:
    return ConfigError(str(path), [("<file>", reason)])


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:  # missing, a directory, no permission, I/O error
        raise _file_error(path, f"cannot read: {exc.strerror or exc}") from None


# Longest first: the UTF-32-LE BOM begins with the UTF-16-LE one.
_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


def _decode(path: Path, data: bytes) -> str:
    """The text of a UTF-8 file, with or without a BOM (Windows editors write one)."""
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            raise _file_error(path, f"the file is {encoding} encoded; save it as UTF-8")
    # UTF-16 without a BOM is valid UTF-8 when the text is ASCII, NULs and all; TOML allows
    # no NUL anywhere, so a NUL means the wrong encoding (or not a text file at all).
    if b"\x00" in data:
        raise _file_error(
            path, "the file has NUL bytes: it is UTF-16 encoded or not text; save it as UTF-8"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _file_error(path, _not_utf8(exc)) from None


def _not_utf8(exc: UnicodeDecodeError) -> str:
    # exc.object is what was decoded (after the BOM), so offsets and lines refer to it.
    data, start = exc.object, exc.start
    line_start = data.rfind(b"\n", 0, start) + 1
    # Everything before the first bad byte is valid UTF-8: count characters, not bytes.
    column = len(data[line_start:start].decode("utf-8")) + 1
    line = data.count(b"\n", 0, start) + 1
    return (
        f"not valid UTF-8: byte 0x{data[start]:02x} at line {line}, column {column}; "
        "save the file as UTF-8"
    )


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        key = _key_name(error["loc"])
        reason = _reason(error["type"], error["msg"])
        override = _env_name(error["loc"])
        if override in os.environ:
            reason = f"{reason} (from environment variable {override})"
        problems.append((key, reason))
    return problems


def _key_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in _without_tags(loc):
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.startswith(("function-after", "function-before")):
            continue
        else:
            name += f".{part}" if name else part
    return name or "<root>"


def _reason(error_type: str, message: str) -> str:
    if error_type == "extra_forbidden":
        return "unknown key"
    if error_type == "missing":
        return "required key is missing"
    return message.removeprefix("Value error, ")


def _without_tags(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """The location as the file spells it: pydantic puts the chosen kind of a tagged section
    (`[queue] type`, `[[tenants]] source`) into it, the file does not."""
    if len(loc) > 1 and (loc[0], loc[1]) in _TAGGED:
        return (loc[0], *loc[2:])
    if len(loc) > 2 and loc[0] == "tenants" and ("tenants", loc[2]) in _TAGGED:
        return (*loc[:2], *loc[3:])
    return loc


def _env_name(loc: tuple[int | str, ...]) -> str:
    parts = [str(part).upper() for part in _without_tags(loc)[:2] if isinstance(part, str)]
    return ENV_PREFIX + "__".join(parts)
