"""The bot admin's "Test call" button links to the runner's call page with a token for that bot only."""

import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest

from voicebot import call_links


@pytest.mark.django_db
def test_bot_admin_test_call_mints_a_link_for_the_clicking_user(client_a, staff_a, bot_a, settings):
    page = client_a.get(f"/admin/voicebot/bot/{bot_a.pk}/change/").content.decode()
    button = unescape(re.search(r'href="([^"]+)"[^>]*>Test call<', page).group(1))
    first, second = client_a.get(button), client_a.get(button)
    assert first.status_code == second.status_code == 302
    link = first["Location"]
    assert link.startswith(settings.RUNNER_PUBLIC_URL.rstrip("/") + f"/call/{bot_a.slug}?")
    ticket = call_links.check(parse_qs(urlparse(link).query)["token"][0], bot_a.slug)  # valid for this bot
    assert ticket.user_id == staff_a.pk and call_links.user_may_call(ticket, bot_a.company_id)
    assert ticket.nonce != call_links.check(parse_qs(urlparse(second["Location"]).query)["token"][0], bot_a.slug).nonce
    with pytest.raises(call_links.BadCallToken, match="another bot"):
        call_links.check(parse_qs(urlparse(link).query)["token"][0], "beta-desk")


@pytest.mark.django_db
def test_other_companys_staff_get_no_link(client, staff_b, bot_a):
    client.force_login(staff_b)
    response = client.get(f"/admin/voicebot/bot/{bot_a.pk}/change/")
    assert response.status_code in (302, 404)
    assert b"Test call" not in response.content
    assert client.get(f"/admin/voicebot/bot/{bot_a.pk}/test-call/").status_code in (302, 404)
    ticket = call_links.check(call_links.sign(bot_a.slug, staff_b.pk), bot_a.slug)
    assert not call_links.user_may_call(ticket, bot_a.company_id)
