"""An input transport whose ``receive()`` loop runs from the pipeline's start to its end."""

from __future__ import annotations

from pipecat.frames.frames import CancelFrame, EndFrame, StartFrame
from pipecat.transports.base_input import BaseInputTransport


class ReceivingInputTransport(BaseInputTransport):
    """Subclasses write ``receive()``: read the caller's side and push frames until cancelled."""

    def __init__(self, params, **kwargs):
        super().__init__(params, **kwargs)
        self._receiver = None

    async def start(self, frame: StartFrame):
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._receiver is None:
            self._receiver = self.create_task(self.receive())

    async def stop(self, frame: EndFrame):
        await super().stop(frame)
        await self._stop_receiving()

    async def cancel(self, frame: CancelFrame):
        await super().cancel(frame)
        await self._stop_receiving()

    async def _stop_receiving(self):
        if self._receiver:
            await self.cancel_task(self._receiver)
            self._receiver = None

    async def receive(self):
        raise NotImplementedError
