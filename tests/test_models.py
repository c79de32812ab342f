import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from voicebot.models import Bot, BotTool, Call, Company, PhoneNumber


def test_company_rejects_unknown_timezone_and_country(db):
    company = Company(name="X", slug="x", timezone="Mars/Olympus", country="usa")
    with pytest.raises(ValidationError) as info:
        company.full_clean()
    assert "Mars/Olympus" in str(info.value.message_dict["timezone"])
    assert "country" in info.value.message_dict


def test_company_country_defaults_from_settings(db, settings):
    settings.DEFAULT_COUNTRY = "GB"
    assert Company.objects.create(name="Y", slug="y").country == "GB"


def test_bot_clean_validates_and_normalises_scenarios(company_a):
    bot = Bot(company=company_a, name="B", slug="b", scenarios=[{"name": "booking", "trigger_keywords": ["Book"]}])
    bot.full_clean()
    assert bot.scenarios[0]["trigger_keywords"] == ["book"]
    bot.scenarios = [{"name": "booking"}]
    with pytest.raises(ValidationError) as info:
        bot.full_clean()
    assert "needs trigger_keywords" in str(info.value.message_dict["scenarios"])


def test_bot_language_falls_back_to_company(bot_a):
    assert bot_a.effective_language == "en"
    bot_a.language = "de"
    assert bot_a.effective_language == "de"


def test_phone_number_is_unique_and_its_bot_must_be_the_companys(bot_a, bot_b, number_a):
    with pytest.raises(IntegrityError), transaction.atomic():
        PhoneNumber.objects.create(company=bot_a.company, number=number_a.number)
    wrong = PhoneNumber(company=bot_a.company, bot=bot_b, number="+4930111222")
    with pytest.raises(ValidationError) as info:
        wrong.full_clean()
    assert "another company" in str(info.value.message_dict["bot"])


def test_routable_numbers_need_an_active_number_and_bot(bot_a, number_a):
    assert list(PhoneNumber.objects.routable()) == [number_a]
    bot_a.active = False
    bot_a.save()
    assert not PhoneNumber.objects.routable().exists()


def test_call_external_id_is_unique_per_transport_but_blank_ids_repeat(bot_a):
    Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", external_id="CA1")
    Call.objects.create(company=bot_a.company, bot=bot_a, transport="telnyx", external_id="CA1")
    Call.objects.create(company=bot_a.company, bot=bot_a, transport="webrtc")
    Call.objects.create(company=bot_a.company, bot=bot_a, transport="webrtc")
    with pytest.raises(IntegrityError), transaction.atomic():
        Call.objects.create(company=bot_a.company, bot=bot_a, transport="twilio", external_id="CA1")


def test_deleting_a_bot_keeps_its_calls(bot_a):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="sim")
    bot_a.delete()
    call.refresh_from_db()
    assert call.bot is None and call.company_id


def test_tool_parameters_must_be_a_json_schema_object(bot_a):
    tool = BotTool(bot=bot_a, name="book", description="Books", url="https://example.test/hook", parameters=[1])
    with pytest.raises(ValidationError) as info:
        tool.full_clean()
    assert "JSON schema object" in str(info.value.message_dict["parameters"])
    tool.parameters = {"type": "object", "properties": {"date": {"type": "string"}}}
    tool.full_clean()
