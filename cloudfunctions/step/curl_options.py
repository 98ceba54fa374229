"""Read curl's options from a command's words: what it would send, and what was left behind."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from cloudfunctions.step.curl_messages import (
    BEARER_NOT_COPIED,
    COOKIES_NOT_COPIED,
    INSECURE_IGNORED,
    MISSING_VALUE,
    NAME_LIMIT,
    NETRC_NOT_COPIED,
    NOT_CURL,
    OPTION_IGNORED,
    PROXY_IGNORED,
    READS_FILE,
    REDIRECTS_IGNORED,
    REST_IGNORED,
    SIGNING_NOT_COPIED,
    UNSUPPORTED_OPTION,
    USER_NOT_COPIED,
    CurlImportError,
)

__all__ = ["CurlOptions", "curl_options"]

_FLAG_ALIASES = {
    "-s": "--silent",
    "-S": "--show-error",
    "-L": "--location",
    "-k": "--insecure",
    "-v": "--verbose",
    "-i": "--include",
    "-G": "--get",
    "-I": "--head",
    "-f": "--fail",
    "-g": "--globoff",
    "-N": "--no-buffer",
    "-n": "--netrc",
    "-#": "--progress-bar",
    "-0": "--http1.0",
    "-q": "--disable",
}
_VALUE_ALIASES = {
    "-X": "--request",
    "-H": "--header",
    "-d": "--data",
    "-u": "--user",
    "-b": "--cookie",
    "-A": "--user-agent",
    "-e": "--referer",
    "-F": "--form",
    "-T": "--upload-file",
    "-o": "--output",
    "-m": "--max-time",
    "-w": "--write-out",
    "-x": "--proxy",
    "-U": "--proxy-user",
    "-E": "--cert",
    "-c": "--cookie-jar",
    "-D": "--dump-header",
    "-K": "--config",
    "-r": "--range",
    "-y": "--speed-time",
    "-Y": "--speed-limit",
    "-z": "--time-cond",
}
# Output, timing and transport details that do not change what is requested.
_HARMLESS_FLAGS = frozenset(
    {"--silent", "--show-error", "--verbose", "--include", "--fail", "--fail-with-body"}
    | {"--globoff", "--no-buffer", "--progress-bar", "--compressed", "--no-progress-meter"}
    | {"--http1.0", "--http1.1", "--http2", "--http2-prior-knowledge", "--tcp-nodelay"}
    | {"--disable", "--no-keepalive", "--no-sessionid", "--styled-output", "--no-styled-output"}
    | {"--remote-name", "--remote-name-all", "--create-dirs", "--raw", "--tr-encoding"}
    | {"--path-as-is", "--ssl-reqd", "--tlsv1.2", "--tlsv1.3", "--ipv4", "--ipv6"}
)
_HARMLESS_VALUE_OPTIONS = frozenset(
    {"--output", "--max-time", "--connect-timeout", "--retry", "--retry-delay"}
    | {"--retry-max-time", "--write-out", "--cookie-jar", "--dump-header", "--trace"}
    | {"--trace-ascii", "--stderr", "--limit-rate", "--max-redirs", "--speed-time"}
    | {"--speed-limit", "--max-filesize", "--keepalive-time", "--expect100-timeout"}
)
# Options that change the request in ways a step cannot express; ignored with a warning.
_IGNORED_VALUE_OPTIONS = frozenset(
    {"--cacert", "--capath", "--cert", "--cert-type", "--key-type", "--resolve"}
    | {"--connect-to", "--interface", "--range", "--time-cond", "--config", "--variable"}
    | {"--ciphers", "--pinnedpubkey", "--dns-servers", "--local-port", "--unix-socket"}
)
_PROXY_OPTIONS = frozenset({"--proxy", "--preproxy", "--socks5", "--socks5-hostname"})
_DATA_OPTIONS = frozenset(
    {"--data", "--data-ascii", "--data-binary", "--data-raw", "--data-urlencode", "--json"}
)
_VALUE_OPTIONS = (
    frozenset(_VALUE_ALIASES.values())
    | _HARMLESS_VALUE_OPTIONS
    | _IGNORED_VALUE_OPTIONS
    | _PROXY_OPTIONS
    | _DATA_OPTIONS
    | {"--url", "--oauth2-bearer", "--aws-sigv4", "--key", "--pass", "--proxy-user"}
)
_SHELL_SEPARATORS = frozenset(
    {"|", "||", "&&", ";", "&", ">", ">>", "2>", "2>&1"}
)  # "--header" -> "-H/--header", for messages that name an option as designers may know it.
_SHORT_LONG = {long: f"{short}/{long}" for short, long in _FLAG_ALIASES.items()}
_SHORT_LONG |= {long: f"{short}/{long}" for short, long in _VALUE_ALIASES.items()}


@dataclass
class CurlOptions:
    """What a curl command asks for, before it is mapped onto a step's request."""

    urls: list[str] = field(default_factory=list)
    method: str | None = None
    headers: list[str] = field(default_factory=list)
    data: list[tuple[str, str]] = field(default_factory=list)
    get: bool = False
    head: bool = False
    json: bool = False
    unknown: list[str] = field(default_factory=list)
    # Keys are the messages, in the order first met: a repeated -L or unknown option is
    # said once, and checking for a repeat costs no scan of what was said before.
    warnings: dict[str, None] = field(default_factory=dict)
    credentials: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        self.warnings[message] = None

    def joined_data(self) -> str:
        """Return the body as curl sends it: -d parts joined with "&", --json parts as they are."""
        pieces: list[str] = []
        length = 0
        for option, value in self.data:
            if length and option != "--json":
                pieces.append("&")
            pieces.append(value)
            length += len(value)
        return "".join(pieces)


