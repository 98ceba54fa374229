"""Split a pasted shell command into words, as a POSIX shell would, in time linear in its length.

shlex does the same job but grows each word one character at a time (`token + char`),
which copies the word again for every character: a 2 MB command took 50 s (issue 13, D7).
Here every run of ordinary characters is one slice, and a word is joined once at its end.

Read as shlex.split reads (no comments, no expansion), plus what browsers' "Copy as
cURL" writes: `$'...'` (ANSI-C quoting), backslash-newline continuations and a leading
`$ ` prompt.
"""

from __future__ import annotations

import re

from cloudfunctions.step.curl_messages import EMPTY_COMMAND, UNBALANCED_QUOTES, CurlImportError

__all__ = ["NO_CLOSING_QUOTE", "NO_ESCAPED_CHARACTER", "shell_words"]

# The details shlex gave, kept so the message reads as it did.
NO_CLOSING_QUOTE = "no closing quotation"
NO_ESCAPED_CHARACTER = "no escaped character"

_CONTINUATION = re.compile(r"\\\r?\n")
_PROMPT = re.compile(r"\A\s*\$\s+")
# Outside quotes: a run of ordinary characters, a run of blanks, or one special character.
_UNQUOTED = re.compile(r"""[^ \t\r\n'"\\$]+|[ \t\r\n]+|\$'|.""", re.S)
_DOUBLE_QUOTED_RUN = re.compile(r'[^"\\]+')
_ANSI_C_STOP = re.compile(r"\\.|'", re.S)
_ANSI_C_ESCAPE = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|.)", re.S
)
_ANSI_C_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ANSI_C_SIMPLE |= {"e": "\x1b", "E": "\x1b", "\\": "\\", "'": "'", '"': '"', "?": "?"}
_BLANKS = frozenset(" \t\r\n")


def shell_words(command: str) -> list[str]:
    """Return the words of `command`; raise CurlImportError for an unclosed quote."""
    text = _PROMPT.sub("", _CONTINUATION.sub(" ", command or ""), count=1)
    if not text.strip():
        raise CurlImportError(EMPTY_COMMAND)
    words: list[str] = []
    parts: list[str] = []  # the pieces of the word being read
    in_word = False  # a word has started, though it may still be empty ('')
    position, end = 0, len(text)
    while position < end:
        piece = _UNQUOTED.match(text, position).group()
        position += len(piece)
        if piece[0] in _BLANKS:
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            continue
        in_word = True
        if piece == "'":
            close = text.find("'", position)
            if close == -1:
                raise _unbalanced(NO_CLOSING_QUOTE)
            parts.append(text[position:close])
            position = close + 1
        elif piece == '"':
            position = _double_quoted(text, position, parts)
        elif piece == "$'":
            position = _ansi_c_quoted(text, position, parts)
        elif piece == "\\":
            if position == end:
                raise _unbalanced(NO_ESCAPED_CHARACTER)
            parts.append(text[position])
            position += 1
        else:
            parts.append(piece)  # ordinary characters, or a "$" that quotes nothing
    if in_word:
        words.append("".join(parts))
    return words


def _double_quoted(text: str, position: int, parts: list[str]) -> int:
    """Read up to the closing quote; return the position after it."""
    end = len(text)
    while position < end:
        run = _DOUBLE_QUOTED_RUN.match(text, position)
        if run:
            parts.append(run.group())
            position = run.end()
            continue
        char = text[position]
        if char == '"':
            return position + 1
        # A backslash escapes only a quote or a backslash; before anything else it stays.
        if position + 1 == end:
            raise _unbalanced(NO_ESCAPED_CHARACTER)
        following = text[position + 1]
        parts.append(following if following in '"\\' else char + following)
        position += 2
    raise _unbalanced(NO_CLOSING_QUOTE)


def _ansi_c_quoted(text: str, position: int, parts: list[str]) -> int:
    """Read a $'...' body up to its closing quote, decoding its escapes."""
    start = position
    while stop := _ANSI_C_STOP.search(text, position):
        position = stop.end()
        if stop.group() == "'":
            parts.append(_ANSI_C_ESCAPE.sub(_ansi_c_char, text[start : position - 1]))
            return position
    raise _unbalanced(NO_CLOSING_QUOTE)


def _ansi_c_char(match: re.Match) -> str:
    code = match.group(1)
    if code[0] in "xuU" and len(code) > 1:
        point = min(int(code[1:], 16), 0x10FFFF)
        # A lone surrogate can be neither encoded nor sent: U+FFFD, as a decoder would.
        return "\ufffd" if 0xD800 <= point <= 0xDFFF else chr(point)
    if code[0] in "01234567":
        return chr(int(code, 8) & 0xFF)
    return _ANSI_C_SIMPLE.get(code, "\\" + code)


def _unbalanced(detail: str) -> CurlImportError:
    return CurlImportError(UNBALANCED_QUOTES.format(detail=detail))
