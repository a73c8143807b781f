"""Which fields hold secrets, and how they are shown: never in clear, only a masked hint."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from proxyllm.core.deployment import mask_secret
from proxyllm.core.jsontypes import JSONObject, JSONValue

MASK = "****"
_SECRET_PARTS = ("secret", "password", "passwd", "credential", "api_key", "access_key", "private_key", "authorization")
_SECRET_NAMES = frozenset({"key", "token", "api_key", "master_key", "salt_key", "extra_headers", "headers"})


_SECRET_QUERY = frozenset({"key", "apikey", "api_key", "sig", "signature", "code", "token", "access_token", "auth"})


def is_secret_name(name: str) -> bool:
    """``api_key``, ``aws_secret_access_key``, ``azure_ad_token``, ``vertex_credentials``, ``extra_headers``...

    ``max_tokens`` and ``input_cost_per_token`` are not secrets. A dotted name (``litellm_params.api_key``,
    as audit rows flatten them) is judged by its last part.
    """
    n = name.lower().replace("-", "_").rpartition(".")[2]
    if n in _SECRET_NAMES or any(part in n for part in _SECRET_PARTS):
        return True
    return n.endswith("_token") and "per_token" not in n


def url_has_credentials(url: str) -> bool:
    """``http://user:password@host``, or a secret in the query (``?key=...``, ``?sig=...``)."""
    if "://" not in url:
        return False
    try:
        parts = urlsplit(url)
    except ValueError:
        return True  # cannot tell: treat as secret
    if parts.username or parts.password or "@" in parts.netloc:
        return True
    return any(_secret_query(name) for name, _ in parse_qsl(parts.query, keep_blank_values=True))


def _secret_query(name: str) -> bool:
    return name.lower().replace("-", "_") in _SECRET_QUERY or is_secret_name(name)


def mask_url(url: str) -> str:
    """The URL with its user information and secret query values replaced by ``****``."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"{MASK}@{host}" if "@" in parts.netloc else parts.netloc
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(_secret_query(k) for k, _ in pairs):
                query = urlencode([(k, MASK if _secret_query(k) else v) for k, v in pairs], safe="*")
        return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
    except ValueError:
        return MASK


def mask_text(text: str) -> str:
    """Free text (an error message, a log line) with the credentials of any URL in it masked."""
    if "://" not in text:
        return text
    return " ".join(mask_url(word) if "://" in word else word for word in text.split(" "))


def split_secrets(params: Mapping[str, JSONValue]) -> tuple[JSONObject, JSONObject]:
    """(clear, secret) parts of litellm_params; a URL that carries credentials is a secret too."""
    clear: JSONObject = {}
    secret: JSONObject = {}
    for name, value in params.items():
        hidden = is_secret_name(name) or (isinstance(value, str) and url_has_credentials(value))
        (secret if hidden else clear)[name] = value
    return clear, secret


def mask_value(value: JSONValue) -> JSONValue:
    if value is None:
        return None
    if isinstance(value, str):
        if value.startswith("os.environ/"):
            return value  # names where the secret lives, not the secret
        return mask_secret(value)
    if isinstance(value, Mapping):
        return {k: MASK for k in value}
    return MASK


def masked(data: JSONValue, *, keep: frozenset[str] = frozenset()) -> JSONValue:
    """A copy of ``data`` with every secret-named field masked, at any depth.

    ``keep`` names top-level fields shown as they are (a key view's ``token`` is its SHA-256, not a secret).
    """
    if isinstance(data, Mapping):
        return {k: mask_value(v) if is_secret_name(str(k)) and k not in keep else masked(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [masked(v) for v in data]
    if isinstance(data, str) and "://" in data:
        return mask_url(data)
    return data


class MaskingFilter(logging.Filter):
    """A handler filter: URL credentials in any log line (whoever logged it) are masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler
            return True
        if "://" in message:
            masked_message = mask_text(message)
            if masked_message != message:
                record.msg, record.args = masked_message, None
        return True


MASKING_FILTER = MaskingFilter()
