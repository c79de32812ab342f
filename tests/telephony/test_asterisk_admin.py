"""An Asterisk number's "Provider set-up" in admin: the websocket_client.conf URI, the chan_websocket
dial line with the number's secret, and the AudioSocket UUID with its dial lines."""

import pytest
from django.urls import reverse

from tests.calls.conftest import number_for
from voicebot.asterisk_setup import audiosocket_uuid

pytestmark = pytest.mark.django_db


def test_the_number_page_shows_both_asterisk_set_ups(client_a, bot_a, settings):
    settings.RUNNER_PUBLIC_URL = "https://bots.example.com"
    settings.ASTERISK_AUDIOSOCKET_HOST, settings.ASTERISK_AUDIOSOCKET_PORT = "10.0.0.3", 9092
    number = number_for(bot_a, "asterisk", "200")
    page = client_a.get(reverse("admin:voicebot_phonenumber_change", args=[number.pk])).content.decode()
    assert "uri = wss://bots.example.com/telephony/asterisk/media" in page
    assert (f"exten =&gt; 200,1,Dial(WebSocket/voicebot/c(slin16)nv(secret={number.stream_secret},"
            "from=${URIENCODE(${CALLERID(num)})},to=${URIENCODE(${EXTEN})}))") in page
    assert f"AudioSocket({audiosocket_uuid(number.stream_secret)},10.0.0.3:9092)" in page
