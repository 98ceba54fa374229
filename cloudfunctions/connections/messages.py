"""What users are told when their input is refused; tests import these."""

from __future__ import annotations

REGION_UNKNOWN = "Choose one of the regions where Amazon Connect is available."
FIELD_REQUIRED_FOR = "This field is required for {what}."
SECRET_REQUIRED = "Enter the {label}; it has not been set yet."
SECRET_AGAIN_FOR_NEW_HOST = (
    "Enter the {label} again: a stored secret is only sent to the hosts it was entered for, "
    "and {host} is new."
)
CONNECTION_IN_USE = "This connection is used by {count} step(s): {steps}. Change those steps first."
CONNECTION_IN_DEPLOYED_VERSIONS = (
    "Deployed versions keep the connection they were deployed with, so it stays in use while "
    "{versions} exist."
)
SECRET_NOT_KEPT = (
    "Not kept after the error: enter it again (a secret is never sent back to the page)."
)
API_KEY_HEADER_NAME_INVALID = (
    "Enter a header name like x-api-key: no spaces, colons, brackets or line breaks."
)
API_KEY_HEADER_NAME_RESERVED = "{name} is set when a request is sent; choose another header."
HEADER_VALUE_UNSENDABLE = (
    "A header can only carry printable ASCII: no line breaks or accented letters."
)
