"""Per-install secrets for installs that set none (dev, demo, tests): SECRET_KEY, the demo's Twilio token.

The key is generated once and kept in the data folder, so sessions survive a
restart and no secret is ever committed. Production sets SECRET_KEY.
"""

import secrets
from pathlib import Path


def secret_key(data_dir: Path) -> str:
    return secret(data_dir, "secret_key")


def secret(data_dir: Path, name: str) -> str:
    """The install's secret called ``name`` (made once, kept 0600 in the data folder)."""
    path = Path(data_dir) / name
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(key)
    tmp.chmod(0o600)
    tmp.replace(path)
    return key
