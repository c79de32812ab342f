import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from pipelines.config import BotConfig, BotNotFound
from voicebot.models import BotTool


def test_snapshot_by_number_reads_the_bot_in_few_queries(bot_a, number_a):
    BotTool.objects.create(bot=bot_a, name="create_booking", description="Books", url="http://127.0.0.1:9/x")
    with CaptureQueriesContext(connection) as queries:
        config = BotConfig.for_number(number_a.number)
    assert len(queries) <= 2  # the number with bot and company, then the bot's tools
    assert config.slug == "alpha-desk"
    assert config.company_country == "DE" and config.company_timezone == "Europe/Berlin"
    assert config.language == "en"  # the company's default language
    assert [t.name for t in config.tools] == ["create_booking"]


def test_snapshot_is_immutable(bot_a):
    bot_a.scenarios = [{"name": "booking", "trigger_keywords": ["book"], "collect_fields": []}]
    bot_a.save()
    config = BotConfig.for_slug(bot_a.slug)
    with pytest.raises(AttributeError):
        config.greeting = "changed"
    with pytest.raises(TypeError):
        config.scenarios[0]["name"] = "changed"


def test_inactive_bot_or_number_is_not_found(bot_a, number_a):
    bot_a.active = False
    bot_a.save()
    with pytest.raises(BotNotFound, match=r"\+4930123456"):
        BotConfig.for_number(number_a.number)
    with pytest.raises(BotNotFound):
        BotConfig.for_slug(bot_a.slug)
    with pytest.raises(BotNotFound):
        BotConfig.for_number("+19999999999")
