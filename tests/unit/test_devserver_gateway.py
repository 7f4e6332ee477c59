"""The local gateway builds the events an HTTP API builds and routes and answers like one."""

from __future__ import annotations

import base64
import http.client
import json
import logging
import textwrap
import threading
from pathlib import Path

import pytest

from devserver.gateway import (
    GatewayServer,
    LocalApi,
    RawRequest,
    lambda_result_response,
    split_target,
)
from devserver.template import load_template

ECHO_APP = '''
"""Throwaway functions: echo the event, authorize on a header, fail, answer in binary."""
import base64
import json

AUTHORIZER_EVENTS = []


def echo(event, context):
    return {"statusCode": 200, "headers": {"content-type": "application/json"},
            "body": json.dumps(event)}


def authorize(event, context):
    AUTHORIZER_EVENTS.append(event)
    good = event["headers"].get("x-key") == "good"
    return {"isAuthorized": good, "context": {"user": "u1", "authenticated": good}}


def explode(event, context):
    raise RuntimeError("handler blew up")


def binary(event, context):
    return {"statusCode": 201, "isBase64Encoded": True,
            "body": base64.b64encode(b"\\x00\\x01\\xff").decode(),
            "headers": {"Content-Type": "application/octet-stream"},
            "cookies": ["a=1; Path=/", "b=2"],
            "multiValueHeaders": {"X-Many": ["one", "two"]}}


def plain(event, context):
    return {"hello": "world"}
'''

GATEWAY_TEMPLATE = """
Transform: AWS::Serverless-2016-10-31
Globals:
  Function: {CodeUri: functions/echo/, Timeout: 3}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Key
        Authorizers:
          Key:
            FunctionArn: !GetAtt Authorizer.Arn
            AuthorizerPayloadFormatVersion: "2.0"
            EnableSimpleResponses: true
  Authorizer:
    Type: AWS::Serverless::Function
    Properties: {Handler: app.authorize}
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.echo
      Events:
        Greedy: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/items/{item+}", Method: GET}}
        One: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/things/{id}", Method: GET}}
        Rest:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: "/things/{rest+}", Method: GET}
        Any: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/things/{id}", Method: ANY}}
        Public:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Path: /public
            Method: POST
            Auth: {Authorizer: NONE}
  Special:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.plain
      Events:
        Static:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Path: /things/special, Method: GET}
  Exploding:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.explode
      Events:
        Boom: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /boom, Method: POST}}
  Binary:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.binary
      Events:
        Bin: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /bin, Method: GET}}
"""


@pytest.fixture
def local_api(tmp_path: Path) -> LocalApi:
    """A gateway over throwaway functions (no AWS needed)."""
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "app.py").write_text(ECHO_APP)
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(GATEWAY_TEMPLATE))
    return LocalApi(load_template(path), domain="localhost:3003")


def call(api: LocalApi, method: str, target: str, *, headers: list[tuple[str, str]] | None = None,
         body: bytes = b"", key: str | None = "good") -> tuple[int, dict, dict]:
    sent = list(headers or [])
    if key is not None:
        sent.append(("X-Key", key))
    reply = api.handle(RawRequest(method=method, target=target, headers=sent, body=body))
    parsed = json.loads(reply.body) if reply.body else {}
    return reply.status, parsed, dict(reply.headers)


def test_raw_path_is_percent_decoded_slash_space_and_emoji_included(local_api: LocalApi):
    status, event, _ = call(local_api, "GET", "/items/a%2Fb%20c%F0%9F%98%80")

    assert status == 200
    assert event["rawPath"] == "/items/a/b c😀"
    assert event["requestContext"]["http"]["path"] == "/items/a/b c😀"
    assert event["pathParameters"] == {"item": "a/b c😀"}
    assert event["routeKey"] == "GET /items/{item+}"


def test_raw_path_is_cut_at_a_decoded_question_mark(local_api: LocalApi):
    status, event, _ = call(local_api, "GET", "/items/x%3Fy?q=1")

    assert status == 200
    assert event["rawPath"] == "/items/x"
    assert event["rawQueryString"] == "q=1"
    assert split_target("/a%3Fb%3Fc?d") == ("/a", "d")


def test_query_string_stays_encoded_and_parameters_are_decoded_and_joined(local_api: LocalApi):
    _, event, _ = call(local_api, "GET", "/items/1?a=1&a=2&b=x%20y&c=%2B&d=%F0%9F%98%80&e")

    assert event["rawQueryString"] == "a=1&a=2&b=x%20y&c=%2B&d=%F0%9F%98%80&e"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x y", "c": "+", "d": "😀",
                                              "e": ""}


def test_no_query_string_means_no_parameters(local_api: LocalApi):
    _, event, _ = call(local_api, "GET", "/items/1")

    assert event["rawQueryString"] == ""
    assert "queryStringParameters" not in event


def test_headers_are_lower_cased_repeats_joined_and_cookies_split_out(local_api: LocalApi):
    headers = [("X-Multi", "a"), ("x-multi", "b"), ("Cookie", "s=1; t=2"),
               ("User-Agent", "tests/1")]

    _, event, _ = call(local_api, "GET", "/items/1", headers=headers)

    assert event["headers"]["x-multi"] == "a,b"
    assert event["headers"]["x-forwarded-proto"] == "http"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["s=1", "t=2"]
    context = event["requestContext"]
    assert context["http"]["userAgent"] == "tests/1"
    assert context["http"]["method"] == "GET"
    assert context["http"]["sourceIp"] == "127.0.0.1"
    assert context["stage"] == "$default"
    assert context["domainName"] == "localhost:3003"
    assert context["requestId"] and context["timeEpoch"] > 0 and context["time"]
    assert context["accountId"] and context["apiId"]
    assert event["version"] == "2.0"


