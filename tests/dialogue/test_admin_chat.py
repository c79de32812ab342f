"""Admin: "Try this bot" (staff chat with their own bots only) and invalid scenario configs refused."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from voicebot.models import Bot, Call

pytestmark = [pytest.mark.django_db, pytest.mark.models]


@pytest.fixture
def demo_client(client, demo_bot):
    client.force_login(get_user_model().objects.get(username="demo"))
    return client


def test_bot_page_links_to_try_this_bot(demo_client, demo_bot):
    page = demo_client.get(reverse("admin:voicebot_bot_change", args=[demo_bot.pk]))
    assert page.status_code == 200
    assert reverse("try_bot", args=[demo_bot.pk]) in page.content.decode()
    assert "Try this bot" in page.content.decode()


def test_staff_chat_with_their_bot_and_see_the_active_scenario_and_field(demo_client, demo_bot):
    url = reverse("try_bot", args=[demo_bot.pk])
    first = demo_client.get(url)
    assert "Hello! Elegant beauty salon. How can I help?" in first.content.decode()
    assert demo_client.post(url, {"message": "I'd like to book an appointment"}).status_code == 302
    page = demo_client.get(url).content.decode()
    assert "Sure. Which service would you like?" in page
    assert '<td id="vb-scenario">booking</td>' in page
    assert '<td id="vb-field">service</td>' in page
    demo_client.post(url, {"message": "a pedicure"})
    page = demo_client.get(url).content.decode()
    assert '<td id="vb-field">date</td>' in page and "pedicure" in page

    empty = demo_client.post(url, {"message": "   "})
    assert "Type a message first." in empty.content.decode()

    demo_client.post(url, {"action": "end"})
    call = Call.objects.get(bot=demo_bot)
    assert call.transport == "chat" and call.scenario == "booking"
    assert call.collected_fields == {"service": "pedicure"}
    assert call.turns.count() == 5
    assert "Sure. Which service" not in demo_client.get(url).content.decode()  # a fresh chat after ending


def test_staff_cannot_try_another_company_s_bot(client_a, bot_a, demo_bot):
    assert client_a.get(reverse("try_bot", args=[demo_bot.pk])).status_code == 404
    assert client_a.post(reverse("try_bot", args=[demo_bot.pk]), {"message": "hi"}).status_code == 404
    assert not Call.objects.filter(bot=demo_bot).exists()
    assert client_a.get(reverse("try_bot", args=[bot_a.pk])).status_code == 200


def test_anonymous_users_are_sent_to_login(client, demo_bot):
    response = client.get(reverse("try_bot", args=[demo_bot.pk]))
    assert response.status_code == 302 and "/login/" in response["Location"]


def _bot_form(bot: Bot, scenarios: str) -> dict:
    data = {
        "company": bot.company_id, "name": bot.name, "slug": bot.slug, "active": "on", "language": "",
        "greeting": bot.greeting, "system_prompt": bot.system_prompt, "fallback_phrase": bot.fallback_phrase,
        "scenarios": scenarios, "max_turns": 20, "silence_timeout_sec": 10, "transfer_number": "",
        "voice": "", "stt_model": "", "llm_model": "", "temperature": 0.3, "max_tokens": 150,
        "knowledge_top_k": 3, "knowledge_score_threshold": 0.3, "answer_style": "automatic",
        "voicemail_message": "", "outbound_greeting_wait_sec": 2.0,
    }
    for prefix in ("phone_numbers", "tools"):
        data.update({f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0,
                     f"{prefix}-MIN_NUM_FORMS": 0, f"{prefix}-MAX_NUM_FORMS": 1000})
    return data


def test_an_invalid_scenario_config_is_refused_with_the_field_named(client_a, bot_a):
    url = reverse("admin:voicebot_bot_change", args=[bot_a.pk])
    bad = ("- name: booking\n  trigger_keywords: [book]\n  collect_fields:\n"
           "    - {name: phone, prompt: 'Your phone?', type: phon}\n")
    response = client_a.post(url, _bot_form(bot_a, bad))
    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert "scenarios" in errors
    assert any("scenarios[0].collect_fields[0].type: 'phon' is not one of" in e for e in errors["scenarios"])
    bot_a.refresh_from_db()
    assert bot_a.scenarios == []

    good = bad.replace("type: phon", "type: phone")
    assert client_a.post(url, _bot_form(bot_a, good)).status_code == 302
    bot_a.refresh_from_db()
    assert bot_a.scenarios[0]["collect_fields"][0]["type"] == "phone"


def test_a_booking_over_several_admin_requests_keeps_what_its_tool_did(demo_client, demo_bot, receiver):
    """The chat is rebuilt from the session on each request: the action log must survive that."""
    url = reverse("try_bot", args=[demo_bot.pk])
    demo_client.get(url)
    for line in ("I'd like to book an appointment", "A manicure, please", "next Tuesday", "half past four",
                 "two one two, five five five, oh one two three", "yes, that's right"):
        assert demo_client.post(url, {"message": line}).status_code == 302
    assert len(receiver.requests) == 1  # the booking was delivered, in the last request
    demo_client.post(url, {"action": "end"})
    actions = Call.objects.get(bot=demo_bot).metrics["scenario_engine"]["actions"]
    assert len(actions) == 1 and actions[0]["ok"] is True
