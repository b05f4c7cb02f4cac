"""The emulator against Mixpeek's published contracts, by property-based API testing.

schemathesis generates requests for every operation the emulator serves from the two contracts
in ``mixpeek_emulator/contracts`` (the apps SDK's, the published plugin spec), valid and
invalid ones, sends them to a real emulator on loopback and checks each answer: its status is
documented, its body matches the documented schema (closed: no field the contract leaves
undefined), its content type and headers conform, no 5xx, invalid data refused, and every error
in its family's envelope. A stateful run then chains the workflows with real data (create,
upload through the presigned URL, deploy, status). Generation is deterministic, so a run finds
what the last one found. Every documented operation the emulator does not serve answers 501.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import Case, CheckContext, CheckFunction, GenerationMode, Response
from schemathesis.generation.feedback import NO_FEEDBACK
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.specs.openapi.checks import positive_data_acceptance

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


def _link(
    document: dict[str, Any],
    source: tuple[str, str],
    target: str,
    parameters: dict[str, str],
    body: dict[str, Any] | None = None,
) -> None:
    """An OpenAPI link: the 200 of ``source`` feeds ``target``'s parameters (and body)."""
    path, method = source
    answer = document["paths"][path][method]["responses"]["200"]
    definition: dict[str, Any] = {"operationId": target, "parameters": parameters}
    if body is not None:
        definition["requestBody"] = body
    answer.setdefault("links", {})[target] = definition


def _apps_document() -> dict[str, Any]:
    """The apps contract with the workflow's links: create, upload, deploy, status, versions."""
    doc = contract.document("apps")
    app = {"app_id": "$response.body#/app_id"}
    same_app = {"app_id": "$request.path.app_id"}
    for target in ("get_app", "update_app", "delete_app", "list_versions_apps"):
        _link(doc, ("/v1/apps", "post"), target, app)
    # A bundle is a zip: the URL is signed for the type asked for, and the PUT sends a zip.
    _link(doc, ("/v1/apps", "post"), APP_UPLOAD, app, {"content_type": "application/zip"})
    _link(
        doc,
        ("/v1/apps/{app_id}/deploy/upload-url", "post"),
        "deploy_app",
        same_app,
        {"bundle_s3_key": "$response.body#/bundle_s3_key", "source": "cli_upload"},
    )
    deploy = {**same_app, "deploy_id": "$response.body#/deploy_id"}
    for target in ("get_deploy_status_apps", "stream_deploy_logs_apps"):
        _link(doc, ("/v1/apps/{app_id}/deploy", "post"), target, deploy)
    status = ("/v1/apps/{app_id}/deploys/{deploy_id}", "get")
    for target in ("list_versions_apps", "promote_app"):
        _link(doc, status, target, same_app)
    versions = ("/v1/apps/{app_id}/versions", "get")
    number = {**same_app, "version": "$response.body#/versions/0/version"}
    for target in ("get_version_apps", "download_version_apps", "restore_version_apps"):
        _link(doc, versions, target, number)
    return doc


def _plugins_document() -> dict[str, Any]:
    """The plugin contract with the workflow's links: upload, confirm, deploy, status."""
    doc = contract.document("plugins")
    base = "/v1/namespaces/{namespace_id}/plugins"
    ns = {"namespace_id": "$request.path.namespace_id"}
    _link(
        doc,
        (f"{base}/uploads", "post"),
        PLUGIN_CONFIRM,
        {**ns, "upload_id": "$response.body#/upload_id"},
    )
    plugin = {**ns, "plugin_id": "$response.body#/plugin_id"}
    for target in (PLUGIN_DEPLOY, PLUGIN_STATUS):
        _link(doc, (f"{base}/uploads/{{upload_id}}/confirm", "post"), target, plugin)
    same = {**ns, "plugin_id": "$request.path.plugin_id"}
    _link(doc, (f"{base}/{{plugin_id}}/deploy", "post"), PLUGIN_STATUS, same)
    return doc


def _schema(document: dict[str, Any], *modes: GenerationMode) -> Any:
    schema = schemathesis.openapi.from_dict(document).exclude(operation_id=NOT_SERVED)
    # Unknown query parameters are left out: the API refuses undeclared body keys, but, as
    # FastAPI does, ignores query parameters it does not declare; no document says otherwise.
    schema.config.generation.update(
        modes=list(modes) or None,
        max_examples=EXAMPLES,
        deterministic=True,
        allow_extra_parameters=False,
    )
    return schema


APPS = _schema(_apps_document())
PLUGINS = _schema(_plugins_document())
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
    """One emulator for the module; deploys and rollouts finish at once, so a stateful run sees
    versions and deployed plugins."""
    handle = start_emulator(timing=Timing(0.0, 0.0, 0.0))
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


