"""The provider catalog: every shipped entry is valid, and templating cannot redirect a request."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import ValidationError

from terapi import catalog
from terapi.catalog import Provider, get_provider, list_providers, load_catalog, render_template

CATALOG_PATH = Path(catalog.__file__).with_name("providers.json")
REQUIRED = ("github", "slack", "hubspot", "salesforce", "google", "linear", "notion", "stripe")
CORE_CATEGORIES = {
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
}
URL_FIELDS = (
    "authorization_url",
    "token_url",
    "refresh_url",
    "request_token_url",
    "api_base_url",
    "revoke_url",
    "docs_url",
)


def raw_entries() -> dict[str, dict]:
    return json.loads(CATALOG_PATH.read_text(encoding="utf-8"))


def sample_config(provider: Provider) -> dict[str, str]:
    config = dict.fromkeys(provider.connection_config_params, "acme.example.com")
    for key in provider.connection_config_from_token.values():
        config[key] = "https://acme.example.com"
    return config


def minimal(**overrides) -> dict:
    entry = {
        "name": "acme",
        "display_name": "Acme",
        "categories": ["other"],
        "docs_url": "https://docs.acme.com/oauth",
        "auth_mode": "oauth2",
        "authorization_url": "https://acme.com/oauth/authorize",
        "token_url": "https://acme.com/oauth/token",
    }
    return {**entry, **overrides}


def test_every_file_entry_validates_and_its_key_is_its_name():
    for name, entry in raw_entries().items():
        assert "name" not in entry, name
        assert Provider.model_validate({**entry, "name": name}).name == name


def test_catalog_is_read_from_the_json_file():
    entries = raw_entries()
    loaded = load_catalog()

    assert set(loaded) == set(entries)
    for name, entry in entries.items():
        assert loaded[name] == Provider.model_validate({**entry, "name": name})
    assert "slack.com" not in Path(catalog.__file__).read_text(encoding="utf-8")


def test_catalog_has_at_least_sixty_providers_including_the_required_ones():
    providers = load_catalog()

    assert len(providers) >= 60
    assert set(REQUIRED) <= set(providers)
    assert providers["oauth2"].auth_mode == "oauth2"
    assert providers["oauth2"].authorization_url is None


def test_catalog_covers_the_common_saas_categories_and_every_auth_mode():
    providers = list_providers()
    used = {category for provider in providers for category in provider.categories}

    assert len(used & CORE_CATEGORIES) >= 8
    assert {provider.auth_mode for provider in providers} == {
        "oauth2",
        "oauth2_cc",
        "oauth1",
        "api_key",
        "basic",
    }


def test_list_providers_is_sorted_by_name_and_lookups_are_cached():
    names = [provider.name for provider in list_providers()]

    assert names == sorted(names)
    assert get_provider("github") is get_provider("github")
    assert get_provider("no-such-provider") is None


def test_every_url_is_https_and_parses_once_rendered():
    for provider in list_providers():
        config = sample_config(provider)
        for field in URL_FIELDS:
            template = getattr(provider, field)
            if template is None:
                continue
            parts = urlsplit(render_template(template, config))
            assert parts.scheme == "https", (provider.name, field)
            assert parts.hostname, (provider.name, field)


def test_templates_reference_only_declared_connection_config_keys():
    for provider in list_providers():
        declared = set(provider.connection_config_params)
        declared |= set(provider.connection_config_from_token.values())
        texts = [getattr(provider, field) or "" for field in URL_FIELDS]
        texts += [*provider.authorization_params.values(), *provider.token_params.values()]
        texts += list(provider.proxy_headers.values())
        used = {key for text in texts for key in catalog.PLACEHOLDER.findall(text)}
        assert used <= declared, provider.name
        assert sum(text.count("${") for text in texts) == sum(
            len(catalog.PLACEHOLDER.findall(text)) for text in texts
        ), provider.name


def test_api_key_and_basic_providers_say_how_to_verify_a_credential():
    for provider in list_providers():
        if provider.auth_mode in ("api_key", "basic"):
            assert provider.verification is not None, provider.name


def test_known_provider_quirks_are_recorded():
    slack, slack_user = get_provider("slack"), get_provider("slack-user")
    salesforce, notion, google = (get_provider(n) for n in ("salesforce", "notion", "google"))

    assert slack.scope_separator == ","
    assert slack.token_url == "https://slack.com/api/oauth.v2.access"
    assert slack_user.token_response_path == "authed_user"
    assert salesforce.connection_config_from_token == {"instance_url": "instance_url"}
    assert notion.token_auth_method == "client_secret_basic"
    assert "Notion-Version" in notion.proxy_headers
    assert google.authorization_params == {"access_type": "offline", "prompt": "consent"}
    assert get_provider("stripe").verification.path == "/v1/account"


def test_model_json_schema_accepts_every_entry():
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(Provider.model_json_schema())

    for name, entry in raw_entries().items():
        validator.validate({**entry, "name": name})
    assert not validator.is_valid({**minimal(), "surprise": True})


def test_public_view_is_json_safe_and_complete():
    view = get_provider("zendesk").to_public_dict()

    assert json.loads(json.dumps(view)) == view
    assert view["connection_config_params"] == ["subdomain"]


def test_render_template_fills_host_path_and_origin_placeholders():
    zendesk, bamboo = get_provider("zendesk"), get_provider("bamboohr")

    assert render_template(zendesk.token_url, {"subdomain": "acme"}) == (
        "https://acme.zendesk.com/oauth/tokens"
    )
    assert render_template(bamboo.api_base_url, {"subdomain": "acme"}).endswith("/acme/v1")
    assert (
        render_template(
            "${connection_config.instance_url}/services/data",
            {"instance_url": "https://na1.my.salesforce.com/"},
        )
        == "https://na1.my.salesforce.com/services/data"
    )


@pytest.mark.parametrize("value", ["evil.com/", "a@b", "x#", "../", "a b", "host:8080", "a?b"])
def test_render_template_rejects_host_injection_without_echoing_the_value(value):
    with pytest.raises(ValueError, match="subdomain") as raised:
        render_template(get_provider("zendesk").token_url, {"subdomain": value})
    assert value not in str(raised.value)


@pytest.mark.parametrize("value", ["../", "..", "a/b", "x#", "a?b", "evil.com/"])
def test_render_template_rejects_path_traversal_without_echoing_the_value(value):
    with pytest.raises(ValueError, match="subdomain") as raised:
        render_template(get_provider("bamboohr").api_base_url, {"subdomain": value})
    assert value not in str(raised.value)


@pytest.mark.parametrize(
    "value",
    [
        "http://na1.my.salesforce.com",
        "https://evil.com/path",
        "https://user@na1.salesforce.com",
        "https://na1.salesforce.com:8443",
        "https://na1.salesforce.com?x=1",
        "https://169.254.169.254",
        "https://localhost",
        "na1.salesforce.com",
    ],
)
def test_render_template_accepts_only_public_https_origins_from_the_token(value):
    with pytest.raises(ValueError, match="instance_url") as raised:
        render_template(get_provider("salesforce").api_base_url, {"instance_url": value})
    assert value not in str(raised.value)


def test_render_template_refuses_ip_literal_tenant_domains():
    with pytest.raises(ValueError, match="domain"):
        render_template(get_provider("auth0-cc").token_url, {"domain": "169.254.169.254"})


def test_render_template_names_a_missing_key():
    with pytest.raises(ValueError, match="'subdomain' is missing"):
        render_template(get_provider("zendesk").token_url, {})


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"token_url": None}, "requires token_url"),
        ({"authorization_url": "http://acme.com/oauth/authorize"}, "https"),
        ({"token_url": "https://${connection_config.tenant}.acme.com/token"}, "undeclared"),
        ({"token_url": "https://${connection_config.Tenant}.acme.com/token"}, "malformed"),
        (
            {"api_base_url": "${connection_config.host}/v1", "connection_config_params": ["host"]},
            "token-response key",
        ),
        ({"auth_mode": "api_key"}, "requires api_key"),
        ({"auth_mode": "basic", "pkce": False}, "requires basic"),
        ({"auth_mode": "oauth1"}, "requires request_token_url"),
        ({"request_token_url": "https://acme.com/request"}, "oauth1 only"),
        ({"categories": ["weather"]}, "categories"),
        ({"name": "Acme"}, "name"),
        ({"rate_limit_reset_header": "retry-after"}, "go together"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_model_rejects_inconsistent_entries(overrides, complaint):
    with pytest.raises(ValidationError, match=complaint):
        Provider.model_validate(minimal(**overrides))


def test_only_the_generic_providers_may_omit_their_urls():
    generic = Provider.model_validate(
        minimal(name="oauth2", authorization_url=None, token_url=None)
    )

    assert generic.authorization_url is None
    with pytest.raises(ValidationError, match="requires token_url"):
        Provider.model_validate(minimal(auth_mode="oauth2_cc", token_url=None))


def test_api_key_format_must_carry_the_key_once():
    with pytest.raises(ValidationError, match="exactly once"):
        Provider.model_validate(
            minimal(
                auth_mode="api_key",
                api_key={"location": "header", "name": "Authorization", "format": "Bearer"},
            )
        )
