"""Read `template.yaml` the way the local runtime needs it: resources, functions, routes, events.

Everything is discovered from the template, so a function, queue, schedule or public route added
there is served by `make dev` without touching this package. Intrinsic functions are resolved
against local values: the stack is `terapi-local`, a table is named `terapi-local-<LogicalId>`,
a parameter takes its default unless the caller overrides it (the dev server points `PublicUrl`
at itself), and a `Ref`/`Fn::GetAtt` to a provisioned resource takes the value recorded when it
was created (`Refs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STACK_NAME = "terapi-local"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
API_ID = "terapilocal"
PSEUDO_PARAMETERS = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/local",
    "AWS::NoValue": None,
}
FUNCTION_TYPE = "AWS::Serverless::Function"
HTTP_API_TYPE = "AWS::Serverless::HttpApi"
IMPLICIT_API = "ServerlessHttpApi"
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class TemplateError(ValueError):
    """The template uses something the local runtime cannot resolve or run."""


class _CfnLoader(yaml.SafeLoader):
    """A YAML loader that understands CloudFormation's short-form intrinsic tags."""


def _short_form(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a CloudFormation/SAM YAML file, turning `!X v` into `{"Fn::X": v}` or `{"Ref": v}`."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass


@dataclass
class Refs:
    """Physical values of provisioned resources: what `Ref` and `Fn::GetAtt` resolve to."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        """Remember a resource's `Ref` value and its attributes (`Arn`, `QueueUrl`, ...)."""
        self.values[logical_id] = {"Ref": ref, **attributes}

    def get(self, logical_id: str, attribute: str = "Ref") -> Any:
        """The recorded value, or a `TemplateError` naming what is missing."""
        try:
            return self.values[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"no local value for {logical_id}.{attribute}") from None


@dataclass(frozen=True)
class HttpRoute:
    """One `HttpApi` event: a route key served by a function."""

    function: str
    method: str
    path: str
    api: str
    authorizer: str | None

    @property
    def route_key(self) -> str:
        """API Gateway's route key, e.g. `GET /connection/{connection_id+}`."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class Authorizer:
    """A Lambda authorizer of an HTTP API."""

    name: str
    function: str
    simple_responses: bool
    payload_version: str
    identity_headers: tuple[str, ...] = ()
    identity_query_strings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ScheduleEvent:
    """A `Schedule` or `ScheduleV2` event: invoke a function on a rate."""

    function: str
    name: str
    expression: str
    enabled: bool
    payload: Any


@dataclass(frozen=True)
class SqsEvent:
    """An `SQS` event source mapping: a queue whose messages are delivered to a function."""

    function: str
    name: str
    queue: Any
    batch_size: int
    report_batch_item_failures: bool
    enabled: bool


@dataclass
class FunctionSpec:
    """A serverless function with Globals applied; `environment` still holds raw intrinsics."""

    logical_id: str
    code_uri: str
    handler: str
    timeout: int
    memory_size: int
    environment: dict[str, Any]


@dataclass
class Template:
    """The parts of a SAM template the local runtime serves, with intrinsics resolvable locally."""

    document: dict[str, Any]
    root: Path
    parameters: dict[str, Any]
    functions: dict[str, FunctionSpec]
    routes: list[HttpRoute]
    authorizers: dict[str, Authorizer]
    schedules: list[ScheduleEvent]
    queue_events: list[SqsEvent]

    def resources_of(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """`{logical id: properties}` of every resource of one type, in template order."""
        resources = self.document.get("Resources") or {}
        return {name: dict(body.get("Properties") or {}) for name, body in resources.items()
                if body.get("Type") == resource_type}

    @property
    def tables(self) -> dict[str, dict[str, Any]]:
        """The DynamoDB tables (`AWS::DynamoDB::Table` properties)."""
        return self.resources_of("AWS::DynamoDB::Table")

    @property
    def secrets(self) -> dict[str, dict[str, Any]]:
        """The Secrets Manager secrets (`AWS::SecretsManager::Secret` properties)."""
        return self.resources_of("AWS::SecretsManager::Secret")

    @property
    def queues(self) -> dict[str, dict[str, Any]]:
        """The SQS queues (`AWS::SQS::Queue` properties)."""
        return self.resources_of("AWS::SQS::Queue")

    def table_name(self, logical_id: str) -> str:
        """The local name of a table: its `TableName`, else `terapi-local-<LogicalId>`."""
        name = self.tables[logical_id].get("TableName")
        return str(self.resolve(name)) if name else f"{STACK_NAME}-{logical_id}"

    def queue_name(self, logical_id: str) -> str:
        """The local name of a queue: its `QueueName`, else `terapi-local-<LogicalId>`."""
        properties = self.queues[logical_id]
        name = properties.get("QueueName")
        if name:
            return str(self.resolve(name))
        suffix = ".fifo" if properties.get("FifoQueue") else ""
        return f"{STACK_NAME}-{logical_id}{suffix}"

    def resolve(self, value: Any, refs: Refs | None = None) -> Any:
        """Resolve intrinsic functions in `value` against parameters and recorded resources."""
        return _Resolver(self, refs or Refs()).resolve(value)

    def function_environment(self, logical_id: str, refs: Refs | None = None) -> dict[str, str]:
        """One function's resolved environment (Globals merged with its own variables)."""
        raw = self.functions[logical_id].environment
        resolved = self.resolve(raw, refs)
        return {k: _env_text(v) for k, v in resolved.items() if v is not None}

    def authorizer_for(self, route: HttpRoute) -> Authorizer | None:
        """The authorizer a route runs behind, or `None` for a public route."""
        return self.authorizers.get(route.authorizer) if route.authorizer else None


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Resolver:
    """Evaluates `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::If`, ... for a local run."""

    def __init__(self, template: Template, refs: Refs):
        self._template = template
        self._refs = refs

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, argument), = value.items()
            if key == "Ref":
                return self.ref(self.resolve(argument))
            if key.startswith("Fn::"):
                return self.function(key[4:], argument)
        return {k: self.resolve(v) for k, v in value.items()}

    def ref(self, name: str) -> Any:
        if name in self._template.parameters:
            return self._template.parameters[name]
        if name in PSEUDO_PARAMETERS:
            return PSEUDO_PARAMETERS[name]
        return self._refs.get(name)

    def get_att(self, argument: Any) -> Any:
        logical_id, attribute = self.resolve(argument)
        return self._refs.get(logical_id, attribute)

    def function(self, name: str, argument: Any) -> Any:
        handlers = {
            "GetAtt": self.get_att, "Sub": self.sub, "Join": self.join, "If": self.if_,
            "Select": self.select, "Split": self.split, "FindInMap": self.find_in_map,
            "Equals": lambda a: self.evaluate("Equals", a),
            "Not": lambda a: self.evaluate("Not", a),
            "And": lambda a: self.evaluate("And", a),
            "Or": lambda a: self.evaluate("Or", a),
        }
        if name not in handlers:
            raise TemplateError(f"intrinsic function Fn::{name} is not supported locally")
        return handlers[name](argument)

    def join(self, argument: Any) -> str:
        separator, items = argument
        return str(separator).join(_env_text(v) for v in self.resolve(items))

    def if_(self, argument: Any) -> Any:
        condition, when_true, when_false = argument
        return self.resolve(when_true if self.condition(condition) else when_false)

    def select(self, argument: Any) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def split(self, argument: Any) -> list[str]:
        separator, text = self.resolve(argument)
        return str(text).split(separator)

    def find_in_map(self, argument: Any) -> Any:
        map_name, top, second = self.resolve(argument)
        return self._template.document["Mappings"][map_name][top][second]

    def condition(self, name: str) -> bool:
        conditions = self._template.document.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    def evaluate(self, name: str, argument: Any) -> bool:
        if name == "Equals":
            left, right = self.resolve(argument)
            return _env_text(left) == _env_text(right)
        values = [self.condition(a["Condition"]) if isinstance(a, dict) and "Condition" in a
                  else bool(self.resolve(a)) for a in argument]
        if name == "Not":
            return not values[0]
        return all(values) if name == "And" else any(values)

    def sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return _env_text(variables[name])
            if "." in name and name not in PSEUDO_PARAMETERS:
                return _env_text(self.get_att(name.split(".", 1)))
            return _env_text(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def load_template(path: str | Path, *, parameter_overrides: dict[str, Any] | None = None
                  ) -> Template:
    """Load a SAM template and extract the functions, routes, authorizers and event sources."""
    path = Path(path).resolve()
    document = load_yaml(path)
    parameters = {name: spec.get("Default", "")
                  for name, spec in (document.get("Parameters") or {}).items()}
    parameters.update({k: v for k, v in (parameter_overrides or {}).items() if k in parameters})
    template = Template(document=document, root=path.parent, parameters=parameters,
                        functions={}, routes=[], authorizers={}, schedules=[], queue_events=[])
    globals_ = (document.get("Globals") or {}).get("Function") or {}
    apis = template.resources_of(HTTP_API_TYPE)
    for logical_id, properties in template.resources_of(FUNCTION_TYPE).items():
        template.functions[logical_id] = _function_spec(logical_id, properties, globals_)
        _collect_events(template, logical_id, properties.get("Events") or {}, apis)
    for api_id, properties in apis.items():
        template.authorizers.update(_authorizers(api_id, properties))
    return template


def _function_spec(logical_id: str, properties: dict[str, Any],
                   globals_: dict[str, Any]) -> FunctionSpec:
    merged = {**globals_, **properties}
    variables = {**((globals_.get("Environment") or {}).get("Variables") or {}),
                 **((properties.get("Environment") or {}).get("Variables") or {})}
    if not isinstance(merged.get("CodeUri"), str) or not merged.get("Handler"):
        raise TemplateError(f"{logical_id}: only a local CodeUri folder and a Handler can run")
    return FunctionSpec(logical_id=logical_id, code_uri=merged["CodeUri"],
                        handler=merged["Handler"], timeout=int(merged.get("Timeout", 3)),
                        memory_size=int(merged.get("MemorySize", 128)), environment=variables)


def _collect_events(template: Template, function: str, events: dict[str, Any],
                    apis: dict[str, dict[str, Any]]) -> None:
    for name, event in events.items():
        kind = event.get("Type")
        properties = event.get("Properties") or {}
        if kind == "HttpApi":
            template.routes.append(_http_route(function, properties, apis))
        elif kind in ("Schedule", "ScheduleV2"):
            expression = properties.get("Schedule") or properties.get("ScheduleExpression")
            enabled = properties.get("Enabled", True) is not False and properties.get(
                "State", "ENABLED") != "DISABLED"
            template.schedules.append(ScheduleEvent(
                function=function, name=name, expression=str(expression), enabled=enabled,
                payload=properties.get("Input")))
        elif kind == "SQS":
            types = properties.get("FunctionResponseTypes") or []
            template.queue_events.append(SqsEvent(
                function=function, name=name, queue=properties.get("Queue"),
                batch_size=int(properties.get("BatchSize", 10)),
                report_batch_item_failures="ReportBatchItemFailures" in types,
                enabled=properties.get("Enabled", True) is not False))


def _http_route(function: str, properties: dict[str, Any],
                apis: dict[str, dict[str, Any]]) -> HttpRoute:
    api_ref = properties.get("ApiId")
    api = api_ref.get("Ref") if isinstance(api_ref, dict) else (api_ref or IMPLICIT_API)
    default = ((apis.get(api) or {}).get("Auth") or {}).get("DefaultAuthorizer")
    chosen = (properties.get("Auth") or {}).get("Authorizer", default)
    authorizer = None if chosen in (None, "NONE") else f"{api}.{chosen}"
    method = str(properties.get("Method", "ANY")).upper()
    if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
        method = "ANY"
    return HttpRoute(function=function, method=method, path=str(properties.get("Path", "/")),
                     api=api, authorizer=authorizer)


def _authorizers(api_id: str, properties: dict[str, Any]) -> dict[str, Authorizer]:
    found = {}
    for name, spec in ((properties.get("Auth") or {}).get("Authorizers") or {}).items():
        arn = spec.get("FunctionArn")
        if not (isinstance(arn, dict) and "Fn::GetAtt" in arn):
            raise TemplateError(f"{api_id}.{name}: FunctionArn must be !GetAtt <Function>.Arn "
                                "to run locally")
        identity = spec.get("Identity") or {}
        found[f"{api_id}.{name}"] = Authorizer(
            name=name, function=arn["Fn::GetAtt"][0],
            simple_responses=bool(spec.get("EnableSimpleResponses", False)),
            payload_version=str(spec.get("AuthorizerPayloadFormatVersion", "2.0")),
            identity_headers=tuple(identity.get("Headers") or ()),
            identity_query_strings=tuple(identity.get("QueryStrings") or ()))
    return found
