"""What designers are told when a CEL expression is refused; tests import these."""

from __future__ import annotations

# Messages are sentence fragments: callers prefix the field label ("URI: ...") and the
# checker adds the line and column, so none of them ends with a full stop.

TOO_LONG = "the expression is too long ({length} characters; the limit is {limit})"
TOO_DEEP = "brackets are nested too deeply here (the limit is {limit} levels)"
TOO_COMPLEX = "the expression is nested too deeply to be evaluated safely"
TIMEOUT = "the expression took longer than {seconds:g} s to evaluate and was stopped"

UNTERMINATED_STRING = "this string is not closed; add the missing {quote}"
UNEXPECTED_CHARACTER = "unexpected character {char}"
NOT_PARSABLE = "the expression could not be parsed"
UNEXPECTED_END = "the expression ends too early; something is missing here"
UNEXPECTED_TOKEN = "unexpected {token} here"
BAD_ESCAPE = "this string has an escape that is not a character (beyond \\U0010FFFF)"
SURROGATE_ESCAPE = (
    "this string has a lone surrogate escape (\\uD800–\\uDFFF), which no request can carry"
)
MACRO_VARIABLE = "the first argument of {name}() must be a variable name, e.g. items.{name}(x, …)"
MACRO_ARITY = "{name}() takes a variable name and an expression, e.g. items.{name}(x, …)"
CONTEXT_PATH_ARGUMENTS = 'contextEventPath() takes one string, e.g. "charge.created:body.id"'
CONTEXT_PATH_FORMAT = 'contextEventPath() expects "event:path", e.g. "charge.created:body.id"'

UNKNOWN_NAME = 'unknown name "{name}"; use trigger, events or contextEventPath(…)'
RESPONSE_ONLY_IN_RESULT = "response is known in Result only, after the answer came"
UNKNOWN_FUNCTION = 'unknown function "{name}"'
UNKNOWN_EVENT = 'unknown event "{name}"'
UNKNOWN_EVENT_DYNAMIC = "unknown event {key}"

NO_KEY = "no key {key} in {container}"
NO_FIELDS = "cannot read {key} from {container}: it is not a map"
INDEX_OUT_OF_RANGE = "index {key} is out of range for {container}"
BAD_INDEX = "{container} cannot be indexed with {key}"
BAD_OPERANDS = 'operator "{operator}" cannot be applied to these operand types'
DIVISION_BY_ZERO = "division by zero"
OVERFLOW = "a number is out of range"
BAD_ARGUMENTS = "{name}() cannot be applied to these argument types"
BAD_CONVERSION = "{name}() could not convert its argument"
BAD_REGEX = "matches() was given an invalid regular expression"
CONTEXT_PATH_NOT_STRING = "contextEventPath() needs a string argument"
CONTEXT_PATH_NOT_FOUND = 'contextEventPath(): nothing at "{path}" in event "{event}"'
CONTEXT_PATH_NOT_FOUND_DYNAMIC = "contextEventPath(): the path does not exist in that event"
CONTEXT_PATH_UNKNOWN_EVENT_DYNAMIC = "contextEventPath(): unknown event"
NOT_EVALUABLE = "the expression could not be evaluated"

MUST_BE_STRING = "{field} must evaluate to a string, got {type}"
NO_LINE_BREAKS = "{field} must not contain line breaks (CR or LF)"
UNSUPPORTED_RESULT = "the expression produced a {type}, which cannot be used here"
BYTES_NOT_UTF8 = "the expression produced bytes that are not valid UTF-8"
UNSUPPORTED_INPUT = "{where} contains a value of unsupported type {type}"
INPUT_OUT_OF_RANGE = "{where} contains an integer out of the 64-bit range"
TOO_LARGE = (
    "the expression builds a value larger than {items:,} items or {characters:,} characters"
    " and was stopped"
)
TOO_MUCH_WORK = (
    "the expression repeats its map(), filter(), all() or exists() bodies more than {limit:,}"
    " times and was stopped"
)
