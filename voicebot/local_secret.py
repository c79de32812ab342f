"""A per-install SECRET_KEY for installs that set none (dev, demo, tests).

The key is generated once and kept in the data folder, so sessions survive a
restart and no secret is ever committed. Production sets SECRET_KEY.
"""

import secrets
from pathlib import Path


def secret_key(data_dir: Path) -> str:
    path = Path(data_dir) / "secret_key"
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
