"""Development-only keys, generated once into a git-ignored file."""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.fernet import Fernet


def ensure_local_secrets(path: Path) -> dict[str, str]:
    """Return development SECRET_KEY and FIELD_ENCRYPTION_KEY, creating them on first use."""
    if not path.exists():
        path.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"FIELD_ENCRYPTION_KEY={Fernet.generate_key().decode()}\n"
        )
        path.chmod(0o600)
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        values[name.strip()] = value.strip()
    return values