def curl_options(words: list[str]) -> CurlOptions:
    """Read the options of a curl command split into words; raise CurlImportError if refused."""
    if not words or words[0].lower() not in ("curl", "curl.exe"):
        raise CurlImportError(NOT_CURL)
    parsed = CurlOptions()
    index, count = 1, len(words)
    options_done = False
    while index < count:
        token = words[index]
        index += 1
        if token in _SHELL_SEPARATORS:
            parsed.warn(REST_IGNORED.format(token=token))
            break
        if options_done or not token.startswith("-") or token == "-":
            parsed.urls.append(token)
            continue
        if token == "--":
            options_done = True
            continue
        if token.startswith("--"):
            if token in _VALUE_OPTIONS:
                if index >= count:
                    raise CurlImportError(MISSING_VALUE.format(option=token))
                _apply(parsed, token, words[index])
                index += 1
            else:
                _apply(parsed, token, None)
            continue
        # Short options combine ("-sSL") and take a value attached or as the next word.
        for position in range(1, len(token)):
            short = "-" + token[position]
            if short in _VALUE_ALIASES:
                value = token[position + 1 :]
                if not value:
                    if index >= count:
                        raise CurlImportError(MISSING_VALUE.format(option=short))
                    value = words[index]
                    index += 1
                _apply(parsed, _VALUE_ALIASES[short], value)
                break
            _apply(parsed, _FLAG_ALIASES.get(short, short), None)
    return parsed


def _apply(parsed: CurlOptions, option: str, value: str | None) -> None:
    if value is None:
        _apply_flag(parsed, option)
    elif option == "--url":
        parsed.urls.append(value)
    elif option == "--request":
        parsed.method = value
    elif option == "--header":
        if value.startswith("@"):
            raise CurlImportError(READS_FILE.format(option="-H/--header"))
        parsed.headers.append(value)
    elif option == "--user-agent":
        parsed.headers.append(f"User-Agent: {value}")
    elif option == "--referer":
        parsed.headers.append(f"Referer: {value}")
    elif option in _DATA_OPTIONS:
        parsed.data.append((option, _data_value(option, value)))
        parsed.json = parsed.json or option == "--json"
    elif option in ("--user", "--proxy-user"):
        parsed.credentials.append(USER_NOT_COPIED.format(option=_short_long(option)))
    elif option == "--oauth2-bearer":
        parsed.credentials.append(BEARER_NOT_COPIED.format(option=option))
    elif option == "--cookie":
        parsed.credentials.append(COOKIES_NOT_COPIED.format(option="-b/--cookie"))
    elif option == "--aws-sigv4":
        parsed.credentials.append(SIGNING_NOT_COPIED.format(option=option))
    elif option in ("--key", "--pass"):
        parsed.credentials.append(NETRC_NOT_COPIED.format(option=option))
    elif option == "--form":
        raise CurlImportError(
            UNSUPPORTED_OPTION.format(option="-F/--form", reason="a step sends JSON, not multipart")
        )
    elif option == "--upload-file":
        raise CurlImportError(READS_FILE.format(option="-T/--upload-file"))
    elif option in _PROXY_OPTIONS:
        parsed.warn(PROXY_IGNORED.format(option=option))
    elif option in _IGNORED_VALUE_OPTIONS:
        parsed.warn(OPTION_IGNORED.format(option=_short_long(option)))


def _apply_flag(parsed: CurlOptions, option: str) -> None:
    if option == "--get":
        parsed.get = True
    elif option == "--head":
        parsed.head = True
    elif option == "--insecure":
        parsed.warn(INSECURE_IGNORED)
    elif option in ("--location", "--location-trusted"):
        parsed.warn(REDIRECTS_IGNORED)
    elif option in ("--netrc", "--netrc-optional"):
        parsed.credentials.append(NETRC_NOT_COPIED.format(option=_short_long(option)))
    elif option not in _HARMLESS_FLAGS:
        parsed.unknown.append(option[:NAME_LIMIT])
        parsed.warn(OPTION_IGNORED.format(option=option[:NAME_LIMIT]))


def _short_long(option: str) -> str:
    return _SHORT_LONG.get(option, option)


def _data_value(option: str, value: str) -> str:
    if option == "--data-raw":
        return value
    if option == "--data-urlencode":
        # curl's forms: "content", "=content", "name=content", "@file", "name@file".
        equals, at = value.find("="), value.find("@")
        if at != -1 and (equals == -1 or at < equals):
            raise CurlImportError(READS_FILE.format(option=option))
        if equals == -1:
            return quote(value, safe="")
        return value[:equals] + ("=" if equals else "") + quote(value[equals + 1 :], safe="")
    if value.startswith("@"):
        raise CurlImportError(READS_FILE.format(option=_short_long(option)))
    return value
