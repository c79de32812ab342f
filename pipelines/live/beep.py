"""A streaming detector for an answering machine's beep in the caller's audio.

A beep is a sustained near-pure tone: in each ~32 ms window (Hann, half
overlap) almost all the energy sits in one spectral peak between 350 and
2600 Hz, the peak's frequency stays within a few percent, and this lasts
from ``min_secs`` (150 ms) to ``max_secs`` (a longer tone is a dial or line
tone, not a beep). Speech never qualifies: its energy is spread over a
fundamental and harmonics, and its pitch glides. Level does not matter above
``min_dbfs``; mu-law coding adds noise far below the tone.

``feed()`` takes int16 mono PCM at the detector's rate (8 or 16 kHz; any
rate works, windows are sized in time) and returns the beep's end time, in
seconds since the first sample fed, in the call that completes the first
window after the beep (about 30-50 ms after it ended); otherwise None.
"""

from __future__ import annotations

import numpy as np

WINDOW_SECS = 0.032
EDGE_SECS = 0.01  # how far an estimated edge may be off (measured: 2 ms); a 150 ms beep must pass


class BeepDetector:
    def __init__(self, sample_rate: int = 16000, *, min_secs: float = 0.15, max_secs: float = 4.0,
                 low_hz: float = 350.0, high_hz: float = 2600.0, tonality: float = 0.8,
                 min_dbfs: float = -45.0, drift: float = 0.03):
        self.sample_rate = sample_rate
        self.min_secs, self.max_secs = min_secs, max_secs
        self.low_hz, self.high_hz = low_hz, high_hz
        self.tonality, self.drift = tonality, drift
        self._win = round(WINDOW_SECS * sample_rate)
        self._hop = self._win // 2
        self._nfft = 1 << (self._win - 1).bit_length()
        self._hann = np.hanning(self._win).astype(np.float32)
        # A window's spectral energy for a sine at min_dbfs (Parseval, one-sided spectrum).
        self._min_energy = 10 ** (min_dbfs / 10) * 0.5 * float(np.sum(self._hann ** 2)) * self._nfft / 2
        self._pending = np.zeros(0, dtype=np.float32)
        self._start = 0  # sample index of the first pending sample
        self._run: list[tuple[int, float, float]] = []  # (window start, frequency, energy) of the current tone
        self._max_windows = int(max_secs * sample_rate / self._hop) + 2
        self._line_tone = False
        self._top = 0.0  # the current tone's loudest window
        self._before = 0.0  # energy of the previous window
        self._run_before: float | None = None  # ... and of the window before the tone

    @property
    def seconds(self) -> float:
        """Audio fed so far, in seconds (the detector's clock)."""
        return (self._start + len(self._pending)) / self.sample_rate

    def feed(self, pcm: bytes) -> float | None:
        samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32) / 32768.0
        self._pending = np.concatenate((self._pending, samples)) if len(self._pending) else samples
        found = None
        while len(self._pending) >= self._win:
            ended = self._window(self._pending[:self._win])
            if ended is not None:
                found = ended
            self._pending = self._pending[self._hop:]
            self._start += self._hop
        return found

    def _window(self, x: np.ndarray) -> float | None:
        windowed = x * self._hann
        energy = float(np.dot(windowed, windowed)) * self._nfft / 2  # the spectrum's, by Parseval
        if energy >= self._min_energy:  # silence costs no FFT
            spectrum = np.abs(np.fft.rfft(windowed, self._nfft)) ** 2
            spectrum[0] = 0.0
            energy = float(spectrum.sum())
        before, self._before = self._before, energy
        if energy < self._min_energy or (self._run and energy < 0.05 * self._top):
            return self._close(after=energy)  # quiet, or only the tone's tail left in this window
        k = int(np.argmax(spectrum))
        freq = self._frequency(spectrum, k) if 2 <= k < len(spectrum) - 2 else 0.0
        tonal = (self.low_hz <= freq <= self.high_hz
                 and float(spectrum[k - 2:k + 3].sum()) >= self.tonality * energy)
        if not tonal:
            return self._close(after=energy)
        ended = None
        if self._run and abs(freq - self._run[0][1]) > self.drift * self._run[0][1]:
            ended = self._close()  # another tone starts here
        if not self._run:
            self._run_before = before
        self._run.append((self._start, freq, energy))
        self._top = max(self._top, energy)
        if len(self._run) > self._max_windows:
            self._run = self._run[-1:]  # a line tone, not a beep: never reported
            self._line_tone = True
        return ended

    def _frequency(self, spectrum: np.ndarray, k: int) -> float:
        """The peak's frequency, refined between bins (parabola on the log spectrum)."""
        a, b, c = np.log(spectrum[k - 1:k + 2] + 1e-20)
        denom = a - 2 * b + c
        offset = 0.5 * (a - c) / denom if denom else 0.0
        return (k + offset) * self.sample_rate / self._nfft

    def _close(self, after: float | None = None) -> float | None:
        """End the current tone; its end time if it was a beep.

        An edge lies where a window centred on it holds half the tone's energy:
        interpolated between the last window above half and the next one below.
        ``after`` is the energy of the window that ended the tone, if it was quiet.
        """
        run, top, line_tone = self._run, self._top, self._line_tone
        self._run, self._top, self._line_tone = [], 0.0, False
        if not run or line_tone:
            return None
        energies = [e for _, _, e in run]
        loud = [i for i, e in enumerate(energies) if e >= 0.5 * top]
        first, last = loud[0], loud[-1]
        prev = energies[first - 1] if first > 0 else self._run_before
        nxt = energies[last + 1] if last + 1 < len(run) else after
        start = self._edge(run[first][0], energies[first], prev, top, -1)
        end = self._edge(run[last][0], energies[last], nxt, top, +1)
        if self.min_secs - EDGE_SECS <= end - start <= self.max_secs:
            return end
        return None

    def _edge(self, window_start: int, energy: float, neighbour: float | None, top: float, side: int) -> float:
        centre = window_start + self._win / 2
        if neighbour is not None and neighbour < 0.5 * top:
            centre += side * self._hop * (energy - 0.5 * top) / (energy - neighbour)
        return centre / self.sample_rate
