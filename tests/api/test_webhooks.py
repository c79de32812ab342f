"""/api/v1/webhook-endpoints/ and /webhook-deliveries/: CRUD with admin's validation, scoping, read-only keys,
and a test event and a replay sent by a real Celery worker to a real local receiver, signed."""

from __future__ import annotations

import json
import signal
import uuid

import pytest
from django.utils import timezone

from postcall.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from postcall.webhooks import verify_signature
from tests.api.conftest import assert_error
from tests.postcall.conftest import DEAD_LLM, kill_worker, start_worker, wait_ready
from tests.postcall.receiver import Receiver
from tests.waiting import wait_until

# Never called, only saved: a public address literal (the checks resolve host names, and tests run offline).
HOOK = "https://93.184.215.14/voicebot"


@pytest.fixture
def public_only(settings):
    """Production's rule: webhook targets must be public addresses."""
    settings.OUTBOUND_ALLOW_PRIVATE = False
    settings.POSTCALL_WEBHOOK_ALLOW_PRIVATE = False


@pytest.fixture
def loopback_allowed(settings):
    """The receivers of these tests are on 127.0.0.1 (voicebot.outbound's setting)."""
    settings.OUTBOUND_ALLOW_PRIVATE = True
    settings.POSTCALL_WEBHOOK_ALLOW_PRIVATE = True


def endpoint_of(company, url=HOOK, events=("call.ended",), secret="whsec_fixed"):
    return WebhookEndpoint.objects.create(company=company, url=url, events=list(events), secret=secret)


def delivery_of(endpoint, event="call.ended", status=WebhookDelivery.Status.DELIVERED, attempts=1):
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event, event_key=f"call:{uuid.uuid4().hex[:6]}",
                                              payload={"event": event}, status=status, attempts=attempts,
                                              last_response_code=200 if status == "delivered" else 503)
    for number in range(1, attempts + 1):
        WebhookAttempt.objects.create(delivery=delivery, number=number, attempted_at=timezone.now(),
                                      response_code=200 if number == attempts and status == "delivered" else 503,
                                      error="" if status == "delivered" else "HTTP 503: <b>down</b>", duration_ms=12)
    return delivery


# --- Endpoints: create, validation ------------------------------------------------------------------


