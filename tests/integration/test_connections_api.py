"""The integrations and connections API through the gateway path: behaviour and bad input."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.conftest import ApiClient

ODD_IDS = ["a/b", "with space", "emoji-😀", "hash#tag", "percent%20literal", "x" * 255,
           "ünïcödé/and/slashes/"]


def create_integration(api: ApiClient, key: str = "github-prod", **extra: object) -> dict:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": key, "provider": "github", "oauth_client_id": "client-id",
        "oauth_client_secret": "client-secret-value", "oauth_scopes": "repo,user", **extra})
    assert status == 200, body
    return body


def import_connection(api: ApiClient, connection_id: str, key: str = "github-prod",
                      **extra: object) -> tuple[int, dict]:
    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": connection_id, "provider_config_key": key,
        "credentials": {"access_token": "gho_access", "refresh_token": "ghr_refresh",
                        "expires_in": 3600}, **extra})
    return status, body


def connection_path(connection_id: str, suffix: str = "", key: str = "github-prod") -> str:
    return f"/connection/{quote(connection_id, safe='')}{suffix}?provider_config_key={key}"


def test_integration_round_trip_hides_the_client_secret(api: ApiClient) -> None:
    created = create_integration(api)

    status, fetched, _ = api.request("GET", "/integration/github-prod")

    assert status == 200
    assert fetched["unique_key"] == "github-prod" and fetched["provider"] == "github"
    assert fetched["connection_count"] == 0 and fetched["oauth_scopes"] == "repo,user"
    assert fetched["callback_url"] == "http://localhost:3003/oauth/callback"
    assert "client-secret-value" not in str(created) + str(fetched)


def test_integration_patch_changes_client_and_scopes(api: ApiClient) -> None:
    create_integration(api)

    status, body, _ = api.request("PATCH", "/integration/github-prod", json={
        "oauth_client_id": "new-id", "oauth_client_secret": "new-secret", "oauth_scopes": ["a"]})

    assert status == 200
    assert body["oauth_client_id"] == "new-id" and body["oauth_scopes"] == "a"
    assert "new-secret" not in str(body)


def test_duplicate_integration_is_a_conflict(api: ApiClient) -> None:
    create_integration(api)

    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": "github-prod", "provider": "github"})

    assert status == 409 and body["error"] == "integration_exists"


def test_unknown_provider_is_refused(api: ApiClient) -> None:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": "x", "provider": "no-such-provider"})

    assert status == 400 and body["error"] == "unknown_provider"
    assert "provider" in body["message"]


def test_generic_provider_requires_its_urls(api: ApiClient) -> None:
    status, body, _ = api.request("POST", "/integration", json={
        "provider_config_key": "inhouse", "provider": "oauth2"})

    assert status == 400 and body["message"].startswith("authorization_url")


@pytest.mark.parametrize("connection_id", ODD_IDS)
def test_any_connection_id_round_trips_exactly(api: ApiClient, connection_id: str) -> None:
    create_integration(api)
    status, created = import_connection(api, connection_id)
    assert status == 200, created

    status, fetched, _ = api.request("GET", connection_path(connection_id))
    _, listed, _ = api.request("GET", f"/connection?connection_id={quote(connection_id)}")

    assert status == 200 and fetched["id"] == connection_id
    assert [c["id"] for c in listed["connections"]] == [connection_id]


def test_import_shows_status_but_never_the_token(api: ApiClient) -> None:
    create_integration(api)

    status, body = import_connection(api, "user-123", metadata={"tenant": "acme"})

    assert status == 200
    assert body["provider"] == "github" and body["metadata"] == {"tenant": "acme"}
    assert body["credentials"]["type"] == "oauth2"
    assert body["credentials"]["status"] == "valid" and body["credentials"]["expires_at"]
    assert "gho_access" not in str(body) and "ghr_refresh" not in str(body)


def test_posting_an_existing_id_replaces_credentials_and_keeps_the_count(api: ApiClient) -> None:
    create_integration(api)
    import_connection(api, "user-123", metadata={"a": 1})

    status, body, _ = api.request("POST", "/connection", json={
        "connection_id": "user-123", "provider_config_key": "github-prod",
        "credentials": {"access_token": "second"}})
    _, integration, _ = api.request("GET", "/integration/github-prod")
    _, token, _ = api.request("GET", "/auth/token/github-prod/user-123")

    assert status == 200 and body["metadata"] == {"a": 1}
    assert body["credentials"]["expires_at"] is None
    assert integration["connection_count"] == 1
    assert token["access_token"] == "second"


def test_credentials_type_defaults_from_the_provider_and_is_checked(api: ApiClient) -> None:
    api.request("POST", "/integration", json={"provider_config_key": "stripe",
                                              "provider": "stripe"})

    bad, bad_body, _ = api.request("POST", "/connection", json={
        "connection_id": "c", "provider_config_key": "stripe",
        "credentials": {"access_token": "x"}})
    typed, typed_body, _ = api.request("POST", "/connection", json={
        "connection_id": "c", "provider_config_key": "stripe",
        "credentials": {"type": "custom", "anything": {"nested": True}}})

    assert bad == 400 and bad_body["message"].startswith("credentials.")
    assert typed == 200 and typed_body["credentials"]["type"] == "custom"


def test_list_filters_and_pages_with_an_opaque_cursor(api: ApiClient) -> None:
    create_integration(api)
    create_integration(api, "github-two")
    for n in range(5):
        import_connection(api, f"user-{n}")
    import_connection(api, "user-0", key="github-two")

    seen, cursor = [], None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        status, page, _ = api.request(
            "GET", f"/connection?provider_config_key=github-prod&limit=2{suffix}")
        assert status == 200 and len(page["connections"]) <= 2
        seen += [c["id"] for c in page["connections"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    _, by_id, _ = api.request("GET", "/connection?connection_id=user-0")
    _, everything, _ = api.request("GET", "/connection")

    assert sorted(seen) == [f"user-{n}" for n in range(5)]
    assert sorted(c["provider_config_key"] for c in by_id["connections"]) == [
        "github-prod", "github-two"]
    assert len(everything["connections"]) == 6


def test_metadata_patch_merges_and_put_replaces(api: ApiClient) -> None:
    create_integration(api)
    import_connection(api, "a/b", metadata={"keep": 1, "change": 1})

    _, merged, _ = api.request("PATCH", connection_path("a/b", "/metadata"),
                               json={"change": 2, "new": 3})
    _, replaced, _ = api.request("PUT", connection_path("a/b", "/metadata"), json={"only": True})

    assert merged["metadata"] == {"keep": 1, "change": 2, "new": 3}
    assert replaced["metadata"] == {"only": True}


def test_delete_removes_the_connection_and_uncounts_it(api: ApiClient) -> None:
    create_integration(api)
    import_connection(api, "user-1")

    status, _, _ = api.request("DELETE", connection_path("user-1"))
    again, body, _ = api.request("GET", connection_path("user-1"))
    _, integration, _ = api.request("GET", "/integration/github-prod")

    assert status == 204
    assert again == 404 and body["error"] == "unknown_connection"
    assert integration["connection_count"] == 0


def test_deleting_an_integration_deletes_its_connections_and_secrets(api: ApiClient) -> None:
    import boto3

    create_integration(api)
    import_connection(api, "user-1")

    status, _, _ = api.request("DELETE", "/integration/github-prod")
    listed, page, _ = api.request("GET", "/connection?provider_config_key=github-prod")
    secrets = boto3.client("secretsmanager").list_secrets()["SecretList"]

    assert status == 204 and listed == 200 and page["connections"] == []
    assert [s["Name"] for s in secrets if "/connections/" in s["Name"]
            or "/integrations/" in s["Name"]] == []
    assert api.request("GET", "/integration/github-prod")[0] == 404


BAD_BODIES = [
    ("{not json", "invalid_json", ""),
    ("[]", "invalid_json", ""),
    ({"provider_config_key": "github-prod"}, "invalid_request", "connection_id"),
    ({"connection_id": "", "provider_config_key": "github-prod"}, "invalid_request",
     "connection_id"),
    ({"connection_id": "x" * 256, "provider_config_key": "github-prod"}, "invalid_request",
     "connection_id"),
    ({"connection_id": 5, "provider_config_key": "github-prod"}, "invalid_request",
     "connection_id"),
    ({"connection_id": "ok", "provider_config_key": "github-prod", "credentials": {},
      "surprise": 1}, "invalid_request", "surprise"),
    ({"connection_id": "ok", "provider_config_key": "github-prod", "credentials": {}},
     "invalid_request", "credentials.access_token"),
    ({"connection_id": "ok", "provider_config_key": "github-prod",
      "credentials": {"access_token": "t", "expires_at": "tomorrow"}}, "invalid_request",
     "credentials.expires_at"),
    ({"connection_id": "ok", "provider_config_key": "nope",
      "credentials": {"access_token": "t"}}, "unknown_integration", "nope"),
    ({"connection_id": "ok", "provider_config_key": "github-prod",
      "credentials": {"access_token": "t"}, "metadata": {"big": "x" * 20000}},
     "metadata_too_large", "metadata"),
    ({"connection_id": "ok", "provider_config_key": "github-prod",
      "credentials": {"access_token": "t"}, "metadata": ["not", "an", "object"]},
     "invalid_request", "metadata"),
]


@pytest.mark.parametrize(("body", "code", "field"), BAD_BODIES)
def test_bad_connection_input_is_a_named_4xx(api: ApiClient, body: object, code: str,
                                              field: str) -> None:
    create_integration(api)
    raw = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body

    status, reply, _ = api.request("POST", "/connection", json=json_body, body=raw or b"")

    assert status in (400, 404)
    assert set(reply) == {"error", "message"} and reply["error"] == code
    assert field in reply["message"]


def test_a_lone_surrogate_connection_id_is_refused_not_a_500(api: ApiClient) -> None:
    create_integration(api)

    status, reply, _ = api.request(
        "POST", "/connection", body='{"connection_id": "\\ud800", "provider_config_key": '
                                    '"github-prod", "credentials": {"access_token": "t"}}')

    assert status == 400 and "connection_id" in reply["message"]


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/connection/x", 400, "invalid_request"),
    ("GET", "/connection?limit=0", 400, "invalid_request"),
    ("GET", "/connection?limit=abc", 400, "invalid_request"),
    ("GET", "/connection?cursor=garbage", 400, "invalid_cursor"),
    ("GET", "/integration/missing", 404, "unknown_integration"),
    ("DELETE", "/integration/missing", 404, "unknown_integration"),
    ("GET", "/connection/x?provider_config_key=missing", 404, "unknown_connection"),
    ("GET", "/auth/token/github-prod/x?force_refresh=maybe", 400, "invalid_request"),
    ("GET", "/providers/no-such-provider", 404, "unknown_provider"),
])
def test_bad_queries_and_unknown_resources(api: ApiClient, method: str, path: str, status: int,
                                           code: str) -> None:
    create_integration(api)

    got, reply, _ = api.request(method, path)

    assert (got, reply["error"]) == (status, code)
    assert reply["message"]


def test_a_cursor_from_another_listing_is_refused(api: ApiClient) -> None:
    create_integration(api)
    for n in range(3):
        import_connection(api, f"user-{n}")
    _, page, _ = api.request("GET", "/connection?provider_config_key=github-prod&limit=1")

    status, reply, _ = api.request("GET", f"/connection?limit=1&cursor={page['next_cursor']}")

    assert status == 400 and reply["error"] == "invalid_cursor"


@pytest.mark.parametrize("key", [None, "wrong-key"])
def test_missing_or_wrong_secret_key_is_a_401_with_the_error_shape(api: ApiClient,
                                                                    key: str | None) -> None:
    status, reply, _ = api.request("GET", "/connection", key=key)

    assert status == 401 and set(reply) == {"error", "message"}
    assert reply["error"] == "unauthorized"


def test_providers_are_listed_and_described(api: ApiClient) -> None:
    status, listed, _ = api.request("GET", "/providers")
    one, github, _ = api.request("GET", "/providers/github")

    assert status == 200 and len(listed["providers"]) >= 60
    assert one == 200 and github["auth_mode"] == "oauth2"
