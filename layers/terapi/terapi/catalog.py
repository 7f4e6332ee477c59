"""The provider catalog: how Terapi authenticates against each SaaS API, shipped as data.

`providers.json` (beside this module, inside the layer) is one JSON object keyed by provider name;
each value is a `Provider` without its `name`, which the key supplies. It is read with the stdlib
`json` module on first use and cached for the life of the container, so a cold start that never
touches the catalog pays nothing for it.

Templates. URL fields, `authorization_params`, `token_params` and `proxy_headers` values may hold
`${connection_config.<key>}` placeholders, filled by `render_template` from the connection's config.
Where a placeholder sits decides what its value may contain:

- in the host of a URL: a host name (labels of letters, digits and hyphens joined by dots);
- anywhere after the host, or in a value that is not a URL: one path segment (letters, digits and
  `.`, `_`, `~`, `-`; never `/`, `?`, `#` or `..`);
- at the very start of a template: an origin, `https://host` with nothing after the host but an
  optional `/`. Only keys filled from the token response (`connection_config_from_token`, such as
  Salesforce's `instance_url`) may stand there, and the catalog refuses any other.

A rendered URL must still be https and name a public DNS host (a dotted name whose last label has a
letter), so no config value can point Terapi at an IP literal, `localhost` or a bare name.

Field semantics the OAuth client and the proxy rely on are described on `Provider`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from importlib import resources
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, model_validator

CATALOG_FILE = "providers.json"
GENERIC_PROVIDERS = frozenset({"oauth2", "oauth2-cc"})
BASIC_PLACEHOLDER_PASSWORD = "x"  # noqa: S105 - not a secret

Category = Literal[
    "source-control",
    "chat",
    "crm",
    "ticketing",
    "docs",
    "calendar",
    "storage",
    "payments",
    "accounting",
    "marketing",
    "support",
    "hr",
    "analytics",
    "ecommerce",
    "productivity",
    "design",
    "dev-tools",
    "communication",
    "other",
]
AuthMode = Literal["oauth2", "oauth2_cc", "oauth1", "api_key", "basic"]
ClientAuthMethod = Literal["client_secret_basic", "client_secret_post"]
CATEGORIES: tuple[str, ...] = get_args(Category)

PLACEHOLDER = re.compile(r"\$\{connection_config\.([a-z][a-z0-9_]*)\}")
CONFIG_KEY = re.compile(r"^[a-z][a-z0-9_]*$")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST_VALUE = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
SEGMENT_VALUE = re.compile(r"^[A-Za-z0-9._~-]{1,200}$")
_PUBLIC_TLD = re.compile(r"[A-Za-z]")

_URL_FIELDS = (
    "authorization_url",
    "token_url",
    "refresh_url",
    "request_token_url",
    "api_base_url",
    "revoke_url",
)


class ApiKeyInjection(BaseModel):
    """Where the proxy puts an API key: a header or query parameter, formatted around the key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    location: Literal["header", "query"]
    name: str = Field(min_length=1)
    format: str = "${api_key}"

    @model_validator(mode="after")
    def _one_key_placeholder(self) -> ApiKeyInjection:
        if self.format.count("${api_key}") != 1 or self.format.count("${") != 1:
            raise ValueError("api_key.format must contain ${api_key} exactly once")
        return self


class BasicInjection(BaseModel):
    """How the connect UI labels HTTP basic credentials, and whether the password may be blank.

    Providers that take an API key as the username (Freshdesk, BambooHR) set `password_optional`;
    the proxy then sends `BASIC_PLACEHOLDER_PASSWORD`, since some reject an empty password.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username_label: str = "Username"
    password_label: str = "Password"  # noqa: S105 - not a secret
    password_optional: bool = False


class Verification(BaseModel):
    """The request that proves an API key or basic credential works before it is stored."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(pattern=r"^/")
    expected_status: list[int] = Field(default_factory=lambda: [200], min_length=1)


