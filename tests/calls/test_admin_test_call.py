"""The bot admin's "Test call" button links to the runner's call page with a token for that bot only."""

import re
from html import unescape
from urllib.parse import parse_qs, urlparse

import pytest

from voicebot import call_links


@pytest.mark.django_db
def test_bot_admin_has_a_signed_test_call_link(client_a, bot_a, settings):
    page = client_a.get(f"/admin/voicebot/bot/{bot_a.pk}/change/").content.decode()
    link = unescape(re.search(r'href="([^"]+)"[^>]*>Test call<', page).group(1))
    url = urlparse(link)
    assert link.startswith(settings.RUNNER_PUBLIC_URL.rstrip("/") + f"/call/{bot_a.slug}?")
    call_links.check(parse_qs(url.query)["token"][0], bot_a.slug)  # valid for this bot
    with pytest.raises(call_links.BadCallToken, match="another bot"):
        call_links.check(parse_qs(url.query)["token"][0], "beta-desk")


@pytest.mark.django_db
def test_other_companys_staff_get_no_link(client, staff_b, bot_a):
    client.force_login(staff_b)
    response = client.get(f"/admin/voicebot/bot/{bot_a.pk}/change/")
    assert response.status_code in (302, 404)
    assert b"Test call" not in response.content
