"""MixpeekClient against a scripted loopback server: retries, error mapping, secrets."""

from __future__ import annotations

import email.utils
import io
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from mixpeek_pulumi import __version__
from mixpeek_pulumi.api.client import MixpeekClient
from mixpeek_pulumi.api.models import DeployRequest
from mixpeek_pulumi.api.retry import RetryPolicy, parse_retry_after
from mixpeek_pulumi.errors import (
    ApiConnectionError,
    ApiTimeoutError,
    AuthenticationError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    StorageError,
    UnprocessableEntityError,
)
from tests.scripted_server import Reply, ScriptedServer, scripted_server

KEY = "sk_live_UNIT_TEST_KEY_7f3a9c"
DEPLOY = "/v1/apps/app_1/deploy"
STATUS = "/v1/apps/app_1/deploys/dep_1"
OK_DEPLOY = {"app_id": "app_1", "deploy_id": "dep_1", "status": "queued", "environment": "staging"}
OK_STATUS = {"deploy_id": "dep_1", "status": "building"}


def err(status: int, type_: str, message: str, **details: object) -> dict[str, object]:
    return {
        "success": False,
        "status": status,
        "error": {"type": type_, "message": message, "details": details or None},
    }


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with scripted_server() as s:
        yield s


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(server: ScriptedServer, sleeps: list[float]) -> Iterator[MixpeekClient]:
    policy = RetryPolicy(max_attempts=5, max_retry_after=30.0, sleep=sleeps.append)
    timeout = httpx.Timeout(connect=2.0, read=0.5, write=2.0, pool=2.0)
    with MixpeekClient(api_key=KEY, base_url=server.url, retry=policy, timeout=timeout) as c:
        yield c


def deploy(client: MixpeekClient) -> None:
    client.deploy("app_1", DeployRequest(message="m", environment="staging", bundle_s3_key="k"))


def test_retry_after_header_and_details_are_honoured(server, client, sleeps) -> None:
    server.add(
        "GET",
        STATUS,
        Reply(429, err(429, "TooManyRequestsError", "slow down"), {"Retry-After": "3"}),
        Reply(
            503, err(503, "WriterReadOnlyError", "read only", retryable=True, retry_after_seconds=2)
        ),
        Reply(429, err(429, "TooManyRequestsError", "way too fast"), {"Retry-After": "500"}),
        Reply(200, OK_STATUS),
    )
    assert client.get_deploy("app_1", "dep_1").status == "building"
    assert sleeps == [3.0, 2.0, 30.0]  # the third asked for 500 s and got the 30 s cap


def test_retry_after_http_date_is_understood() -> None:
    now = time.time()
    when = email.utils.formatdate(now + 7, usegmt=True)
    assert parse_retry_after(when, now=now) == pytest.approx(7, abs=1)
    assert parse_retry_after("4") == 4.0
    assert parse_retry_after("soon") is None


def test_get_is_retried_on_server_errors_and_resets(server, client, sleeps) -> None:
    server.add(
        "GET",
        STATUS,
        Reply(
            502,
            raw=b"<html><title>502 Bad Gateway</title></html>",
            headers={"Content-Type": "text/html"},
        ),
        Reply(drop=True),
        Reply(delay=1.0, body=OK_STATUS),  # slower than the 0.5 s read timeout
        Reply(200, OK_STATUS),
    )
    assert client.get_deploy("app_1", "dep_1").deploy_id == "dep_1"
    assert server.count("GET", STATUS) == 4
    assert len(sleeps) == 3


@pytest.mark.parametrize(
    "fault",
    [
        Reply(500, err(500, "InternalServerError", "boom")),
        Reply(502, raw=b"<html>bad gateway</html>", headers={"Content-Type": "text/html"}),
        Reply(504, err(504, "GatewayTimeout", "upstream")),
        Reply(drop=True),
        Reply(delay=1.0, body=OK_DEPLOY),
    ],
    ids=["500", "502-html", "504", "reset", "read-timeout"],
)
def test_deploy_post_is_never_sent_twice(server, client, fault: Reply) -> None:
    server.add("POST", DEPLOY, fault, Reply(200, OK_DEPLOY))
    with pytest.raises((ServerError, ApiConnectionError)):
        deploy(client)
    assert server.count("POST", DEPLOY) == 1


def test_deploy_is_retried_when_the_server_stored_nothing(server, client, sleeps) -> None:
    server.add(
        "POST",
        DEPLOY,
        Reply(429, err(429, "TooManyRequestsError", "later"), {"Retry-After": "1"}),
        Reply(503, err(503, "WriterReadOnlyError", "ro", retryable=True, retry_after_seconds=1)),
        Reply(200, OK_DEPLOY),
    )
    deploy(client)
    assert server.count("POST", DEPLOY) == 3
    assert sleeps == [1.0, 1.0]