def test_binary_body_is_base64_and_text_body_is_text(local_api: LocalApi):
    _, binary, _ = call(local_api, "POST", "/public", body=b"\x00\xff\x10",
                        headers=[("Content-Type", "application/octet-stream")], key=None)
    _, invalid_utf8, _ = call(local_api, "POST", "/public", body=b"\xff\xfe",
                              headers=[("Content-Type", "application/json")], key=None)
    _, text, _ = call(local_api, "POST", "/public", body='{"a": "é"}'.encode(),
                      headers=[("Content-Type", "application/json")], key=None)

    assert binary["isBase64Encoded"] is True
    assert base64.b64decode(binary["body"]) == b"\x00\xff\x10"
    assert invalid_utf8["isBase64Encoded"] is True
    assert text["isBase64Encoded"] is False
    assert text["body"] == '{"a": "é"}'


def test_static_beats_single_parameter_beats_greedy_and_exact_method_beats_any(
        local_api: LocalApi):
    _, static, _ = call(local_api, "GET", "/things/special")
    _, single, _ = call(local_api, "GET", "/things/42")
    _, greedy, _ = call(local_api, "GET", "/things/42/more")
    _, any_method, _ = call(local_api, "PATCH", "/things/42")

    assert static == {"hello": "world"}
    assert single["routeKey"] == "GET /things/{id}"
    assert single["pathParameters"] == {"id": "42"}
    assert greedy["routeKey"] == "GET /things/{rest+}"
    assert greedy["pathParameters"] == {"rest": "42/more"}
    assert any_method["routeKey"] == "ANY /things/{id}"


def test_unknown_route_or_method_is_a_404_in_the_api_error_shape(local_api: LocalApi):
    missing_path = call(local_api, "GET", "/nowhere")
    wrong_method = call(local_api, "DELETE", "/public")
    empty_greedy = call(local_api, "GET", "/items/")

    for status, body, _ in (missing_path, wrong_method, empty_greedy):
        assert status == 404
        assert body["error"] == "not_found" and body["message"]


def test_authorizer_context_reaches_the_function(local_api: LocalApi):
    status, event, _ = call(local_api, "GET", "/items/1?x=1", key="good")

    assert status == 200
    assert event["requestContext"]["authorizer"] == {
        "lambda": {"user": "u1", "authenticated": True}}
    seen = local_api.runner.handler("Authorizer").__globals__["AUTHORIZER_EVENTS"][-1]
    assert seen["type"] == "REQUEST"
    assert seen["version"] == "2.0"
    assert seen["identitySource"] == []
    assert seen["routeArn"].endswith("/$default/GET/items/1")
    assert seen["rawQueryString"] == "x=1"
    assert "body" not in seen


def test_authorizer_denial_is_a_403_and_public_routes_skip_the_authorizer(local_api: LocalApi):
    denied = call(local_api, "GET", "/items/1", key="bad")
    events = local_api.runner.handler("Authorizer").__globals__["AUTHORIZER_EVENTS"]
    calls_before = len(events)
    status, public, _ = call(local_api, "POST", "/public", key=None)

    assert denied[0] == 403
    assert denied[1]["error"] == "forbidden" and denied[1]["message"]
    assert status == 200
    assert "authorizer" not in public["requestContext"]
    assert len(events) == calls_before


def test_a_failing_handler_is_a_502_and_its_traceback_is_logged_without_the_body(
        local_api: LocalApi, caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.ERROR, logger="devserver"):
        status, body, _ = call(local_api, "POST", "/boom", body=b'{"password": "hunter2"}')

    assert status == 502
    assert body["error"] == "bad_gateway" and body["message"]
    assert "handler blew up" in caplog.text
    assert "hunter2" not in caplog.text


def test_reply_headers_cookies_and_base64_bodies_are_translated(local_api: LocalApi):
    reply = local_api.handle(RawRequest("GET", "/bin", [("X-Key", "good")]))

    assert reply.status == 201
    assert reply.body == b"\x00\x01\xff"
    assert ("Set-Cookie", "a=1; Path=/") in reply.headers
    assert ("Set-Cookie", "b=2") in reply.headers
    assert ("X-Many", "one") in reply.headers and ("X-Many", "two") in reply.headers


def test_a_plain_return_value_is_inferred_as_a_200_json_reply():
    for value in ({"a": 1}, "text", [1, 2]):
        reply = lambda_result_response(value)

        assert reply.status == 200
        assert reply.header("content-type") == "application/json"
        assert json.loads(reply.body) == value


def test_the_http_server_serves_real_requests(local_api: LocalApi):
    server = GatewayServer(("127.0.0.1", 0))
    server.api = local_api
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        connection.request("GET", "/items/a%2Fb%20%F0%9F%98%80?q=%2F", headers={"X-Key": "good"})
        reply = connection.getresponse()
        event = json.loads(reply.read())
        connection.request("POST", "/public", body=b"\x00\x01",
                           headers={"Content-Type": "application/octet-stream"})
        posted = json.loads(connection.getresponse().read())
        connection.close()
    finally:
        server.shutdown()
        server.server_close()

    assert reply.status == 200
    assert event["rawPath"] == "/items/a/b 😀"
    assert event["rawQueryString"] == "q=%2F"
    assert event["queryStringParameters"] == {"q": "/"}
    assert base64.b64decode(posted["body"]) == b"\x00\x01"
