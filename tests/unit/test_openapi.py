"""The OpenAPI document matches the template's routes and is a valid OpenAPI 3.0 shape."""

from __future__ import annotations

from devserver import TEMPLATE_PATH
from devserver.template import load_template
from terapi.openapi import OPERATIONS, document, statuses


def test_every_template_route_is_documented_and_nothing_else() -> None:
    routes = {(r.method, r.path) for r in load_template(TEMPLATE_PATH).routes}

    assert {(o.method, o.path) for o in OPERATIONS} == routes


def test_request_schemas_come_from_the_models_that_validate_them() -> None:
    schemas = document()["components"]["schemas"]

    create = schemas["CreateConnectionRequest"]
    assert set(create["required"]) == {"connection_id", "provider_config_key"}
    assert create["additionalProperties"] is False
    assert "CreateConnectSessionRequest" in schemas and "WebhookSettingsRequest" in schemas


def test_every_reference_resolves_and_errors_use_the_error_shape() -> None:
    doc = document()
    schemas = doc["components"]["schemas"]
    text = str(doc)
    references = {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}

    assert references <= set(schemas)
    for path in doc["paths"].values():
        for operation in path.values():
            for status, reply in operation["responses"].items():
                if status != "default" and int(status) >= 400:
                    assert reply["content"]["application/json"]["schema"] == {
                        "$ref": "#/components/schemas/Error"}


def test_secret_key_routes_declare_401_and_browser_routes_are_public() -> None:
    for operation in OPERATIONS:
        assert (401 in statuses(operation)) or operation.public
    public = {o.path for o in OPERATIONS if o.public}
    assert public == {"/oauth/connect/{provider_config_key}", "/oauth/callback"}