class Client:
    """What a stateful run's client does that the contract leaves to it (PUT the bundle or the
    archive to the presigned URL, confirm with the ETag it got), and what the run reached."""

    def __init__(self) -> None:
        self.seen: collections.Counter[tuple[str, int]] = collections.Counter()
        self.statuses: set[str] = set()
        self.etags: dict[str, tuple[str, int]] = {}

    def confirm_body(self, case: Case[Any]) -> dict[str, Any] | None:
        """The integrity fields of an upload this client made, for its confirm."""
        if _operation_id(case) != PLUGIN_CONFIRM or not case.path_parameters:
            return None
        stored = self.etags.get(str(case.path_parameters.get("upload_id")))
        return None if stored is None else {"etag": stored[0], "file_size_bytes": stored[1]}

    def answered(self, response: Response, case: Case[Any]) -> None:
        op = _operation_id(case)
        self.seen[(op, response.status_code)] += 1
        if response.status_code != 200 or "json" not in response.headers["content-type"][0]:
            return
        body = response.json()
        if op in ("get_deploy_status_apps", PLUGIN_STATUS):
            self.statuses.add(f"{op}:{body['status']}")
        sent = case.body if isinstance(case.body, dict) else {}
        if op == APP_UPLOAD and sent.get("content_type") == "application/zip":
            _put(body["upload_url"], make_zip(SITE))
        if op == PLUGIN_UPLOAD:
            archive = make_zip(PLUGIN)
            self.etags[body["upload_id"]] = (_put(body["presigned_url"], archive), len(archive))


def _chained(document: dict[str, Any], *operation_ids: str) -> Any:
    """The contract for a chained run: valid data, the workflow's operations, and only the links
    above (schemathesis's own inference would add guesses, such as a deploy id for any app)."""
    schema = _schema(document, GenerationMode.POSITIVE).include(operation_id=list(operation_ids))
    schema.config.phases.stateful.inference.algorithms = []
    schema.config.phases.stateful.link_calibration = False
    return schema


def _machine(schema: Any, handle: EmulatorHandle, client: Client) -> Any:
    """A state machine over the contract's links, its calls made by ``client``."""
    # No feedback: what one scenario learned would change the next one's data, and Hypothesis
    # replays a scenario to confirm what it found (it calls that a flaky strategy).
    base = schema.build_state_machine(feedback=NO_FEEDBACK, link_calibration=None)
    key = {"Authorization": f"Bearer {handle.api_key}"}

    class Machine(base):  # type: ignore[misc, valid-type]
        def setup(self) -> None:
            # Each scenario starts from an empty service, so a replay (Hypothesis replays to
            # confirm and shrink) meets the same answers: a slug taken by the last one is not.
            handle.forget_records()
            client.etags.clear()

        def before_call(self, case: Case[Any]) -> None:
            _authorized(case, handle)
            body = client.confirm_body(case)
            if body is not None:
                case.body = body

        def get_call_kwargs(self, case: Case[Any]) -> dict[str, Any]:
            return {"base_url": handle.url, "headers": key}

        def after_call(self, response: Response, case: Case[Any]) -> None:
            client.answered(response, case)

        def validate_response(self, response: Response, case: Case[Any], **kwargs: Any) -> None:
            case.validate_response(response, additional_checks=ADDED, excluded_checks=REPLACED)

    return Machine


def _put(url: str, data: bytes) -> str:
    answer = httpx.put(url, content=data, headers={"Content-Type": "application/zip"}, timeout=30)
    answer.raise_for_status()
    return answer.headers["ETag"].strip('"')


APPS_CHAINED = _chained(
    _apps_document(),
    "create_app",
    "get_app",
    APP_UPLOAD,
    "deploy_app",
    "get_deploy_status_apps",
    "stream_deploy_logs_apps",
    "list_versions_apps",
    "get_version_apps",
    "restore_version_apps",
    "promote_app",
)
PLUGINS_CHAINED = _chained(
    _plugins_document(), PLUGIN_UPLOAD, PLUGIN_CONFIRM, PLUGIN_DEPLOY, PLUGIN_STATUS
)


@pytest.mark.parametrize(
    ("schema", "reached"),
    [
        pytest.param(
            APPS_CHAINED,
            [("create_app", 200), (APP_UPLOAD, 200), ("deploy_app", 200)],
            id="apps",
        ),
        pytest.param(
            PLUGINS_CHAINED,
            [(PLUGIN_UPLOAD, 200), (PLUGIN_CONFIRM, 200), (PLUGIN_DEPLOY, 200)],
            id="plugins",
        ),
    ],
)
def test_the_workflows_chained_statefully_answer_as_the_contracts_say(
    schema: Any, reached: list[tuple[str, int]], served: EmulatorHandle
) -> None:
    client = Client()
    machine = _machine(schema, served, client)
    machine.run(
        settings=hypothesis.settings(
            max_examples=40,
            stateful_step_count=8,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    missing = [step for step in reached if not client.seen[step]]
    assert missing == [], f"the run never reached {missing}: {sorted(client.seen.items())}"
    # The status of a real deploy was read, finished as the emulator decided it.
    finished = {"get_deploy_status_apps:complete", f"{PLUGIN_STATUS}:deployed"}
    assert client.statuses & finished, client.statuses


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
