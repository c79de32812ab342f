"""Outbound campaigns: a bot calls a list of contacts within calling hours, with retries.

Built on ``voicebot.outbound_calls.request_call``; the dialling itself is telephony's.
"""