def test_create_endpoint_generates_the_secret_and_shows_it_once(api_a, company_a, loopback_allowed):
    response = api_a.post("/api/v1/webhook-endpoints/", {"url": HOOK, "events": ["lead.captured", "call.ended"],
                                                         "description": "CRM"}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    endpoint = WebhookEndpoint.objects.get(pk=body["id"])
    assert endpoint.company == company_a and endpoint.events == ["call.ended", "lead.captured"]
    assert body["secret"] == endpoint.secret and endpoint.secret.startswith("whsec_") and len(endpoint.secret) > 30
    assert body == {"id": endpoint.pk, "company": company_a.pk, "url": HOOK, "events": ["call.ended", "lead.captured"],
                    "secret": endpoint.secret, "active": True, "description": "CRM", "created_at": body["created_at"]}
    # Never again: not in the detail, not in the list.
    assert "secret" not in api_a.get(f"/api/v1/webhook-endpoints/{endpoint.pk}/").json()
    assert all("secret" not in item for item in api_a.get("/api/v1/webhook-endpoints/").json()["results"])

    response = api_a.post("/api/v1/webhook-endpoints/", {"url": HOOK + "/2", "events": ["call.ended"],
                                                         "secret": "whsec_mine", "active": False}, format="json")
    assert response.status_code == 201 and response.json()["secret"] == "whsec_mine"
    assert WebhookEndpoint.objects.get(pk=response.json()["id"]).secret == "whsec_mine"
    response = api_a.post("/api/v1/webhook-endpoints/", {"url": HOOK + "/3", "events": ["call.ended"],
                                                         "secret": ""}, format="json")
    assert response.status_code == 201 and response.json()["secret"].startswith("whsec_")


def test_endpoint_url_to_a_private_address_is_refused_naming_url(api_a, public_only):
    for url, says in [("http://127.0.0.1:8000/hook", "loopback"), ("http://10.1.2.3/hook", "private"),
                      ("http://169.254.169.254/latest/meta-data", "link-local"),
                      ("http://user:pw@hooks.example.com/x", "user name"),
                      ("ftp://hooks.example.com/x", "https://"), ("not a url", "valid URL")]:
        response = api_a.post("/api/v1/webhook-endpoints/", {"url": url, "events": ["call.ended"]}, format="json")
        error = assert_error(response, 400, "invalid", field="url")
        assert any(says in message for message in error["fields"]["url"]), (url, error)
    assert not WebhookEndpoint.objects.exists()


def test_endpoint_events_are_validated_naming_events(api_a, loopback_allowed):
    for events, says in [(["call.ended", "call.started"], "call.started"), ([], "empty"),
                         (["webhook.test"], "webhook.test"), ("call.ended", "list")]:
        response = api_a.post("/api/v1/webhook-endpoints/", {"url": HOOK, "events": events}, format="json")
        error = assert_error(response, 400, "invalid", field="events")
        assert any(says in message for message in error["fields"]["events"]), (events, error)
    error = assert_error(api_a.post("/api/v1/webhook-endpoints/", {"events": ["call.ended"]}, format="json"), 400,
                         "invalid", field="url")
    assert "required" in error["message"]
    assert not WebhookEndpoint.objects.exists()


def test_endpoint_cannot_be_created_for_another_company(api_a, agency_api, company_a, company_b):
    response = api_a.post("/api/v1/webhook-endpoints/", {"company": company_b.pk, "url": HOOK,
                                                         "events": ["call.ended"]}, format="json")
    assert_error(response, 400, "invalid", field="company")
    assert not WebhookEndpoint.objects.exists()
    # An agency key names the company (it has no default one), any company.
    response = agency_api.post("/api/v1/webhook-endpoints/", {"url": HOOK, "events": ["call.ended"]}, format="json")
    assert_error(response, 400, "invalid", field="company")
    response = agency_api.post("/api/v1/webhook-endpoints/", {"company": company_b.pk, "url": HOOK,
                                                              "events": ["call.ended"]}, format="json")
    assert response.status_code == 201 and WebhookEndpoint.objects.get().company == company_b


# --- Endpoints: read, update, delete, scoping --------------------------------------------------------


def test_endpoints_are_scoped_to_the_keys_company(api_a, company_a, company_b):
    own, other = endpoint_of(company_a), endpoint_of(company_b, url=HOOK + "/b")
    assert [item["id"] for item in api_a.get("/api/v1/webhook-endpoints/").json()["results"]] == [own.pk]
    assert_error(api_a.get(f"/api/v1/webhook-endpoints/{other.pk}/"), 404, "not_found")
    assert_error(api_a.patch(f"/api/v1/webhook-endpoints/{other.pk}/", {"active": False}, format="json"), 404)
    assert_error(api_a.delete(f"/api/v1/webhook-endpoints/{other.pk}/"), 404, "not_found")
    assert_error(api_a.post(f"/api/v1/webhook-endpoints/{other.pk}/test/"), 404, "not_found")
    other.refresh_from_db()
    assert other.active and not other.deliveries.exists()


def test_update_and_delete_an_endpoint(api_a, company_a, company_b, public_only):
    endpoint = endpoint_of(company_a)
    path = f"/api/v1/webhook-endpoints/{endpoint.pk}/"
    response = api_a.patch(path, {"events": ["booking.created", "report.ready"], "active": False,
                                  "company": company_b.pk}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["events"] == ["booking.created", "report.ready"] and "secret" not in response.json()
    endpoint.refresh_from_db()
    assert endpoint.events == ["booking.created", "report.ready"] and not endpoint.active
    assert endpoint.company == company_a  # an endpoint stays in its company

    assert_error(api_a.patch(path, {"url": "http://192.168.1.10/hook"}, format="json"), 400, "invalid", field="url")
    assert_error(api_a.patch(path, {"events": ["lead.lost"]}, format="json"), 400, "invalid", field="events")
    assert_error(api_a.patch(path, {"secret": ""}, format="json"), 400, "invalid", field="secret")
    assert api_a.patch(path, {"secret": "whsec_rotated"}, format="json").status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.secret == "whsec_rotated" and endpoint.url == HOOK

    response = api_a.put(path, {"url": HOOK + "/v2", "events": ["call.ended"]}, format="json")
    assert response.status_code == 200, response.json()
    endpoint.refresh_from_db()
    assert endpoint.url == HOOK + "/v2" and endpoint.secret == "whsec_rotated"  # a PUT without it keeps it

    assert api_a.delete(path).status_code == 204
    assert not WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_read_only_keys_read_endpoints_and_deliveries_and_change_nothing(readonly_a, company_a):
    endpoint = endpoint_of(company_a)
    delivery = delivery_of(endpoint)
    assert readonly_a.get("/api/v1/webhook-endpoints/").json()["count"] == 1
    assert readonly_a.get(f"/api/v1/webhook-deliveries/{delivery.pk}/").status_code == 200
    for response in [
        readonly_a.post("/api/v1/webhook-endpoints/", {"url": HOOK, "events": ["call.ended"]}, format="json"),
        readonly_a.patch(f"/api/v1/webhook-endpoints/{endpoint.pk}/", {"active": False}, format="json"),
        readonly_a.put(f"/api/v1/webhook-endpoints/{endpoint.pk}/", {"url": HOOK, "events": ["call.ended"]},
                       format="json"),
        readonly_a.delete(f"/api/v1/webhook-endpoints/{endpoint.pk}/"),
        readonly_a.post(f"/api/v1/webhook-endpoints/{endpoint.pk}/test/"),
        readonly_a.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/"),
    ]:
        assert_error(response, 403, "permission_denied")
    endpoint.refresh_from_db()
    assert endpoint.active and WebhookEndpoint.objects.count() == 1 and endpoint.deliveries.count() == 1


# --- Deliveries ---------------------------------------------------------------------------------------


def test_deliveries_list_with_filters_and_detail_with_attempts(api_a, company_a, company_b):
    first, second = endpoint_of(company_a), endpoint_of(company_a, url=HOOK + "/2", events=["lead.captured"])
    delivered = delivery_of(first)
    failed = delivery_of(second, event="lead.captured", status=WebhookDelivery.Status.FAILED, attempts=2)
    other = delivery_of(endpoint_of(company_b, url=HOOK + "/b"))

    def listed(**params):
        response = api_a.get("/api/v1/webhook-deliveries/", params)
        assert response.status_code == 200, response.content
        return [item["id"] for item in response.json()["results"]]

    assert listed() == [str(failed.pk), str(delivered.pk)]
    assert listed(endpoint=first.pk) == [str(delivered.pk)]
    assert listed(status="failed") == [str(failed.pk)]
    assert listed(event="call.ended") == [str(delivered.pk)]
    assert listed(endpoint=other.endpoint_id) == []
    item = api_a.get("/api/v1/webhook-deliveries/").json()["results"][0]
    assert item["attempt_count"] == 2 and item["url"] == HOOK + "/2" and "attempts" not in item
    assert_error(api_a.get("/api/v1/webhook-deliveries/", {"status": "lost"}), 400, "invalid", field="status")
    assert_error(api_a.get("/api/v1/webhook-deliveries/", {"endpoint": "first"}), 400, "invalid", field="endpoint")
    assert_error(api_a.get("/api/v1/webhook-deliveries/", {"event": "call.started"}), 400, "invalid", field="event")

    detail = api_a.get(f"/api/v1/webhook-deliveries/{failed.pk}/").json()
    assert (detail["status"], detail["event"], detail["last_response_code"]) == ("failed", "lead.captured", 503)
    assert [(a["number"], a["response_code"], a["replay"], a["duration_ms"]) for a in detail["attempts"]] == [
        (1, 503, False, 12), (2, 503, False, 12)]
    assert detail["attempts"][0]["error"] == "HTTP 503: down"  # stored text is shown sanitised
    assert_error(api_a.get(f"/api/v1/webhook-deliveries/{other.pk}/"), 404, "not_found")
    assert_error(api_a.get(f"/api/v1/webhook-deliveries/{uuid.uuid4()}/"), 404, "not_found")
    assert_error(api_a.get("/api/v1/webhook-deliveries/not-a-uuid/"), 404, "not_found")
    assert_error(api_a.post(f"/api/v1/webhook-deliveries/{other.pk}/replay/"), 404, "not_found")
    assert other.attempt_log.count() == 1


def test_replay_queues_the_delivery_again(api_a, company_a, django_capture_on_commit_callbacks):
    delivery = delivery_of(endpoint_of(company_a), status=WebhookDelivery.Status.FAILED, attempts=1)
    with django_capture_on_commit_callbacks() as callbacks:
        response = api_a.post(f"/api/v1/webhook-deliveries/{delivery.pk}/replay/")
    assert response.status_code == 202 and response.json()["id"] == str(delivery.pk)
    assert len(callbacks) == 1  # the send, queued after commit


# --- A real test event and a real replay ---------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, django_db_blocker):
    """A Celery worker that may send to loopback (short retries), on a queue of its own."""
    queue = f"api-webhooks-{uuid.uuid4().hex[:6]}"
    proc, node = start_worker(queue, {"VOICEBOT_LLM_BASE_URL": DEAD_LLM}, log_name="celery-api-webhooks.log")
    wait_ready(proc, node)
    yield {"queue": queue}
    kill_worker(proc, signal.SIGTERM)


@pytest.fixture
def worker_queue(webhook_worker):
    from voicebot.celery import app

    previous = app.conf.task_default_queue
    app.conf.task_default_queue = webhook_worker["queue"]
    yield
    app.conf.task_default_queue = previous


@pytest.fixture
def hook():
    receiver = Receiver().start()
    yield receiver
    receiver.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_test_event_and_replay_reach_a_real_receiver_signed(api_a, worker_queue, hook, loopback_allowed):
    response = api_a.post("/api/v1/webhook-endpoints/", {"url": hook.url, "events": ["call.ended"]}, format="json")
    assert response.status_code == 201, response.json()
    endpoint_id, secret = response.json()["id"], response.json()["secret"]

    response = api_a.post(f"/api/v1/webhook-endpoints/{endpoint_id}/test/")
    assert response.status_code == 202, response.json()
    delivery = response.json()
    assert (delivery["event"], delivery["status"], delivery["endpoint"]) == ("webhook.test", "pending", endpoint_id)

    request = hook.wait_for(1)[0]
    body = json.loads(request["body"])
    assert request["headers"]["X-Voicebot-Event"] == "webhook.test"
    assert request["headers"]["X-Voicebot-Delivery"] == delivery["id"] == body["id"]
    assert verify_signature(secret, request["headers"]["X-Voicebot-Signature"], request["body"])
    assert not verify_signature("whsec_wrong", request["headers"]["X-Voicebot-Signature"], request["body"])
    assert body["event"] == "webhook.test" and body["company"] == "alpha"

    path = f"/api/v1/webhook-deliveries/{delivery['id']}/"
    done = wait_until(lambda: (d := api_a.get(path).json())["status"] == "delivered" and d, timeout=30)
    assert done["attempt_count"] == 1 and done["last_response_code"] == 200 and done["delivered_at"]
    assert [(a["number"], a["response_code"], a["replay"]) for a in done["attempts"]] == [(1, 200, False)]

    response = api_a.post(f"{path}replay/")
    assert response.status_code == 202 and response.json()["id"] == delivery["id"]
    again = hook.wait_for(2)[1]
    assert again["headers"]["X-Voicebot-Delivery"] == delivery["id"] and again["body"] == request["body"]
    assert verify_signature(secret, again["headers"]["X-Voicebot-Signature"], again["body"])
    replayed = wait_until(lambda: (d := api_a.get(path).json())["attempt_count"] == 2 and d, timeout=30)
    assert [(a["number"], a["response_code"], a["replay"]) for a in replayed["attempts"]] == [
        (1, 200, False), (2, 200, True)]
