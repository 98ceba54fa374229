"""Encrypted, write-only secret storage on top of django-encrypted-model-fields.

The library has two traps this module closes: with a wrong key it silently
returns the ciphertext as if it were the secret, and its fields render their
plaintext in a default ModelForm.
"""

from __future__ import annotations

import cryptography.fernet
from encrypted_model_fields import fields as encrypted_fields

SECRET_UNDECRYPTABLE = (
    "A stored secret cannot be decrypted with the configured FIELD_ENCRYPTION_KEY. "
    "Restore the key it was written with (keep old keys after new ones while rotating), "
    "or enter the secret again."
)


class SecretDecryptionError(Exception):
    """A secret was written with a key that is no longer configured."""

    def __init__(self):
        super().__init__(SECRET_UNDECRYPTABLE)


class UndecryptableSecret:
    """Stands in for a secret whose ciphertext no configured key opens.

    It keeps the ciphertext so that saving the row again does not destroy it,
    and it is not a string, so it can never be sent as a credential.
    """

    __slots__ = ("ciphertext",)

    def __init__(self, ciphertext: str):
        self.ciphertext = ciphertext

    def __repr__(self) -> str:
        return "<UndecryptableSecret>"

    __str__ = __repr__


def _crypter():
    # Looked up on each use so a re-read key list (rotation, tests) takes effect.
    return encrypted_fields.CRYPTER


def encrypt(value: str) -> str:
    return _crypter().encrypt(value.encode()).decode()


def decrypt(ciphertext: str) -> str | UndecryptableSecret:
    try:
        return _crypter().decrypt(ciphertext.encode()).decode()
    except cryptography.fernet.InvalidToken:
        return UndecryptableSecret(ciphertext)


def reload_keys() -> None:
    """Re-read FIELD_ENCRYPTION_KEY (the library reads it once, at import)."""
    encrypted_fields.CRYPTER = encrypted_fields.get_crypter()


class SecretField(encrypted_fields.EncryptedTextField):
    """A Fernet-encrypted text column that never falls back to the ciphertext."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs.setdefault("editable", False)  # never in a ModelForm or the admin
        # Never in dumpdata: its serializer would write the decrypted value. Back up the
        # database itself, which holds only ciphertext.
        kwargs.setdefault("serialize", False)
        super().__init__(*args, **kwargs)

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return None
        return decrypt(value)

    def to_python(self, value):
        return value

    def get_db_prep_save(self, value, connection):
        if value is None or value == "":
            return None
        if isinstance(value, UndecryptableSecret):
            return value.ciphertext
        return encrypt(str(value))


def reveal(value: str | UndecryptableSecret | None) -> str:
    """Return a secret's plaintext for use in a request, or raise if it cannot be read."""
    if isinstance(value, UndecryptableSecret):
        raise SecretDecryptionError()
    return value or ""
