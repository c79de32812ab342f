"""Real SIP clients from Debian for the SIP endpoint tests: baresip (a softphone) and SIPp.

``make test`` installs both (``make sip-clients``). baresip plays a WAV as the caller's
voice and records what it hears; SIPp runs the XML scenarios in ``tests/calls/sip/``
(RFC 4733 DTMF from SIPp's own pcaps, REFER, CANCEL, refusals).
"""

from __future__ import annotations

import audioop
import shutil
import subprocess
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipelines.live.sim_transport import read_wav_16k

SCENARIOS = Path(__file__).resolve().parent / "sip"
SIPP_PCAPS = Path("/usr/share/sip-tester")


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def caller_wav(path: Path, parts: list[str | Path | float], *, rate: int = 8000) -> Path:
    """A caller's audio: WAV files and seconds of silence in order, as 16-bit mono at ``rate``."""
    chunks = []
    for part in parts:
        if isinstance(part, (int, float)):
            chunks.append(np.zeros(int(rate * part), dtype=np.int16))
        else:
            samples = read_wav_16k(part)
            chunks.append(samples[::2] if rate == 8000 else samples)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.concatenate(chunks).tobytes())
    return path


def mulaw_wav(path: Path, parts: list[str | Path | float]) -> Path:
    """The same as ``caller_wav`` encoded G.711 mu-law in a WAV (format 7), what SIPp's rtp_stream plays."""
    pcm = caller_wav(path.with_suffix(".pcm.wav"), parts)
    with wave.open(str(pcm), "rb") as w:
        ulaw = audioop.lin2ulaw(w.readframes(w.getnframes()), 2)
    header = bytearray()
    fmt = (7).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little") \
        + (8000).to_bytes(4, "little") + (1).to_bytes(2, "little") + (8).to_bytes(2, "little") + (0).to_bytes(2, "little")
    body = b"WAVE" + b"fmt " + len(fmt).to_bytes(4, "little") + fmt \
        + b"fact" + (4).to_bytes(4, "little") + len(ulaw).to_bytes(4, "little") \
        + b"data" + len(ulaw).to_bytes(4, "little") + ulaw
    header += b"RIFF" + len(body).to_bytes(4, "little") + body
    path.write_bytes(bytes(header))
    return path


@dataclass
class BaresipResult:
    returncode: int
    log: str
    heard: np.ndarray  # what the caller heard, 8 kHz int16
    heard_rate: int


def baresip_call(workdir: Path, uri: str, caller: Path, *, seconds: int, local_port: int,
                 codecs: str = "PCMU") -> BaresipResult:
    """Dial ``uri`` with baresip, speaking ``caller`` (the call ends when the file ends), recording the far end."""
    config_dir = workdir / "baresip"
    snd = workdir / "snd"
    config_dir.mkdir(parents=True, exist_ok=True)
    snd.mkdir(exist_ok=True)
    (config_dir / "config").write_text("\n".join([
        f"sip_listen 127.0.0.1:{local_port}",
        f"audio_source aufile,{caller}",
        "audio_player aufile,/dev/null",
        "module_path /usr/lib/baresip/modules",
        "module g711.so", "module g722.so", "module aufile.so", "module account.so", "module sndfile.so",
        "module menu.so",
        f"snd_path {snd}",
        "sip_trans_def udp",
        "",
    ]))
    # The caller's user names its port: the test finds its call by it.
    (config_dir / "accounts").write_text(f"<sip:caller{local_port}@127.0.0.1:{local_port}>;regint=0;"
                                         f"audio_codecs={codecs}\n")
    proc = subprocess.run(["baresip", "-f", str(config_dir), "-e", f"/dial {uri}", "-t", str(seconds)],
                          capture_output=True, text=True, timeout=seconds + 20, stdin=subprocess.DEVNULL, check=False)
    heard, rate = np.zeros(0, dtype=np.int16), 8000
    decoded = sorted(snd.glob("dump-*-dec.wav"))
    if decoded:
        with wave.open(str(decoded[-1]), "rb") as w:
            rate = w.getframerate()
            heard = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    return BaresipResult(proc.returncode, proc.stdout + proc.stderr, heard, rate)


def speech_spans(samples: np.ndarray, rate: int, *, threshold: int = 800, gap_secs: float = 0.6) -> list[tuple]:
    """(start, end) seconds of the loud stretches of ``samples`` (pauses under ``gap_secs`` joined)."""
    win = rate // 50
    n = len(samples) // win
    if n == 0:
        return []
    peaks = np.abs(samples[: n * win].astype(np.int32)).reshape(n, win).max(axis=1)
    spans, start, last = [], None, None
    for i, loud in enumerate(peaks > threshold):
        t = i * win / rate
        if loud:
            if start is None or (last is not None and t - last > gap_secs):
                if start is not None:
                    spans.append((start, last))
                start = t
            last = t + win / rate
    if start is not None:
        spans.append((start, last))
    return spans


def sipp(scenario: str, target: str, *, workdir: Path, local_port: int, service: str, timeout: int = 60,
         variables: dict | None = None, calls: int = 1, rate: float = 1.0, limit: int | None = None,
         tcp: bool = False) -> subprocess.CompletedProcess:
    """Run SIPp's ``scenario`` (a file in tests/calls/sip/) against ``target`` (host:port) for ``service``
    (over UDP, or TCP with ``tcp``)."""
    cmd = ["sipp", target, "-sf", str(SCENARIOS / scenario), "-s", service, "-i", "127.0.0.1",
           "-p", str(local_port), "-m", str(calls), "-r", str(rate), "-nostdin", "-timeout", f"{timeout}s",
           "-timeout_error", "-trace_err", "-trace_msg", "-message_file", str(workdir / f"{scenario}.msg"),
           "-error_file", str(workdir / f"{scenario}.err"), "-mp", str(local_port + 2)]
    if tcp:
        cmd += ["-t", "t1"]
    if limit is not None:
        cmd += ["-l", str(limit)]
    for name, value in (variables or {}).items():
        cmd += ["-key", name, str(value)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30, cwd=workdir, check=False,
                          stdin=subprocess.DEVNULL)
