"""Bots through the API: the whole configuration document, activation, tools."""

from tests.api.conftest import assert_error
from voicebot.models import Bot, BotTool

BOOKING = [{"name": "booking", "trigger_keywords": ["book", "appointment"],
            "collect_fields": [{"name": "date", "prompt": "Which day?", "type": "date"}],
            "on_complete": "create_booking"}]
TOOL = {"name": "create_booking", "description": "Books in the calendar", "url": "https://calendar.example.com/book",
        "secret": "s3cret", "parameters": {"type": "object", "properties": {"date": {"type": "string"}}}}


def test_config_document_round_trips_and_replaces_everything(api_a, bot_a):
    document = api_a.get(f"/api/v1/bots/{bot_a.slug}/config/").json()
    assert document["name"] == bot_a.name and document["tools"] == [] and "company" not in document
    document.update(greeting="Hi, Alpha here.", scenarios=BOOKING, tools=[TOOL], temperature=0.5)
    response = api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", document, format="json")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["scenarios"][0]["collect_fields"][0]["type"] == "date"  # stored in its checked form
    assert [t["name"] for t in body["tools"]] == ["create_booking"] and "secret" not in body["tools"][0]
    bot_a.refresh_from_db()
    assert bot_a.greeting == "Hi, Alpha here." and bot_a.temperature == 0.5
    tool = BotTool.objects.get(bot=bot_a)
    assert tool.secret == "s3cret" and tool.url == TOOL["url"]

    # Read, edit, put back: the tool's secret is kept although GET never shows it.
    again = api_a.get(f"/api/v1/bots/{bot_a.slug}/config/").json()
    again["tools"][0]["description"] = "Books a slot"
    assert api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", again, format="json").status_code == 200
    tool.refresh_from_db()
    assert tool.description == "Books a slot" and tool.secret == "s3cret" and tool.pk == BotTool.objects.get().pk

    # PUT replaces: tools left out are deleted, settings left out get their defaults.
    response = api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", {"name": bot_a.name}, format="json")
    assert response.status_code == 200, response.json()
    bot_a.refresh_from_db()
    assert not BotTool.objects.exists() and bot_a.greeting == "" and bot_a.scenarios == [] and bot_a.temperature == 0.3


def test_config_errors_name_the_field_and_change_nothing(api_a, bot_a, bot_b):
    bot_a.greeting = "Original"
    bot_a.save()
    bad = {"name": bot_a.name, "greeting": "New", "temperature": 9,
           "scenarios": [{"name": "x", "trigger_keywords": ["x"], "collect_fields": [{"name": "a", "type": "zip"}]}],
           "tools": [TOOL, {**TOOL, "url": "http://127.0.0.1/admin"}]}
    error = assert_error(api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", bad, format="json"), 400, "invalid")
    assert {"temperature", "scenarios", "tools[1].url"} <= set(error["fields"]), error
    doubled = {"name": bot_a.name, "tools": [TOOL, TOOL]}
    error = assert_error(api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", doubled, format="json"), 400, "invalid")
    assert "more than once" in error["fields"]["tools"][0]
    private = {"name": bot_a.name, "tools": [{**TOOL, "url": "http://10.0.0.5/book"}]}
    assert_error(api_a.put(f"/api/v1/bots/{bot_a.slug}/config/", private, format="json"), 400, "invalid",
                 field="tools[0].url")
    bot_a.refresh_from_db()
    assert bot_a.greeting == "Original" and not BotTool.objects.exists()
    assert_error(api_a.put(f"/api/v1/bots/{bot_b.slug}/config/", {"name": "x"}, format="json"), 404, "not_found")


def test_activate_and_deactivate(api_a, bot_a, bot_b):
    assert api_a.post(f"/api/v1/bots/{bot_a.slug}/deactivate/").json()["active"] is False
    assert Bot.objects.get(pk=bot_a.pk).active is False
    assert api_a.post(f"/api/v1/bots/{bot_a.slug}/activate/").json()["active"] is True
    assert Bot.objects.get(pk=bot_a.pk).active is True
    assert_error(api_a.post(f"/api/v1/bots/{bot_b.slug}/deactivate/"), 404, "not_found")
    assert Bot.objects.get(pk=bot_b.pk).active is True


def test_bot_filters_and_a_bot_stays_in_its_company(api_a, company_a, company_b, bot_a):
    Bot.objects.create(company=company_a, name="Night line", slug="night", active=False)
    assert [b["slug"] for b in api_a.get("/api/v1/bots/?active=false").json()["results"]] == ["night"]
    assert_error(api_a.get("/api/v1/bots/?active=maybe"), 400, "invalid", field="active")
    assert_error(api_a.get("/api/v1/bots/?company=abc"), 400, "invalid", field="company")
    api_a.patch(f"/api/v1/bots/{bot_a.slug}/", {"company": company_b.pk}, format="json")
    assert Bot.objects.get(pk=bot_a.pk).company == company_a


def test_tools_crud_scoped_and_validated(api_a, api_b, bot_a, bot_b):
    created = api_a.post("/api/v1/tools/", {**TOOL, "bot": bot_a.pk}, format="json")
    assert created.status_code == 201, created.json()
    tool_id = created.json()["id"]
    assert "secret" not in created.json()
    assert [t["id"] for t in api_a.get(f"/api/v1/tools/?bot={bot_a.slug}").json()["results"]] == [tool_id]
    assert api_b.get("/api/v1/tools/").json()["results"] == []
    assert_error(api_b.get(f"/api/v1/tools/{tool_id}/"), 404, "not_found")
    assert_error(api_b.delete(f"/api/v1/tools/{tool_id}/"), 404, "not_found")
    assert_error(api_a.post("/api/v1/tools/", {**TOOL, "name": "other", "bot": bot_b.pk}, format="json"), 400,
                 "invalid", field="bot")
    assert_error(api_a.post("/api/v1/tools/", {**TOOL, "bot": bot_a.pk}, format="json"), 400, "invalid")  # same name
    error = assert_error(api_a.patch(f"/api/v1/tools/{tool_id}/", {"url": "http://169.254.169.254/latest"},
                                     format="json"), 400, "invalid", field="url")
    assert "169.254.169.254" in error["fields"]["url"][0] or "address" in error["fields"]["url"][0]
    assert api_a.patch(f"/api/v1/tools/{tool_id}/", {"timeout_sec": 9}, format="json").json()["timeout_sec"] == 9
    assert api_a.delete(f"/api/v1/tools/{tool_id}/").status_code == 204 and not BotTool.objects.exists()
