"""How the browser-facing OAuth routes answer: a result page, a redirect, or JSON.

The result page posts `{type: "terapi:connect", success, connection_id, provider_config_key,
error?, message?}` to `window.opener` and closes. The message never holds a credential, so when
the session declared no `origin` it may go to `*`. Every text shown is HTML-escaped, data inside
the script is JSON with `<`, `>` and `&` escaped, and a Content-Security-Policy allows only that
one script (by hash). Callers sending `Accept: application/json` get `{error, message}` or the
connection object instead; a session with `success_url`/`error_url` gets a 302 there.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import Response

from terapi.api import error_reply, json_reply
from terapi.services.connect import FlowContext, FlowError, FlowResult, add_query

MESSAGE_TYPE = "terapi:connect"
_STYLE = ("body{font-family:system-ui,sans-serif;margin:0;display:flex;min-height:100vh;"
          "align-items:center;justify-content:center;background:#f6f7f9;color:#1d2329}"
          "main{max-width:32rem;padding:2rem;background:#fff;border-radius:8px;"
          "box-shadow:0 1px 3px rgba(0,0,0,.12)}h1{font-size:1.25rem;margin-top:0}"
          ".hint{color:#5d6975;font-size:.875rem}")
_BASE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                 "X-Content-Type-Options": "nosniff"}


def wants_json(headers: Mapping[str, str] | None) -> bool:
    """True when the caller asked for JSON (an API client), not a page (a browser)."""
    accept = {k.lower(): v for k, v in (headers or {}).items()}.get("accept", "")
    return "application/json" in accept.lower()


def redirect_reply(url: str) -> Response:
    """A 302 that leaks neither its own URL (which holds a token) nor its target as referrer."""
    return Response(status_code=302, headers={**_BASE_HEADERS, "Location": url}, body="")


def success_reply(result: FlowResult, json_wanted: bool) -> Response:
    """Report a stored connection: JSON, a redirect to `success_url`, or the result page."""
    context = result.context
    if json_wanted:
        return json_reply(result.connection)
    if context.success_url:
        return redirect_reply(add_query(context.success_url, _ids(context)))
    return result_page(200, context, None, None)


def failure_reply(error: FlowError, json_wanted: bool) -> Response:
    """Report a refused attempt: `{error, message}`, a redirect to `error_url`, or the page."""
    context = error.context
    if json_wanted:
        return error_reply(error.status, error.code, error.message)
    if context.error_url:
        params = {k: v for k, v in _ids(context).items() if v} | {"error": error.code}
        return redirect_reply(add_query(context.error_url, params))
    return result_page(error.status, context, error.code, error.message)


def result_page(status: int, context: FlowContext, error: str | None,
                message: str | None) -> Response:
    """The page that tells the opener window the outcome, then closes itself."""
    success = error is None
    payload: dict[str, Any] = {"type": MESSAGE_TYPE, "success": success, **_ids(context)}
    if not success:
        payload.update(error=error, message=message)
    script = (f"(function(){{var m={_script_json(payload)};"
              f"if(window.opener){{window.opener.postMessage(m,"
              f"{_script_json(context.origin or '*')});window.close();}}}})();")
    title = "Connected" if success else "Connection failed"
    text = ("The account is connected. You can close this window." if success
            else f"{message} ({error})")
    body = (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>"
            f'<p class="hint">This window closes by itself when it was opened by the app.</p>'
            f"</main><script>{script}</script></body></html>")
    policy = (f"default-src 'none'; script-src '{_hash(script)}'; style-src '{_hash(_STYLE)}'; "
              "frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
    headers = {**_BASE_HEADERS, "Content-Security-Policy": policy}
    return Response(status_code=status, content_type="text/html; charset=utf-8", body=body,
                    headers=headers)


def _ids(context: FlowContext) -> dict[str, Any]:
    return {"connection_id": context.connection_id,
            "provider_config_key": context.provider_config_key}


def _script_json(value: Any) -> str:
    text = json.dumps(value)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "sha256-" + base64.b64encode(digest).decode()
