"""Agency staff see and edit only their own companies' rows in admin, URL guessing included."""

import pytest
from django.urls import reverse
from django.utils import timezone

from voicebot.models import ApiKey, Bot, Call, CallTurn, Company, PhoneNumber


@pytest.fixture
def call_b(bot_b):
    call = Call.objects.create(company=bot_b.company, bot=bot_b, transport="twilio", external_id="CA-b",
                               from_number="+12125550111", ended_at=timezone.now())
    CallTurn.objects.create(call=call, index=0, role="bot", text="Beta secret greeting")
    return call


@pytest.fixture
def call_a(bot_a):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", external_id="CA-a",
                               from_number="+4917012345", ended_at=timezone.now())
    CallTurn.objects.create(call=call, index=0, role="bot", text="Alpha here.")
    CallTurn.objects.create(call=call, index=1, role="caller", text="When do you open?", start_ms=65000)
    return call


def test_lists_show_only_own_company(client_a, bot_a, bot_b, number_a, number_b, call_a, call_b):
    pages = {
        "voicebot_company": ("Alpha Dental", "Beta Salon"),
        "voicebot_bot": ("Alpha front desk", "Beta front desk"),
        "voicebot_phonenumber": ("+4930123456", "+12125550100"),
        "voicebot_call": ("+4917012345", "+12125550111"),
    }
    for model, (own, other) in pages.items():
        body = client_a.get(reverse(f"admin:{model}_changelist")).content.decode()
        assert own in body, model
        assert other not in body, model


def test_list_filters_do_not_leak_other_companies_bot_names(client_a, call_a, call_b):
    body = client_a.get(reverse("admin:voicebot_call_changelist")).content.decode()
    assert "Alpha front desk" in body
    assert "Beta front desk" not in body and "Beta Salon" not in body


@pytest.mark.parametrize("model", ["company", "bot", "phonenumber", "call"])
def test_guessing_another_companys_urls_finds_nothing(client_a, company_b, bot_b, number_b, call_b, model):
    obj = {"company": company_b, "bot": bot_b, "phonenumber": number_b, "call": call_b}[model]
    for view in ("change", "delete", "history"):
        response = client_a.get(reverse(f"admin:voicebot_{model}_{view}", args=[obj.pk]), follow=True)
        body = response.content.decode()
        assert "doesn’t exist" in body or response.status_code in (403, 404), (model, view)
        assert "Beta secret greeting" not in body


def test_posting_to_another_companys_bot_changes_nothing(client_a, bot_b):
    url = reverse("admin:voicebot_bot_change", args=[bot_b.pk])
    client_a.post(url, {"name": "hijacked", "company": bot_b.company_id, "slug": "beta-desk"})
    bot_b.refresh_from_db()
    assert bot_b.name == "Beta front desk"