def test_server_saying_not_retryable_is_respected(server, client) -> None:
    server.add("POST", DEPLOY, Reply(503, err(503, "Unavailable", "no", retryable=False)))
    with pytest.raises(ServerError):
        deploy(client)
    assert server.count("POST", DEPLOY) == 1


def test_unknown_keys_422_is_reported_as_such(server, client) -> None:
    body = err(
        422,
        "ValidationError",
        "Request validation failed",
        validation_errors=[
            {
                "type": "extra_forbidden",
                "location": "body.colour",
                "message": "Extra inputs are not permitted",
            }
        ],
    )
    server.add("POST", DEPLOY, Reply(422, body))
    with pytest.raises(UnprocessableEntityError) as info:
        deploy(client)
    first = str(info.value).splitlines()[0]
    assert "fields the API does not accept (body.colour)" in first
    assert first.endswith(".")
    assert "extra_forbidden" in str(info.value)


def test_fastapi_validation_shape_is_read(server, client) -> None:
    server.add(
        "POST",
        DEPLOY,
        Reply(
            422,
            {"detail": [{"loc": ["body", "message"], "msg": "Field required", "type": "missing"}]},
        ),
    )
    with pytest.raises(UnprocessableEntityError) as info:
        deploy(client)
    assert "body.message: Field required (missing)" in str(info.value)


def test_error_carries_method_path_type_code_and_request_id(server, client) -> None:
    body = {
        "success": False,
        "status": 404,
        "error": {
            "type": "NotFoundError",
            "code": "app_not_found",
            "message": "App app_1 not found",
        },
    }
    server.add("GET", STATUS, Reply(404, body, {"X-Request-ID": "req_42"}))
    with pytest.raises(NotFoundError) as info:
        client.get_deploy("app_1", "dep_1")
    e = info.value
    assert (e.method, e.path, e.status_code, e.error_type, e.code, e.request_id) == (
        "GET",
        STATUS,
        404,
        "NotFoundError",
        "app_not_found",
        "req_42",
    )
    assert str(e) == (
        f"Mixpeek API answered GET {STATUS} with HTTP 404 NotFoundError "
        "(code app_not_found, request id req_42): App app_1 not found."
    )


def test_the_api_key_never_appears_in_errors_or_reprs(server, client) -> None:
    echo = err(401, "UnauthorizedError", f"Invalid header Authorization: Bearer {KEY}; key={KEY}")
    server.add("GET", STATUS, Reply(401, echo))
    with pytest.raises(AuthenticationError) as info:
        client.get_deploy("app_1", "dep_1")
    for text in (str(info.value), repr(info.value), repr(client), info.value.server_message):
        assert KEY not in text
    assert server.seen[0].headers["Authorization"] == f"Bearer {KEY}"


def test_html_and_truncated_json_read_as_sentences(server, client) -> None:
    server.add("GET", STATUS, Reply(200, raw=b'{"deploy_id": "dep_1", "sta'))
    with pytest.raises(ResponseValidationError) as info:
        client.get_deploy("app_1", "dep_1")
    assert "is not JSON" in str(info.value)
    server.add("GET", STATUS, Reply(200, {"status": "queued"}))
    with pytest.raises(ResponseValidationError) as info2:
        client.get_deploy("app_1", "dep_1")
    assert "deploy_id: Field required" in str(info2.value)


def test_user_agent_names_the_package(server, client) -> None:
    server.add("GET", STATUS, Reply(200, OK_STATUS))
    client.get_deploy("app_1", "dep_1")
    assert server.seen[0].headers["User-Agent"].startswith(f"mixpeek-pulumi/{__version__}")


def test_unknown_status_values_parse(server, client) -> None:
    server.add("GET", STATUS, Reply(200, {"deploy_id": "dep_1", "status": "warming_up"}))
    status = client.get_deploy("app_1", "dep_1")
    assert status.status == "warming_up" and status.known_status is None


def test_storage_put_streams_without_the_key(server, client) -> None:
    server.add("PUT", "/bucket/key.zip", Reply(200, raw=b"", headers={"ETag": '"abc123"'}))
    body = io.BytesIO(b"x" * 3_000_000)
    stored = client.put_object(
        f"{server.url}/bucket/key.zip?X-Sig=s3cr3t",
        body,
        size=3_000_000,
        content_type="application/zip",
    )
    assert stored.etag == "abc123"
    seen = server.seen[-1]
    assert "Authorization" not in seen.headers
    assert seen.headers["Content-Type"] == "application/zip"
    assert len(seen.body) == 3_000_000


