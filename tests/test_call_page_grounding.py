"""The call page shows staff what the language model tried to say and what the fact check said instead."""

import pytest

from voicebot.models import Call


@pytest.mark.django_db
def test_the_call_page_shows_replaced_sentences(client_a, bot_a):
    call = Call.objects.create(company=bot_a.company, bot=bot_a, transport="sim", metrics={"grounding": {
        "checked": 3, "check_ms_max": 0.4, "replaced": [{
            "tried": "For emergencies, call <b>555-9999</b> any time.", "facts": ["phone: 555-9999"],
            "said": "I'm sorry, I don't have that information."}]}})
    page = client_a.get(f"/admin/voicebot/call/{call.pk}/change/").content.decode()
    assert "Replaced by the fact check" in page
    assert "<s>For emergencies, call &lt;b&gt;555-9999&lt;/b&gt; any time.</s>" in page  # escaped, struck out
    assert "phone: 555-9999" in page and "I&#x27;m sorry, I don&#x27;t have that information." in page

    clean = Call.objects.create(company=bot_a.company, bot=bot_a, transport="sim", metrics={})
    assert "every fact the bot said was found" in client_a.get(f"/admin/voicebot/call/{clean.pk}/change/").content.decode()
