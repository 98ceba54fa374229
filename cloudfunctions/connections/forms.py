"""The connection form. Which fields are required is a server rule, not the page's."""

from __future__ import annotations

from django import forms

from cloudfunctions import amazon_connect
from cloudfunctions.connections import messages
from cloudfunctions.http.headers import HEADER_NAME, HEADERS_SET_WHEN_SENT
from cloudfunctions.http.redaction import MIN_SECRET_LENGTH
from cloudfunctions.models import Connection, shown_host

Provider = Connection.Provider
AuthType = Connection.AuthType

# A shorter secret could not be masked where an API echoes it without corrupting the
# capture (every "a" of it masked), and is guessed in no time anyway.
SECRET_TOO_SHORT = "{label}: use at least {min} characters; a shorter secret cannot be kept safe."

# Which plain and secret fields each configuration needs.
REQUIRED_FIELDS = {
    Provider.AMAZON_CONNECT: ["region", "access_key_id"],
    AuthType.API_KEY: ["base_url", "auth_type", "api_key_location", "api_key_name"],
    AuthType.OAUTH2: ["base_url", "auth_type", "client_id", "token_url"],
}
REQUIRED_SECRETS = {
    Provider.AMAZON_CONNECT: ["secret_access_key"],
    AuthType.API_KEY: ["api_key_value"],
    AuthType.OAUTH2: ["client_secret"],
}


def _regions() -> list[tuple[str, str]]:
    return [("", "Choose a region")] + [(r, r) for r in amazon_connect.regions()]


def active_configuration(provider: str, auth_type: str) -> str:
    """Return the key of REQUIRED_FIELDS that applies: the provider, or the custom auth type."""
    if provider == Provider.AMAZON_CONNECT:
        return Provider.AMAZON_CONNECT
    return auth_type or AuthType.API_KEY


class SecretInput(forms.PasswordInput):
    """A password box that never renders a value (not even a placeholder of one)."""

    def __init__(self, attrs=None):
        # hx-preserve keeps a typed secret when htmx swaps the field groups around it.
        attrs = {"autocomplete": "new-password", "hx-preserve": "true", **(attrs or {})}
        super().__init__(attrs=attrs, render_value=False)


