"""The emulator against Mixpeek's published contracts, by property-based API testing.

schemathesis generates requests for every operation the emulator serves from the two contracts
in ``mixpeek_emulator/contracts`` (the apps SDK's, the published plugin spec), valid and
invalid ones, sends them to a real emulator on loopback and checks each answer: its status is
documented, its body matches the documented schema (closed: no field the contract leaves
undefined), its content type and headers conform, no 5xx, invalid data refused, and every error
in its family's envelope. Stateful runs then chain each workflow with the ids the service
gave (create, upload through the presigned URL, deploy, status, the version it made; a
custom domain added, verified and removed), every
request generated from the contract by schemathesis and every answer held to the same checks.
(schemathesis's own state machine follows its links by a coin it tosses outside Hypothesis, so
how deep a run goes would vary; here each run walks the whole workflow.) Generation is
deterministic, so a run finds what the last one found. Every documented operation the emulator
does not serve answers 501.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import hypothesis
import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis import Case, CheckContext, CheckFunction, Response
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance
from schemathesis.transport.serialization import Binary

from mixpeek_emulator import contract
from mixpeek_emulator.app import unemulated
from mixpeek_emulator.state import Timing
from tests.emulator_fixture import EmulatorHandle, make_zip, start_emulator
from tests.schema import problems

EXAMPLES = 25  # per operation and generation mode: the whole run stays well under a minute
NOT_SERVED = [op.operation_id for op in unemulated()]
APP_UPLOAD = "get_upload_url_apps_id_deploy"
PLUGIN_UPLOAD = "generate_upload_url_v1_namespaces__namespace_id__plugins_uploads_post"
PLUGIN_CONFIRM = (
    "confirm_upload_v1_namespaces__namespace_id__plugins_uploads__upload_id__confirm_post"
)
PLUGIN_DEPLOY = "deploy_plugin_v1_namespaces__namespace_id__plugins__plugin_id__deploy_post"
PLUGIN_STATUS = "get_deployment_status_v1_namespaces__namespace_id__plugins__plugin_id__status_get"
PLUGIN_FORM_UPLOAD = "upload_plugin_v1_namespaces__namespace_id__plugins_post"
SITE = {"index.html": "<h1>contract</h1>"}
PLUGIN = {
    "manifest.py": "feature_extractor_name = 'contract'\n",
    "pipeline.py": "def build_steps():\n    return []\n",
    "realtime.py": "def run_inference(inputs):\n    return {}\n",
}
# Schema-valid requests the service still refuses, by a rule its documents state and the schema
# cannot express: per operation, each (status, what the answer must say).
DOCUMENTED_REFUSALS: dict[str, list[tuple[int, str]]] = {
    # SDK create_app / update_app: "Slugs are globally unique across all organizations".
    "create_app": [(400, r"Slug .* is taken")],
    "update_app": [(400, r"Slug .* is taken")],
    # SDK DeployRequest: bundle_s3_key "required for source='cli_upload'"; 'git' is Phase 3b.
    "deploy_app": [(400, r"bundle_s3_key is required|Git deploys are not available")],
    # SDK promote_app: copies environments.staging, so there must be one.
    "promote_app": [(400, r"nothing deployed to staging")],
    # SDK AddDomainRequest: a "Customer domain (e.g. 'search.acme.com')", for DNS records to
    # name, attached to one app at a time.
    "add_domain_apps": [(400, r"is not a (public )?hostname|is already attached to")],
    # Spec 0.81 confirm: "400 validation failed or upload expired"; the integrity fields.
    PLUGIN_CONFIRM: [(400, r"validation failed|has expired|already confirmed|does not match")],
    # Spec 0.81 upload: the archive "must be a valid .zip" with manifest.py and pipeline.py;
    # name and version follow the presigned upload's rules (its schema states them, this
    # form's does not); an empty form field is a missing one, as FastAPI reads forms.
    PLUGIN_FORM_UPLOAD: [
        (400, r"validation failed|limit is"),
        (422, r'"string_pattern_mismatch"|"missing"'),
    ],
}


def _schema(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document).exclude(operation_id=NOT_SERVED)
    # Unknown query parameters are left out: the API refuses undeclared body keys, but, as
    # FastAPI does, ignores query parameters it does not declare; no document says otherwise.
    schema.config.generation.update(
        max_examples=EXAMPLES,
        deterministic=True,
        allow_extra_parameters=False,
    )
    return schema


APPS = _schema(contract.document("apps"))
PLUGINS = _schema(contract.document("plugins"))


# ------------------------------------------------------------------------------ checks


def _operation_id(case: Case[Any]) -> str:
    return str(case.operation.definition.raw.get("operationId"))


def accepted_or_documented_refusal(ctx: CheckContext, response: Response, case: Case[Any]) -> None:
    """schemathesis's positive-data check, except for the refusals the API documents: a
    schema-valid request may be refused only by such a rule, and the answer must say which."""
    try:
        positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        rules = DOCUMENTED_REFUSALS.get(_operation_id(case), [])
        if not any(
            response.status_code == status and re.search(said, response.text)
            for status, said in rules
        ):
            raise


def error_envelope(ctx: CheckContext, response: Response, case: Case[Any]) -> None:
    """Every error answers in its family's envelope, even where the contract gives the status no
    schema: a plugin route's 422 is ``HTTPValidationError``; any other error is the family's
    ``ErrorResponse`` whose ``status`` is the HTTP status."""
    if response.status_code < 400:
        return
    family = contract.family_of(case.formatted_path)
    body = response.json()
    if family == "plugins" and response.status_code == 422:
        assert problems(body, "HTTPValidationError", family) == []
        return
    assert problems(body, "ErrorResponse", family) == [], body
    assert body["status"] == response.status_code


ADDED: list[CheckFunction] = [accepted_or_documented_refusal, error_envelope]
REPLACED: list[CheckFunction] = [positive_data_acceptance]


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def served() -> Iterator[EmulatorHandle]:
    """One emulator for the module; deploys, rollouts and domain verifications finish at once,
    so a chained run sees versions, deployed plugins and active domains."""
    handle = start_emulator(timing=Timing(0.0, 0.0, 0.0, 0.0, 0.0))
    try:
        yield handle
    finally:
        handle.running.stop()


def _authorized(case: Case[Any], handle: EmulatorHandle) -> dict[str, str]:
    """The plugin spec declares ``Authorization`` as an optional header parameter: the
    generated value is replaced by the key (without one, every answer would be a 401)."""
    key = f"Bearer {handle.api_key}"
    if case.headers and "Authorization" in case.headers:
        case.headers["Authorization"] = key
    return {"Authorization": key}


# -------------------------------------------------------------------------------- tests


@schemathesis.pytest.parametrize(apps=APPS, plugins=PLUGINS)
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck))
def test_every_served_operation_answers_as_its_contract_says(
    case: Case[Any], served: EmulatorHandle
) -> None:
    headers = _authorized(case, served)
    case.call_and_validate(
        base_url=served.url, headers=headers, additional_checks=ADDED, excluded_checks=REPLACED
    )


class Run:
    """One workflow run: each call a case schemathesis generated from the contract (valid
    data), sent to the emulator and held to every check."""

    def __init__(self, data: st.DataObject, handle: EmulatorHandle) -> None:
        self.data = data
        self.handle = handle

    def call(self, schema: Any, operation_id: str, path: dict[str, str], **body: Any) -> Response:
        """A generated call of the operation with these path parameters and body fields."""
        operation = schema.find_operation_by_id(operation_id)
        strategy = operation.as_strategy(feedback=NO_FEEDBACK, path_parameters=path)
        case = self.data.draw(strategy, label=operation_id)
        if body:
            # The generated body with these fields set, as a case schemathesis makes of it, so
            # that its checks know what was sent.
            generated = case.body if isinstance(case.body, dict) else {}
            fixed = operation.as_strategy(
                feedback=NO_FEEDBACK, path_parameters=path, body={**generated, **body}
            )
            case = self.data.draw(fixed, label=operation_id)
        headers = _authorized(case, self.handle)
        response: Response = case.call(base_url=self.handle.url, headers=headers)
        case.validate_response(response, additional_checks=ADDED, excluded_checks=REPLACED)
        return response


def _put(url: str, data: bytes, content_type: str = "application/zip") -> str:
    answer = httpx.put(url, content=data, headers={"Content-Type": content_type}, timeout=30)
    answer.raise_for_status()
    return str(answer.headers["ETag"]).strip('"')


CHAINED = hypothesis.settings(
    max_examples=15,
    deadline=None,
    derandomize=True,  # the same runs every time: a failure here is one every run finds
    database=None,
    # No shrinking: each replay is a whole workflow over HTTP, and the failing one is reported
    # as it was, with every request it sent.
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    report_multiple_bugs=False,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@CHAINED
@hypothesis.given(data=st.data())
def test_the_app_workflow_chained_with_generated_data(
    data: st.DataObject, served: EmulatorHandle
) -> None:
    """create, upload through the presigned URL, verify, deploy, status and log, the version it
    made (detail, download, diff), restore it to staging and promote it, update the app and
    delete it: every request generated from the apps contract, every answer held to it."""
    served.forget_records()
    run = Run(data, served)
    created = run.call(APPS, "create_app", {})
    hypothesis.assume(created.status_code == 200)  # a documented refusal, already checked
    app = {"app_id": created.json()["app_id"]}
    slot = run.call(APPS, APP_UPLOAD, app, content_type="application/zip").json()
    _put(slot["upload_url"], make_zip(SITE))
    key = slot["bundle_s3_key"]
    assert run.call(APPS, "verify_upload_apps_id_deploy", app, bundle_s3_key=key).json()["exists"]
    deploy = run.call(APPS, "deploy_app", app, bundle_s3_key=key, source="cli_upload").json()
    built = {**app, "deploy_id": deploy["deploy_id"]}
    # Builds take no time here: an uploaded site's deploy is complete when first read.
    assert run.call(APPS, "get_deploy_status_apps", built).json()["status"] == "complete"
    run.call(APPS, "stream_deploy_logs_apps", built)
    number = run.call(APPS, "list_versions_apps", app).json()["versions"][0]["version"]
    version = {**app, "version": str(number)}
    run.call(APPS, "get_version_apps", version)
    run.call(APPS, "download_version_apps", version)
    run.call(APPS, "diff_versions_apps_id_from_to", {**app, "from_version": "1", "to_version": "1"})
    run.call(APPS, "restore_version_apps", version, environment="staging")
    assert run.call(APPS, "promote_app", app).status_code == 200
    run.call(APPS, "update_app", app)
    assert run.call(APPS, "delete_app", app).status_code == 200


# Hostnames of two to four labels, as a user's DNS would hold them.
HOSTNAMES = st.lists(
    st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True), min_size=1, max_size=3
).map(lambda labels: ".".join([*labels, "example"]))


@CHAINED
@hypothesis.given(data=st.data())
def test_the_domain_workflow_chained_with_generated_data(
    data: st.DataObject, served: EmulatorHandle
) -> None:
    """create an app, add a domain, list, verify, see it active on the app, publish an update,
    remove the domain and delete the app: every request generated from the apps contract."""
    served.forget_records()
    run = Run(data, served)
    created = run.call(APPS, "create_app", {})
    hypothesis.assume(created.status_code == 200)
    app = {"app_id": created.json()["app_id"]}
    name = data.draw(HOSTNAMES, label="domain")
    added = run.call(APPS, "add_domain_apps", app, domain=name)
    assert added.status_code == 200, added.text
    domain = {**app, "domain": name}
    assert [d["domain"] for d in run.call(APPS, "list_domains_apps", app).json()["domains"]] == [
        name
    ]
    asked = run.call(APPS, "verify_domain_apps", domain).json()
    assert (asked["status"], asked["verified_at"]) == ("verifying", None)
    # The worker takes no time here: the domain is active when next read.
    shown = run.call(APPS, "get_app", app).json()["custom_domains"]
    assert [(d["domain"], d["status"]) for d in shown] == [(name, "active")]
    published = run.call(APPS, "update_app", app, publish=True)
    if published.status_code == 200:
        assert published.json()["has_unpublished_changes"] is False
    assert run.call(APPS, "delete_domain_apps", domain).status_code == 200
    assert run.call(APPS, "delete_app", app).status_code == 200


@CHAINED
@hypothesis.given(data=st.data())
def test_the_plugin_workflow_chained_with_generated_data(
    data: st.DataObject, served: EmulatorHandle
) -> None:
    """upload through the presigned URL, confirm with its ETag and size, deploy, status, the
    plugin and the list, undeploy and delete; then the one-request upload of another."""
    served.forget_records()
    run = Run(data, served)
    ns = {"namespace_id": "ns_contract"}
    slot = run.call(PLUGINS, PLUGIN_UPLOAD, ns).json()
    archive = make_zip(PLUGIN)
    etag = _put(slot["presigned_url"], archive)
    upload = {**ns, "upload_id": slot["upload_id"]}
    confirmed = run.call(PLUGINS, PLUGIN_CONFIRM, upload, etag=etag, file_size_bytes=len(archive))
    plugin = {**ns, "plugin_id": confirmed.json()["plugin_id"]}
    deployed = run.call(PLUGINS, PLUGIN_DEPLOY, plugin)
    status = run.call(PLUGINS, PLUGIN_STATUS, plugin).json()
    # Rollouts take no time here: what was asked for is what the status says.
    asked = parse_qs(urlsplit(str(deployed.request.url)).query).get("deployment_type")
    kind = asked[0] if asked else "realtime"
    assert (status["status"], status["deployed"]) == (
        ("deployed", True) if kind == "realtime" else ("not_deployed", True)
    )
    run.call(PLUGINS, "get_plugin_v1_namespaces__namespace_id__plugins__plugin_id__get", plugin)
    run.call(PLUGINS, "list_plugins_v1_namespaces__namespace_id__plugins_get", ns)
    run.call(
        PLUGINS,
        "undeploy_plugin_v1_namespaces__namespace_id__plugins__plugin_id__undeploy_post",
        plugin,
    )
    run.call(
        PLUGINS, "delete_plugin_v1_namespaces__namespace_id__plugins__plugin_id__delete", plugin
    )
    # A real archive in the form schemathesis itself gives a file part (a str to JSON Schema).
    form = {"name": slot["name"], "version": "9.9.9", "file": Binary(make_zip(PLUGIN))}
    assert run.call(PLUGINS, PLUGIN_FORM_UPLOAD, ns, **form).status_code == 200


@pytest.mark.parametrize("op", unemulated(), ids=lambda op: f"{op.method} {op.path}")
def test_every_documented_operation_not_emulated_answers_501_naming_it(
    op: contract.Operation, served: EmulatorHandle
) -> None:
    path = re.sub(r"\{[^}]+\}", "x_1", op.path)
    request = httpx.Request(op.method, f"{served.url}{path}", json={} if op.body else None)
    with httpx.Client(timeout=30) as client:
        anonymous = client.send(request)
        request.headers["Authorization"] = f"Bearer {served.api_key}"
        answer = client.send(request)
    assert anonymous.status_code == 401  # the key is checked first, as for every /v1 route
    assert answer.status_code == 501
    body = answer.json()
    assert problems(body, "ErrorResponse", op.family) == []
    assert body["error"]["type"] == "NotImplementedError"
    assert f"{op.method} {op.path} ({op.operation_id})" in body["error"]["message"]