class Provider(BaseModel):
    """One catalog entry: how to obtain, refresh, use and revoke a credential for one API.

    `token_auth_method` and `revoke_auth_method` say whether client id and secret travel in a
    Basic header or in the form body. `token_response_path` is the dotted path of the object that
    holds `access_token`/`refresh_token`/`expires_in` (None: top level). `refresh_url` is used for
    refresh grants when it differs from `token_url`. `scope_param` names the authorization query
    parameter that carries scopes. `token_request_format` is the body encoding of token requests.
    `revoke_url` is only set for RFC 7009-style endpoints: POST, `revoke_token_param=<token>` in
    the form body, client authenticated by `revoke_auth_method`. `pkce` only applies to `oauth2`.
    Header names in `rate_limit_reset_header` are lower case; delta values may be fractional.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)
    display_name: str = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)
    docs_url: str
    auth_mode: AuthMode

    authorization_url: str | None = None
    token_url: str | None = None
    refresh_url: str | None = None
    request_token_url: str | None = None
    authorization_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)
    scope_param: str = Field(default="scope", min_length=1)
    scope_separator: str = Field(default=" ", min_length=1)
    default_scopes: list[str] = Field(default_factory=list)
    pkce: bool = True
    token_auth_method: ClientAuthMethod = "client_secret_post"  # noqa: S105 - not a secret
    token_request_format: Literal["form", "json"] = "form"  # noqa: S105 - not a secret
    token_response_path: str | None = Field(default=None, pattern=r"^[a-z_]+(\.[a-z_]+)*$")

    connection_config_from_token: dict[str, str] = Field(default_factory=dict)
    connection_config_params: list[str] = Field(default_factory=list)

    api_base_url: str | None = None
    api_key: ApiKeyInjection | None = None
    basic: BasicInjection | None = None
    verification: Verification | None = None

    revoke_url: str | None = None
    revoke_auth_method: ClientAuthMethod = "client_secret_post"
    revoke_token_param: str = "token"  # noqa: S105 - not a secret

    refresh_margin_seconds: int = Field(default=300, ge=0)
    rate_limit_reset_header: str | None = Field(default=None, pattern=r"^[a-z0-9-]+$")
    rate_limit_reset_kind: Literal["epoch_seconds", "delta_seconds"] | None = None
    proxy_headers: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _pkce_defaults_off_outside_oauth2(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("auth_mode") != "oauth2" and "pkce" not in data:
            return {**data, "pkce": False}
        return data

    @model_validator(mode="after")
    def _check_consistency(self) -> Provider:
        self._check_auth_mode_fields()
        self._check_urls()
        self._check_templates()
        if self.pkce and self.auth_mode != "oauth2":
            raise ValueError("pkce applies to auth_mode oauth2 only")
        if self.verification is not None and self.api_base_url is None:
            raise ValueError("verification needs api_base_url")
        if (self.rate_limit_reset_header is None) != (self.rate_limit_reset_kind is None):
            raise ValueError("rate_limit_reset_header and rate_limit_reset_kind go together")
        return self

    def _check_auth_mode_fields(self) -> None:
        required = {
            "oauth2": ("authorization_url", "token_url"),
            "oauth2_cc": ("token_url",),
            "oauth1": ("request_token_url", "authorization_url", "token_url"),
            "api_key": ("api_key",),
            "basic": ("basic",),
        }[self.auth_mode]
        if self.name in GENERIC_PROVIDERS:
            required = tuple(field for field in required if not field.endswith("_url"))
        missing = [field for field in required if getattr(self, field) is None]
        if missing:
            raise ValueError(f"auth_mode {self.auth_mode} requires {', '.join(missing)}")
        if self.request_token_url is not None and self.auth_mode != "oauth1":
            raise ValueError("request_token_url is for auth_mode oauth1 only")
        if self.api_key is not None and self.auth_mode != "api_key":
            raise ValueError("api_key injection is for auth_mode api_key only")
        if self.basic is not None and self.auth_mode != "basic":
            raise ValueError("basic injection is for auth_mode basic only")

    def _check_urls(self) -> None:
        if PLACEHOLDER.search(self.docs_url) or not _is_https_url(self.docs_url):
            raise ValueError("docs_url must be a plain https URL")
        for field in _URL_FIELDS:
            url = getattr(self, field)
            if url is not None and not _is_https_url(_sample_render(url)):
                raise ValueError(f"{field} must be an https URL")

    def _check_templates(self) -> None:
        declared = set(self.connection_config_params)
        from_token = set(self.connection_config_from_token.values())
        for key in declared | from_token:
            if not CONFIG_KEY.match(key):
                raise ValueError(f"connection config key {key!r} is not a valid key")
        for where, template in self._templates():
            if template.count("${") != len(PLACEHOLDER.findall(template)):
                raise ValueError(f"{where} has a malformed ${{...}} placeholder")
            for match in PLACEHOLDER.finditer(template):
                key = match.group(1)
                if key not in declared | from_token:
                    raise ValueError(f"{where} uses undeclared connection config key {key!r}")
                if match.start() == 0 and key not in from_token:
                    raise ValueError(f"{where} may start with a token-response key only")

    def _templates(self) -> list[tuple[str, str]]:
        found = [(field, getattr(self, field)) for field in _URL_FIELDS]
        for field in ("authorization_params", "token_params", "proxy_headers"):
            found += [(f"{field}.{key}", value) for key, value in getattr(self, field).items()]
        return [(where, template) for where, template in found if template is not None]

    def to_public_dict(self) -> dict[str, Any]:
        """The entry as JSON-safe data for `GET /providers/{name}`; nothing in it is secret."""
        return self.model_dump(mode="json")


def _sample_render(template: str) -> str:
    """Fill placeholders with harmless samples so a templated URL can be parsed."""

    def sample(match: re.Match[str]) -> str:
        return "https://example.com" if match.start() == 0 else "example"

    return PLACEHOLDER.sub(sample, template)


def _is_https_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname) and not any(c.isspace() for c in url)


@functools.cache
def _read_catalog() -> dict[str, Provider]:
    text = resources.files("terapi").joinpath(CATALOG_FILE).read_text(encoding="utf-8")
    entries = json.loads(text)
    catalog = {}
    for name in sorted(entries):
        if "name" in entries[name]:
            raise ValueError(f"catalog entry {name!r} repeats its name; the key is the name")
        catalog[name] = Provider.model_validate({**entries[name], "name": name})
    return catalog


def load_catalog() -> dict[str, Provider]:
    """Every provider by name, read from `providers.json` once per container and then cached."""
    return dict(_read_catalog())


def get_provider(name: str) -> Provider | None:
    """The provider with this name, or None when the catalog has no such entry."""
    return _read_catalog().get(name)


def list_providers() -> list[Provider]:
    """Every provider, sorted by name, for `GET /providers`."""
    return [_read_catalog()[name] for name in sorted(_read_catalog())]


def render_template(template: str, connection_config: Mapping[str, str]) -> str:
    """Fill `${connection_config.<key>}` placeholders, refusing values that could redirect a URL.

    Raises ValueError naming the missing or unsafe key, never its value.
    """
    pieces: list[str] = []
    end = 0
    placed: list[tuple[str, str]] = []
    for match in PLACEHOLDER.finditer(template):
        key = match.group(1)
        value = connection_config.get(key)
        if not isinstance(value, str) or not value:
            raise ValueError(f"connection config value {key!r} is missing")
        context = _placeholder_context(template, match.start())
        pieces += [template[end : match.start()], _checked_value(key, value, context)]
        placed.append((key, context))
        end = match.end()
    if template.count("${") != len(placed):
        raise ValueError("template has a malformed ${...} placeholder")
    rendered = "".join([*pieces, template[end:]])
    host_keys = [key for key, context in placed if context in ("host", "origin")]
    if host_keys and not _is_public_https_host(rendered):
        raise ValueError(f"connection config value {host_keys[0]!r} does not form a public host")
    return rendered


def _placeholder_context(template: str, start: int) -> str:
    if start == 0:
        return "origin"
    scheme_end = template.find("://")
    if scheme_end == -1 or start < scheme_end:
        return "segment"
    authority_start = scheme_end + 3
    authority_end = min(
        (i for i in (template.find(c, authority_start) for c in "/?#") if i != -1),
        default=len(template),
    )
    return "host" if start < authority_end else "segment"


def _checked_value(key: str, value: str, context: str) -> str:
    if context == "host" and not HOST_VALUE.match(value):
        raise ValueError(f"connection config value {key!r} is not a valid host name")
    if context == "segment" and (not SEGMENT_VALUE.match(value) or ".." in value or value == "."):
        raise ValueError(f"connection config value {key!r} is not a valid path segment")
    if context == "origin":
        if not _is_origin(value):
            raise ValueError(f"connection config value {key!r} is not an https origin")
        return value.rstrip("/")
    return value


def _is_origin(value: str) -> bool:
    parts = urlsplit(value)
    return (
        parts.scheme == "https"
        and bool(HOST_VALUE.match(parts.netloc))
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
        and not value.endswith(("?", "#"))
    )


def _is_public_https_host(url: str) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or ""
    labels = host.split(".")
    return (
        parts.scheme == "https"
        and parts.port is None
        and "@" not in parts.netloc
        and bool(HOST_VALUE.match(host))
        and len(labels) > 1
        and bool(_PUBLIC_TLD.search(labels[-1]))
    )
