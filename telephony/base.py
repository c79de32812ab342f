"""What every telephony entry point hands the call runner: one ``CallStart`` and one ``CallControl``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

UNKNOWN_NUMBER_APOLOGY = "Sorry, this number is not in service. Goodbye."
# A provider's answering-machine verdict at a placed call's answer (``CallStart.answered_by``), in
# the adapters' words: a person, a machine, or a machine whose greeting (and beep) is already over.
HUMAN, MACHINE, MACHINE_AFTER_GREETING = "human", "machine", "machine_after_greeting"
MACHINE_VERDICTS = (HUMAN, MACHINE, MACHINE_AFTER_GREETING)
BUSY = "Sorry, all our lines are busy. Please call again in a few minutes."


@dataclass(frozen=True)
class CallStart:
    """A verified call about to start: who called which number, through which provider.

    ``from_``/``to`` are as the provider gave them (E.164 for the clouds, full SIP URIs
    for SIP); ``number`` is what picks the bot through ``PhoneNumber`` (the called
    number, or a SIP Request-URI's user part; empty: ``to``). An outbound call's
    ``from_`` is the bot's number and ``to`` the callee's.
    """

    provider: str
    call_id: str
    from_: str = ""
    to: str = ""
    number: str = ""
    outbound_call: int | None = None  # a call the platform placed: its Call row (routes by it, not by number)
    answered_by: str = ""  # a placed call: the provider's answering-machine verdict (MACHINE_VERDICTS), if any

    @property
    def called_number(self) -> str:
        return self.number or self.to


@dataclass
class CallControl:
    """Provider actions for a live call; each entry point fills in what its provider supports.

    ``transfer`` None: the provider cannot transfer, and the call runs as if the bot had
    no transfer number. ``send_dtmf(digits)`` plays RFC 4733 / in-band digits to the caller.
    """

    hang_up: Callable[[], Awaitable[None]] | None = None
    transfer: Callable[[str], Awaitable[None]] | None = None
    send_dtmf: Callable[[str], Awaitable[None]] | None = None


@dataclass(frozen=True)
class Refusal:
    """Why a verified call gets no bot, and what the caller hears instead.

    ``reason``: ``unknown_number`` (no active bot answers the number, or it belongs to
    another provider) or ``busy`` (the runner's or the company's lines are all taken).
    """

    reason: str
    apology: str


class AcceptedCall(Protocol):
    """A routed call holding its line (the runner's side of the interface).

    The entry point runs it on its transport, or releases the line if the caller left
    before it could start (a SIP CANCEL before answer).
    """

    bot: str
    transfer_number: str

    async def run(self, transport, control: CallControl, *, greet_on_start: bool = True) -> None:
        """Run the call's pipeline on ``transport`` to its end, then store it."""

    async def caller_left(self) -> None:
        """The caller hung up (BYE, HANGUP, socket closed): end the pipeline, reason caller_hangup."""

    def release(self) -> None:
        """Give the line back without running the call."""


class CallRunner(Protocol):
    """What an entry point asks of the runner: route the call and take its line, or refuse it."""

    async def accept(self, start: CallStart) -> AcceptedCall | Refusal:
        ...
