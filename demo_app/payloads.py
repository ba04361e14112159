"""The JSON bodies of ``POST /emails`` and ``POST /emails/bulk``, checked.

Both apps hand the raw body here, so they accept and refuse exactly the same requests.
Addresses are checked with email-validator, as pydantic's ``EmailStr`` does (syntax only,
no DNS), and normalized.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email

MAX_SUBJECT = 200
MAX_BODY = 20_000
MAX_BULK = 1000
MAX_DELAY = 300
"""The longest ``"delay"`` of ``POST /emails``, in seconds: a reminder within five minutes."""

MAX_REQUEST_BYTES = 64 * 1024
"""The largest request body either app reads; beyond it, the answer is 413 at once.

An email of `MAX_BODY` characters fits as UTF-8 JSON unless thousands of them take
four bytes (emoji) or are escaped as ``\\uXXXX``.
"""


class InvalidPayload(ValueError):
    """A request body that cannot be accepted.

    Attributes:
        field: The field at fault, or None when the body as a whole is.
        status: The HTTP status to answer: 400 for a body that is not a JSON object,
            422 for a missing or wrong field.
    """

    def __init__(self, field: str | None, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.field = field
        self.status = status

    def to_json(self) -> dict[str, object]:
        """The error as a JSON object: ``{"error": message, "field": field}``."""
        return {"error": str(self), "field": self.field}


@dataclass(frozen=True)
class EmailRequest:
    """``{"to", "subject", "body"}``, and optionally ``"delay"``: one email, sent at once or
    `delay` seconds (0 to `MAX_DELAY`) later."""

    to: str
    subject: str
    body: str
    delay: float = 0.0


@dataclass(frozen=True)
class BulkRequest:
    """``{"to", "count"}``: `count` emails (1 to `MAX_BULK`) to one address."""

    to: str
    count: int


def parse_email_request(raw: bytes) -> EmailRequest:
    """Check the body of ``POST /emails``. Raises `InvalidPayload`."""
    data = _json_object(raw, ("to", "subject", "body"))
    subject = _text(data, "subject", MAX_SUBJECT)
    if "\n" in subject or "\r" in subject:
        raise InvalidPayload("subject", "subject must be one line")
    return EmailRequest(
        to=_address(data, "to"),
        subject=subject,
        body=_text(data, "body", MAX_BODY),
        delay=_delay(data),
    )


def parse_bulk_request(raw: bytes) -> BulkRequest:
    """Check the body of ``POST /emails/bulk``. Raises `InvalidPayload`."""
    data = _json_object(raw, ("to", "count"))
    count = data.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_BULK:
        raise InvalidPayload("count", f"count must be a whole number from 1 to {MAX_BULK}")
    return BulkRequest(to=_address(data, "to"), count=count)


def _delay(data: dict[str, object]) -> float:
    delay = data.get("delay", 0)
    # NaN and infinity (json.loads reads both) fail the range check too.
    if (
        isinstance(delay, bool)
        or not isinstance(delay, (int, float))
        or not 0 <= delay <= MAX_DELAY
    ):
        raise InvalidPayload("delay", f"delay must be a number of seconds from 0 to {MAX_DELAY}")
    return float(delay)


def _json_object(raw: bytes, fields: tuple[str, ...]) -> dict[str, object]:
    expected = ", ".join(f'"{name}"' for name in fields)
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InvalidPayload(None, f"the body must be a JSON object with {expected}", 400)
    for name in fields:
        if name not in data:
            raise InvalidPayload(name, f"{name} is required")
    return data


def _text(data: dict[str, object], name: str, limit: int) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise InvalidPayload(name, f"{name} must be a string")
    if len(value) > limit:
        raise InvalidPayload(name, f"{name} must be at most {limit} characters")
    return value


def _address(data: dict[str, object], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise InvalidPayload(name, f"{name} must be an email address, as a string")
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidPayload(name, f"{name} is not a valid email address: {error}") from None
    return checked.normalized