class ConnectionForm(forms.ModelForm):
    """Create or edit a connection; secrets are write-only (blank keeps the stored value)."""

    secret_access_key = forms.CharField(
        label="Secret access key", required=False, widget=SecretInput
    )
    api_key_value = forms.CharField(label="Value", required=False, widget=SecretInput)
    client_secret = forms.CharField(label="Client secret", required=False, widget=SecretInput)
    clear_secrets = forms.MultipleChoiceField(
        label="Clear stored secrets",
        required=False,
        choices=list(Connection.SECRET_FIELDS.items()),
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Connection
        fields = [
            "name",
            "provider",
            "region",
            "access_key_id",
            "base_url",
            "auth_type",
            "api_key_location",
            "api_key_name",
            "client_id",
            "scopes",
            "token_url",
            "refresh_url",
        ]
        widgets = {"region": forms.Select}
        help_texts = {
            "base_url": "Required format: https://<your-domain>, e.g. https://api.example.com",
            "scopes": "Separated by spaces, e.g. intelligence.conversations:write",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["region"].widget.choices = _regions()
        self.fields["provider"].choices = [("", "Choose a cloud provider"), *Provider.choices]
        self.fields["auth_type"].choices = AuthType.choices
        self.fields["api_key_location"].choices = Connection.ApiKeyLocation.choices
        for name in Connection.SECRET_FIELDS:
            self.fields[name].help_text = self._secret_status(name)

    def _secret_status(self, field: str) -> str:
        if not self.instance.pk or not self.instance.secret_is_set(field):
            return "Not set."
        changed = self.instance.secrets_changed_at.get(field)
        when = f" (last changed {changed[:16].replace('T', ' ')} UTC)" if changed else ""
        return f"A value is set{when}. Leave blank to keep it."

    @property
    def configuration(self) -> str:
        data = self.data if self.is_bound else {}
        provider = data.get("provider") or self.instance.provider or ""
        auth_type = data.get("auth_type") or self.instance.auth_type or ""
        return active_configuration(provider, auth_type)

    def clean_region(self):
        region = self.cleaned_data.get("region", "")
        if region and region not in dict(_regions()):
            raise forms.ValidationError(messages.REGION_UNKNOWN)
        return region

    def clean(self):
        cleaned = super().clean()
        provider = cleaned.get("provider")
        if not provider:
            return cleaned
        config = active_configuration(provider, cleaned.get("auth_type") or "")
        what = {**dict(Provider.choices), **dict(AuthType.choices)}.get(config, config)
        if provider == Provider.CUSTOM and not cleaned.get("auth_type"):
            cleaned["auth_type"] = AuthType.API_KEY
        for name in REQUIRED_FIELDS[config]:
            if not cleaned.get(name) and name not in self.errors:
                self.add_error(name, messages.FIELD_REQUIRED_FOR.format(what=what))
        value = cleaned.get("api_key_value") or ""
        in_header = cleaned.get("api_key_location") == Connection.ApiKeyLocation.HEADER
        if in_header and not (value.isprintable() and value.isascii()):
            self.add_error("api_key_value", messages.HEADER_VALUE_UNSENDABLE)
        header = cleaned.get("api_key_name") or ""
        if in_header and header and config == AuthType.API_KEY:
            if not HEADER_NAME.match(header):
                self.add_error("api_key_name", messages.API_KEY_HEADER_NAME_INVALID)
            elif header.lower() in HEADERS_SET_WHEN_SENT:
                self.add_error(
                    "api_key_name", messages.API_KEY_HEADER_NAME_RESERVED.format(name=header)
                )
        for name, label in Connection.SECRET_FIELDS.items():
            typed = cleaned.get(name) or ""
            if typed and len(typed) < MIN_SECRET_LENGTH and name not in self.errors:
                self.add_error(name, SECRET_TOO_SHORT.format(label=label, min=MIN_SECRET_LENGTH))
        cleared = set(cleaned.get("clear_secrets") or ())
        moved_to = self._new_host(cleaned)
        for name in REQUIRED_SECRETS[config]:
            typed = cleaned.get(name)
            stored = self.instance.pk and self.instance.secret_is_set(name) and name not in cleared
            if typed or name in self.errors:
                continue
            label = Connection.SECRET_FIELDS[name]
            if not stored:
                self.add_error(name, messages.SECRET_REQUIRED.format(label=label))
            elif moved_to:
                # Else whoever may edit a connection could send its stored secret (or the
                # tokens it earns) to a host of their own, without ever knowing it.
                self.add_error(
                    name, messages.SECRET_AGAIN_FOR_NEW_HOST.format(label=label, host=moved_to)
                )
        return cleaned

    def _new_host(self, cleaned) -> str:
        """A host the edited addresses name that the stored ones did not, or ""."""
        if not self.instance.pk:
            return ""
        urls = ("base_url", "token_url", "refresh_url")
        known = {shown_host(getattr(self.instance, name)) for name in urls}
        for name in urls:
            host = shown_host(cleaned.get(name))
            if host and host not in known:
                return host
        return ""

    def _post_clean(self):
        super()._post_clean()
        if self.errors:
            # Secrets are never drawn back into the page: say that a typed one was not kept.
            for name in Connection.SECRET_FIELDS:
                if self.data.get(self.add_prefix(name)):
                    # The bound field copied the help text when cleaning began.
                    self[name].help_text = messages.SECRET_NOT_KEPT

    def secret_changes(self) -> dict[str, str | None]:
        """Return the secrets to write: a new value, or None to clear; untouched ones are absent."""
        config = self.configuration
        needed = set(REQUIRED_SECRETS[config])
        changes: dict[str, str | None] = {}
        for name in Connection.SECRET_FIELDS:
            typed = self.cleaned_data.get(name)
            if name not in needed:
                # Secrets of another provider or auth type are not kept around.
                if self.instance.pk and self.instance.secret_is_set(name):
                    changes[name] = None
            elif typed:
                changes[name] = typed
            elif name in (self.cleaned_data.get("clear_secrets") or ()):
                changes[name] = None
        return changes
