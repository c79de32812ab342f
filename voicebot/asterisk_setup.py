"""What an Asterisk number's set-up needs: its AudioSocket UUID and the dialplan lines that prove it.

Asterisk signs nothing, so (as for Exotel) the number's ``PhoneNumber.stream_secret``
proves which number a stream is for:

- chan_websocket: the secret rides in the websocket URI, added by the dial string's
  ``v(secret=...)`` option (``Dial(WebSocket/<connection>/<options>)``, docs.asterisk.org
  "WebSocket Channel Driver"; ``channels/chan_websocket.c`` appends ``v()`` to the
  ``websocket_client.conf`` URI, commas turned into ``&``);
- AudioSocket: the only thing Asterisk sends before audio is the 16-byte UUID given to
  ``AudioSocket(uuid,host:port)``, so the number's UUID is derived from its secret
  (``audiosocket_uuid``): one-way, so the UUID does not reveal the websocket secret.

Here (not in ``telephony``) because the admin shows these lines and ``voicebot`` imports
no other app; ``telephony.asterisk`` uses the same functions to check a connection.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

WEBSOCKET_CONNECTION = "voicebot"  # the websocket_client.conf section the dialplan names
WEBSOCKET_PATH = "/telephony/asterisk/media"


def audiosocket_uuid(stream_secret: str) -> uuid.UUID:
    """The AudioSocket UUID of the number with this stream secret (HMAC-SHA256, first 16 bytes)."""
    digest = hmac.new(stream_secret.encode(), b"audiosocket", hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16])


def websocket_uri(runner_public_url: str) -> str:
    """The ``uri =`` of the websocket_client.conf connection: the runner's media websocket."""
    base = runner_public_url.rstrip("/")
    if base.startswith("https://"):
        base = "wss://" + base[len("https://"):]
    elif base.startswith("http://"):
        base = "ws://" + base[len("http://"):]
    return base + WEBSOCKET_PATH


def websocket_dial(number: str, stream_secret: str, *, codec: str = "slin16") -> str:
    """The dialplan line that hands a call for ``number`` to the bot over chan_websocket.

    ``n``: Asterisk does not answer the channel itself; the runner sends ``ANSWER`` once a
    bot has taken the call (a refused call is never answered, the dialplan goes on).
    Caller id and the dialled extension go as URI parameters, URI-encoded as the driver
    requires (``validate_uri_parameters``).
    """
    params = f"secret={stream_secret},from=${{URIENCODE(${{CALLERID(num)}})}},to=${{URIENCODE(${{EXTEN}})}}"
    return f"exten => {number},1,Dial(WebSocket/{WEBSOCKET_CONNECTION}/c({codec})nv({params}))"


def audiosocket_dial(number: str, stream_secret: str, host: str, port: int) -> str:
    """The dialplan lines that hand a call for ``number`` to the bot over AudioSocket (8 kHz slin)."""
    return (f"exten => {number},1,Answer()\n"
            f" same => n,AudioSocket({audiosocket_uuid(stream_secret)},{host}:{port})\n"
            f" same => n,Hangup()")