def test_cannot_create_a_bot_in_another_company(client_a, company_a, company_b):
    response = client_a.post(reverse("admin:voicebot_bot_add"), bot_form(company_b, name="Sneaky", slug="sneaky"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Bot.objects.filter(slug="sneaky").exists()
    # The company choice lists only the user's own company.
    page = client_a.get(reverse("admin:voicebot_bot_add")).content.decode()
    assert "Alpha Dental" in page and "Beta Salon" not in page


def test_recording_is_served_only_to_the_owning_company(client_a, call_a, call_b):
    from django.core.files.base import ContentFile

    for call in (call_a, call_b):
        call.recording.save(f"c{call.pk}.wav", ContentFile(b"RIFF....WAVE"), save=True)
    own = client_a.get(reverse("admin:voicebot_call_recording", args=[call_a.pk]))
    assert own.status_code == 200 and b"".join(own.streaming_content) == b"RIFF....WAVE"
    assert client_a.get(reverse("admin:voicebot_call_recording", args=[call_b.pk])).status_code == 404


def test_call_page_shows_transcript_as_conversation_and_player(client_a, call_a):
    from django.core.files.base import ContentFile

    call_a.recording.save("a.wav", ContentFile(b"RIFF....WAVE"), save=True)
    body = client_a.get(reverse("admin:voicebot_call_change", args=[call_a.pk])).content.decode()
    assert 'class="vb-turn vb-bot"' in body and 'class="vb-turn vb-caller"' in body
    assert body.index("Alpha here.") < body.index("When do you open?")
    assert "1:05" in body  # the caller spoke 65 s into the call
    assert "<audio controls" in body and reverse("admin:voicebot_call_recording", args=[call_a.pk]) in body


def test_staff_cannot_add_companies_or_assign_staff(client_a, company_a):
    assert client_a.get(reverse("admin:voicebot_company_add")).status_code == 403
    page = client_a.get(reverse("admin:voicebot_company_change", args=[company_a.pk])).content.decode()
    assert 'name="staff"' not in page


def test_superuser_sees_every_company(admin_client, company_a, company_b):
    body = admin_client.get(reverse("admin:voicebot_company_changelist")).content.decode()
    assert "Alpha Dental" in body and "Beta Salon" in body


def test_staff_of_two_companies_sees_both_once(client, company_a, company_b, bot_a, bot_b):
    from tests.conftest import make_staff

    user = make_staff("carla", company_a, company_b)
    company_a.staff.add(make_staff("dora"))  # a second staff member must not duplicate rows
    client.force_login(user)
    rows = client.get(reverse("admin:voicebot_bot_changelist")).context["cl"].result_list
    assert sorted(bot.name for bot in rows) == ["Alpha front desk", "Beta front desk"]
    assert Bot.objects.for_user(user).count() == 2


def test_for_user_scopes_every_company_owned_model(staff_a, bot_a, bot_b, number_a, number_b, call_a, call_b):
    assert list(Company.objects.for_user(staff_a)) == [bot_a.company]
    assert list(Bot.objects.for_user(staff_a)) == [bot_a]
    assert list(PhoneNumber.objects.for_user(staff_a)) == [number_a]
    assert list(Call.objects.for_user(staff_a)) == [call_a]
    assert set(CallTurn.objects.for_user(staff_a).values_list("call_id", flat=True)) == {call_a.pk}
    ApiKey.issue(bot_b.company, "b key")
    assert not ApiKey.objects.for_user(staff_a).exists()


def bot_form(company, **overrides):
    data = {
        "company": company.pk, "name": "Front desk", "slug": "front-desk", "active": "on", "language": "",
        "greeting": "Hi", "system_prompt": "Be brief.", "fallback_phrase": "Sorry?", "scenarios": "",
        "max_turns": 20, "silence_timeout_sec": 10, "transfer_number": "", "voice": "", "stt_model": "",
        "llm_model": "", "temperature": 0.3, "max_tokens": 150, "knowledge_top_k": 3,
        "knowledge_score_threshold": 0.3, "answer_style": "automatic", "voicemail_message": "",
        "outbound_greeting_wait_sec": 2.0, "phone_numbers-TOTAL_FORMS": 0, "phone_numbers-INITIAL_FORMS": 0,
        "tools-TOTAL_FORMS": 0, "tools-INITIAL_FORMS": 0,
    }
    data.update(overrides)
    return data


def test_bot_form_shows_scenario_errors_on_the_field(client_a, company_a):
    bad = "- name: booking\n  trigger_keywords: [book]\n  collect_fields:\n    - {name: phone, prompt: 'Phone?', type: phon}"
    response = client_a.post(reverse("admin:voicebot_bot_add"), bot_form(company_a, scenarios=bad))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "scenarios" in errors
    assert "scenarios[0].collect_fields[0].type: 'phon' is not one of" in errors["scenarios"][0]
    assert not Bot.objects.filter(slug="front-desk").exists()


def test_bot_form_saves_yaml_scenarios_and_applies_pasted_settings(client_a, company_a):
    doc = (
        "greeting: Welcome to Alpha!\nmax_turns: 12\nscenarios:\n  - name: booking\n    trigger_keywords: [book]\n"
        "    collect_fields:\n      - {name: phone, prompt: 'Your number?', type: phone}\n    on_complete: booking_created\n"
    )
    response = client_a.post(reverse("admin:voicebot_bot_add"), bot_form(company_a, scenarios=doc))
    assert response.status_code == 302, response.context and response.context["adminform"].form.errors
    bot = Bot.objects.get(slug="front-desk")
    assert bot.greeting == "Welcome to Alpha!" and bot.max_turns == 12
    assert bot.scenarios[0]["collect_fields"][0] == {"name": "phone", "prompt": "Your number?", "type": "phone",
                                                     "required": True}
    page = client_a.get(reverse("admin:voicebot_bot_change", args=[bot.pk])).content.decode()
    assert "on_complete: booking_created" in page  # shown back as YAML


def test_inline_phone_number_gets_the_bots_company(client_a, company_a):
    data = bot_form(company_a, **{"phone_numbers-TOTAL_FORMS": 1, "phone_numbers-0-number": "+4930999888",
                                  "phone_numbers-0-provider": "twilio", "phone_numbers-0-active": "on"})
    response = client_a.post(reverse("admin:voicebot_bot_add"), data)
    assert response.status_code == 302
    assert PhoneNumber.objects.get(number="+4930999888").company == company_a


def test_phone_number_must_be_e164(client_a, company_a, bot_a):
    response = client_a.post(reverse("admin:voicebot_phonenumber_add"),
                             {"company": company_a.pk, "number": "030 123456", "provider": "twilio", "bot": bot_a.pk})
    assert "E.164" in response.content.decode()
    assert not PhoneNumber.objects.filter(number="030 123456").exists()