def test_expired_presigned_url_is_recognised(server, client) -> None:
    xml = b"<?xml version='1.0'?><Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
    server.add("PUT", "/bucket/k", Reply(403, raw=xml, headers={"Content-Type": "application/xml"}))
    with pytest.raises(StorageError) as info:
        client.put_object(
            f"{server.url}/bucket/k?X-Amz-Signature=abc",
            io.BytesIO(b"zip"),
            size=3,
            content_type="application/zip",
        )
    assert info.value.expired
    assert "X-Amz-Signature" not in str(info.value)


def test_connection_refused_is_a_sentence(sleeps) -> None:
    policy = RetryPolicy(max_attempts=2, sleep=sleeps.append)
    with (
        MixpeekClient(api_key=KEY, base_url="http://127.0.0.1:9", retry=policy) as c,
        pytest.raises(ApiConnectionError) as info,
    ):
        deploy(c)
    assert not info.value.sent  # never reached a server, so the POST was retried safely
    assert len(sleeps) == 1
    assert str(info.value).startswith(
        f"POST {DEPLOY} could not reach the Mixpeek API at http://127.0.0.1:9, the address "
        "the client's `base_url` names: ConnectError"
    )
    assert "before it was sent" not in str(info.value)
    assert not isinstance(info.value, ApiTimeoutError)


@pytest.mark.parametrize(
    ("source", "fix"),
    [
        ("`mixpeek:baseUrl`", "change it with `pulumi config set mixpeek:baseUrl <url>`"),
        ("the MIXPEEK_BASE_URL variable", "change MIXPEEK_BASE_URL (or set `mixpeek:baseUrl`"),
        ("the default endpoint", "set your Mixpeek host with `pulumi config set mixpeek:baseUrl"),
        ("the resource's `base_url`", "change the resource's `base_url`"),
    ],
)
def test_unreachable_api_names_the_address_and_the_setting_that_chose_it(
    sleeps, source: str, fix: str
) -> None:
    policy = RetryPolicy(max_attempts=3, sleep=sleeps.append)
    said: list[str] = []
    client = MixpeekClient(
        api_key=KEY,
        base_url="http://127.0.0.1:9",
        retry=policy,
        log=said.append,
        endpoint_source=source,
    )
    with client as c, pytest.raises(ApiConnectionError) as info:
        c.get_app("app_1")
    text = str(info.value)
    assert text.startswith(
        f"GET /v1/apps/app_1 could not reach the Mixpeek API at http://127.0.0.1:9, the "
        f"address {source} names: ConnectError"
    ), text
    assert fix in text
    assert len(text.splitlines()) == 1
    # Each retry is one line with its attempt number.
    assert [line.split(": attempt ")[1][:6] for line in said] == ["1 of 3", "2 of 3"]
    assert all("\n" not in line for line in said)


def test_rate_limit_gives_up_after_the_attempts(server, sleeps) -> None:
    policy = RetryPolicy(max_attempts=3, sleep=sleeps.append)
    for _ in range(3):
        server.add(
            "GET", STATUS, Reply(429, err(429, "TooManyRequestsError", "no"), {"Retry-After": "1"})
        )
    with (
        MixpeekClient(api_key=KEY, base_url=server.url, retry=policy) as c,
        pytest.raises(RateLimitError),
    ):
        c.get_deploy("app_1", "dep_1")
    assert sleeps == [1.0, 1.0]


def test_request_bodies_carry_only_declared_keys(server, client) -> None:
    server.add("POST", DEPLOY, Reply(200, OK_DEPLOY))
    deploy(client)
    sent = json.loads(server.seen[-1].body)
    assert set(sent) == {"message", "environment", "source", "bundle_s3_key"}
    with pytest.raises(ValueError, match="Extra inputs"):
        DeployRequest.model_validate({"message": "m", "colour": "red"})


def test_downloads_stop_at_their_cap(server, client) -> None:
    server.add("GET", "/bucket/big.zip", Reply(200, raw=b"z" * 5000))
    target = io.BytesIO()
    with pytest.raises(ResponseValidationError, match="larger than 4096 bytes"):
        client.download(f"{server.url}/bucket/big.zip?X-Sig=s", target, max_bytes=4096)
    assert len(target.getvalue()) <= 4096
    server.add("GET", "/bucket/ok.zip", Reply(200, raw=b"z" * 100))
    assert client.download(f"{server.url}/bucket/ok.zip?X-Sig=s", target, max_bytes=4096) == 100


def test_a_redirect_from_storage_is_a_refusal(server, client) -> None:
    server.add("PUT", "/bucket/k", Reply(301, raw=b"", headers={"Location": "http://elsewhere/k"}))
    with pytest.raises(StorageError, match="HTTP 301"):
        client.put_object(
            f"{server.url}/bucket/k?X-Sig=s", io.BytesIO(b"x"), size=1, content_type="a/b"
        )
