"""The runner mounts the PBX entry points: chan_websocket's route ahead of the catch-all refusal,
and the listeners the settings switch on."""

from telephony import listeners
from telephony.asterisk import WEBSOCKET_PATH


def test_chan_websocket_route_is_served_before_unknown_streams_are_refused():
    from pipelines.live.runner import create_app

    paths = [route.path for route in create_app(preload=False).routes]
    assert WEBSOCKET_PATH in paths
    assert paths.index(WEBSOCKET_PATH) < paths.index("/telephony/{provider}/media")


def test_listeners_from_settings(settings):
    settings.SIP_ENABLED, settings.ASTERISK_AUDIOSOCKET_ENABLED = False, False
    assert listeners.from_settings(runner=None) == []
    settings.SIP_ENABLED, settings.ASTERISK_AUDIOSOCKET_ENABLED = True, True
    settings.SIP_PORT, settings.ASTERISK_AUDIOSOCKET_PORT = 5099, 9099
    sip, audiosocket = listeners.from_settings(runner=None)  # made, not started
    assert (sip.name, sip.settings.port) == ("sip", 5099)
    assert (audiosocket.name, audiosocket.port) == ("audiosocket", 9099)
    assert audiosocket.status() == {"ok": False, "listening": "127.0.0.1:9099"}
