"""Telephony: every way a call reaches the platform, behind one interface (``telephony.base``).

- ``telephony.providers``: cloud providers (Twilio, Telnyx, Plivo, Exotel, Daily) and browser calls;
- ``telephony.sip``: the platform as a SIP user agent for a PBX or carrier trunk (PJSIP);
- ``telephony.asterisk``: Asterisk chan_websocket and AudioSocket media streams.

The call runner (``pipelines.live.runner``) and the pipeline factory name no provider.
"""
