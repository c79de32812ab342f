"""REST API keys and scoping: an API key acts for its company only; staff sessions see their companies."""

from django.utils import timezone
from rest_framework.test import APIClient

from tests.api.conftest import assert_error
from voicebot.models import ApiKey, Bot, Call, CallTurn


def test_requests_without_a_valid_key_are_refused(bot_a):
    client = APIClient()
    assert client.get("/api/v1/bots/").status_code in (401, 403)
    client.credentials(HTTP_AUTHORIZATION="Bearer vb_not-a-key")
    error = assert_error(client.get("/api/v1/bots/"), 401, "authentication_failed")
    assert "Unknown or revoked" in error["message"]


def test_revoked_key_is_refused(company_a, bot_a):
    key, raw = ApiKey.issue(company_a, "old")
    key.revoked_at = timezone.now()
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/api/v1/bots/").status_code == 401


def test_key_stores_only_a_hash_and_records_use(company_a, api_a):
    key_a = api_a.raw_key
    key = ApiKey.objects.get(company=company_a)
    assert key_a not in (key.key_hash, key.key_prefix) and key.key_hash == ApiKey.hash(key_a)
    api_a.get("/api/v1/bots/")
    key.refresh_from_db()
    assert key.last_used_at is not None


def test_key_lists_and_reads_only_its_company(api_a, bot_a, bot_b, number_a, number_b):
    bots = api_a.get("/api/v1/bots/").json()["results"]
    assert [b["slug"] for b in bots] == ["alpha-desk"]
    assert api_a.get("/api/v1/bots/beta-desk/").status_code == 404
    numbers = api_a.get("/api/v1/phone-numbers/").json()["results"]
    assert [n["number"] for n in numbers] == ["+4930123456"]
    assert api_a.get(f"/api/v1/phone-numbers/{number_b.pk}/").status_code == 404


def test_key_cannot_write_into_another_company(api_a, company_b, bot_b):
    response = api_a.post("/api/v1/bots/", {"company": company_b.pk, "name": "X", "slug": "x"}, format="json")
    assert_error(response, 400, "invalid", field="company")
    response = api_a.patch("/api/v1/bots/beta-desk/", {"name": "hijacked"}, format="json")
    assert_error(response, 404, "not_found")
    response = api_a.post("/api/v1/phone-numbers/", {"number": "+4930555000", "bot": bot_b.pk}, format="json")
    assert_error(response, 400, "invalid", field="bot")
    assert Bot.objects.get(slug="beta-desk").name == "Beta front desk"


def test_create_bot_defaults_to_the_keys_company_and_validates_scenarios(api_a, company_a):
    bad = [{"name": "booking", "trigger_keywords": ["book"], "collect_fields": [{"name": "p", "prompt": "?", "type": "zip"}]}]
    response = api_a.post("/api/v1/bots/", {"name": "New", "slug": "new-bot", "scenarios": bad}, format="json")
    error = assert_error(response, 400, "invalid", field="scenarios")
    assert "scenarios[0].collect_fields[0].type" in error["fields"]["scenarios"][0]

    good = [{"name": "booking", "trigger_keywords": ["book"]}]
    response = api_a.post("/api/v1/bots/", {"name": "New", "slug": "new-bot", "scenarios": good}, format="json")
    assert response.status_code == 201, response.json()
    bot = Bot.objects.get(slug="new-bot")
    assert bot.company == company_a
    assert bot.scenarios == [{"name": "booking", "trigger_keywords": ["book"], "collect_fields": [],
                              "use_knowledge_base": False}]


def test_calls_list_and_detail_with_turns_scoped(api_a, bot_a, bot_b):
    own = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", external_id="CA1")
    CallTurn.objects.create(call=own, index=0, role="bot", text="Hello")
    other = Call.objects.create(company=bot_b.company, bot=bot_b, transport="twilio", external_id="CA2")
    listed = api_a.get("/api/v1/calls/").json()["results"]
    assert [c["id"] for c in listed] == [own.pk]
    detail = api_a.get(f"/api/v1/calls/{own.pk}/").json()
    assert detail["turns"] == [{"index": 0, "role": "bot", "text": "Hello", "start_ms": None, "end_ms": None,
                                "latency_ms": None, "interrupted": False}]
    assert api_a.get(f"/api/v1/calls/{other.pk}/").status_code == 404
    refused = api_a.post("/api/v1/calls/", {}, format="json")  # placing a call needs a bot and a number
    assert set(assert_error(refused, 400, "invalid")["fields"]) == {"bot", "to"}


def test_staff_session_sees_only_its_companies(client_a, bot_a, bot_b, company_a):
    bots = client_a.get("/api/v1/bots/").json()["results"]
    assert [b["slug"] for b in bots] == ["alpha-desk"]
