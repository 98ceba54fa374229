"""What a designer is told when Import cURL refuses a command or leaves part of it behind."""

from __future__ import annotations

# Names are cut in messages so a pasted blob cannot flood the editor.
NAME_LIMIT = 60


class CurlImportError(ValueError):
    """A curl command that cannot be imported; the message is shown to the designer."""


# Errors.
COMMAND_TOO_LONG = (
    "The command is longer than {limit} KB, the most Import cURL reads; "
    "import a shorter one and paste a large body into the Body field."
)
EMPTY_COMMAND = "Paste a curl command."
NOT_CURL = "The command must start with curl."
UNBALANCED_QUOTES = "The command has an unclosed quote or a trailing backslash: {detail}."
NO_URL = "The command has no URL."
SEVERAL_URLS = "The command has more than one URL; import one request at a time."
SEVERAL_URLS_AFTER_UNKNOWN = (
    "The command has more than one URL, perhaps the value of the unsupported option {option}; "
    "remove that option and import again."
)
BAD_URL = "The URL could not be read; use an https:// address."
UNSUPPORTED_SCHEME = "Only http and https URLs can be imported, not {scheme}."
UNSUPPORTED_METHOD = "The method {method} is not supported; use GET, POST, PUT, PATCH or DELETE."
UNSUPPORTED_OPTION = "The option {option} is not supported: {reason}."
MISSING_VALUE = "The option {option} needs a value."
READS_FILE = "The option {option} reads a file, which cannot be imported; paste its content."

# Warnings.
INSECURE_IGNORED = "-k/--insecure was ignored: certificate checks are always on."
REDIRECTS_IGNORED = "-L/--location was ignored: redirects are never followed."
PROXY_IGNORED = "The proxy option {option} was ignored: requests go out directly."
OPTION_IGNORED = "The option {option} is not supported and was ignored."
REST_IGNORED = "Only the curl command was imported; what follows {token} was ignored."
HOST_DIFFERS = (
    "The URL's address ({origin}) differs from the connection's ({base}); "
    "only its path was kept, so check the URI."
)
PATH_OUTSIDE_BASE = (
    "The URL's path is not under the connection's base path ({base_path}); "
    "the whole path was kept, so check the URI."
)
FORM_BODY_AS_JSON = (
    "The form body was turned into a JSON object: this step sends its body as JSON, "
    "so check that the API accepts JSON."
)
BODY_NOT_JSON = "The body is not valid JSON; fix it before saving, as the body is sent as JSON."
HEADER_DROPPED = "The {name} header was not copied: it is set when the request is sent."
HEADER_IGNORED = "A header option without a colon was ignored."
IDEMPOTENCY_KEY_DROPPED = "The Idempotency-Key header was not copied: each run sends its own."

# Credentials: each names what was left out, never its value.
HEADER_NOT_COPIED = "The {name} header was not copied: keep credentials on the connection."
QUERY_NOT_COPIED = (
    'The query parameter "{name}" was not copied: keep credentials on the connection.'
)
FORM_FIELD_NOT_COPIED = (
    'The body field "{name}" was not copied: keep credentials on the connection.'
)
USER_NOT_COPIED = (
    "The user name and password ({option}) were not copied: keep credentials on the connection."
)
URL_USER_NOT_COPIED = (
    "The user name and password in the URL were not copied: keep credentials on the connection."
)
BEARER_NOT_COPIED = (
    "The bearer token ({option}) was not copied: keep credentials on the connection."
)
COOKIES_NOT_COPIED = "The cookies ({option}) were not copied: keep credentials on the connection."
SIGNING_NOT_COPIED = "The signing option {option} was not copied: the connection signs requests."
SIGNING_HEADER_NOT_COPIED = "The {name} header was not copied: the connection signs requests."
NETRC_NOT_COPIED = "The option {option} was ignored: keep credentials on the connection."
