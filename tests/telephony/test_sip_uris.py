"""Where an outbound SIP call's transfer goes: the host (and port) of the URI the endpoint dialled."""

import pytest

from telephony.sip.agent import URI_HOST
from telephony.sip.outbound import NoSipRoute, callee_uri


@pytest.mark.parametrize(("uri", "host", "port"), [
    ("sip:+15550100999@10.0.0.5:5080;transport=tcp", "10.0.0.5", "5080"),
    ("sip:200@pbx.example.com", "pbx.example.com", None),
    ("sips:[2001:db8::1]:5061", "[2001:db8::1]", "5061"),
])
def test_the_dialled_uris_host_is_the_peer(uri, host, port):
    match = URI_HOST.match(uri)
    assert (match.group(1), match.group(2)) == (host, port)


def test_a_number_needs_the_outbound_uri_setting(settings):
    settings.SIP_OUTBOUND_URI = ""
    with pytest.raises(NoSipRoute, match="VOICEBOT_SIP_OUTBOUND_URI is not set"):
        callee_uri("+15550100999")
    assert callee_uri("sip:200@pbx.example.com") == "sip:200@pbx.example.com"
    settings.SIP_OUTBOUND_URI = "sip:{number}@trunk.example.com;transport=tcp"
    assert callee_uri("+15550100999") == "sip:+15550100999@trunk.example.com;transport=tcp"
