"""A small client for the Confluent Schema Registry REST API.

Only what the Avro serdes need, over the standard library's HTTP client:

=====================================================  ===========================================
``GET  /schemas/ids/{id}``                              the schema text of a schema id (cached)
``POST /subjects/{subject}/versions``                   register a schema; returns its id (cached)
``POST /subjects/{subject}``                            the id of an already registered schema
``GET  /subjects/{subject}/versions/latest``            the subject's latest version
``POST /compatibility/subjects/{subject}/versions/v``   would this schema be accepted?
``PUT  /config[/{subject}]``                            set the compatibility level
``GET  /subjects``                                      registered subjects
=====================================================  ===========================================

Any registry that speaks this API works: Confluent Schema Registry at its root URL,
Apicurio Registry at ``<root>/apis/ccompat/v7``, Karapace, Redpanda.

Every failure is a :class:`SchemaRegistryError` (a :class:`~streamer.errors.SerializationError`)
whose message names the registry URL, the request and the registry's own message. Requests
that fail on the connection or with a 5xx status are retried ``retries`` times with a short
backoff; 4xx answers are not. Schemas by id never change, so they are cached for the life of
the client; so are the ids of registered schemas.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from streamer.errors import SerializationError

_T = TypeVar("_T")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
COMPATIBILITY_LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)

# Confluent error codes the client reacts to.
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403


class SchemaRegistryError(SerializationError):
    """A schema registry request failed.

    ``status`` is the HTTP status (``None`` when the registry could not be reached) and
    ``error_code`` the registry's error code (40403: schema not found, 409: incompatible).
    """

    def __init__(
        self, message: str, *, status: int | None = None, error_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


@dataclass(frozen=True, slots=True)
class RegisteredSchema:
    """A schema as registered under a subject."""

    subject: str
    version: int
    schema_id: int
    schema: str


@dataclass(frozen=True, slots=True)
class Compatibility:
    """The registry's verdict on a candidate schema; ``messages`` say what is incompatible."""

    compatible: bool
    messages: tuple[str, ...] = ()


class SchemaRegistryClient:
    """Talks to one schema registry. Thread-safe; share one client between serdes.

    ``url`` is the API root, e.g. ``http://127.0.0.1:8081`` (Confluent) or
    ``http://127.0.0.1:8080/apis/ccompat/v7`` (Apicurio). ``headers`` are sent with every
    request (authentication, for example).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.2,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            msg = f"schema registry URL {url!r} must be http(s)://host[:port][/path]"
            raise SerializationError(msg)
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.headers = dict(headers or {})
        self._lock = threading.Lock()
        self._by_id: dict[int, str] = {}
        self._ids: dict[tuple[str, str], int] = {}

    def __repr__(self) -> str:
        return f"SchemaRegistryClient({self.url!r})"

    # --- schemas ---------------------------------------------------------------------------

    def schema_by_id(self, schema_id: int) -> str:
        """The schema text registered with ``schema_id``; raises when there is none."""
        cached = self._by_id.get(schema_id)
        if cached is not None:
            return cached
        try:
            body = self._request("GET", f"/schemas/ids/{schema_id}")
        except SchemaRegistryError as exc:
            if exc.status == 404:
                msg = f"schema id {schema_id} is not known to the schema registry at {self.url}"
                raise SchemaRegistryError(msg, status=404, error_code=exc.error_code) from exc
            raise
        schema = _field(body, "schema", str, self.url)
        schema_type = body.get("schemaType", "AVRO") if isinstance(body, dict) else "AVRO"
        if schema_type != "AVRO":
            msg = f"schema id {schema_id} at {self.url} is a {schema_type} schema, not Avro"
            raise SchemaRegistryError(msg)
        with self._lock:
            self._by_id[schema_id] = schema
        return schema

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` (a no-op if it already is); its id."""
        key = (subject, schema)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        body = self._request("POST", f"/subjects/{_quote(subject)}/versions", {"schema": schema})
        schema_id = _field(body, "id", int, self.url)
        with self._lock:
            self._ids[key] = schema_id
            self._by_id.setdefault(schema_id, schema)
        return schema_id

    def lookup(self, subject: str, schema: str) -> int | None:
        """The id of ``schema`` if it is registered under ``subject``, else ``None``."""
        key = (subject, schema)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        try:
            body = self._request("POST", f"/subjects/{_quote(subject)}", {"schema": schema})
        except SchemaRegistryError as exc:
            if exc.status == 404:
                return None
            raise
        schema_id = _field(body, "id", int, self.url)
        with self._lock:
            self._ids[key] = schema_id
            self._by_id.setdefault(schema_id, schema)
        return schema_id

    def latest(self, subject: str) -> RegisteredSchema:
        """The latest version registered under ``subject``."""
        body = self._request("GET", f"/subjects/{_quote(subject)}/versions/latest")
        return RegisteredSchema(
            subject=subject,
            version=_field(body, "version", int, self.url),
            schema_id=_field(body, "id", int, self.url),
            schema=_field(body, "schema", str, self.url),
        )

    def subjects(self) -> list[str]:
        body = self._request("GET", "/subjects")
        if not isinstance(body, list) or not all(isinstance(s, str) for s in body):
            msg = f"schema registry at {self.url}: GET /subjects returned {body!r}"
            raise SchemaRegistryError(msg)
        return list(body)

    # --- compatibility ---------------------------------------------------------------------

    def check_compatibility(
        self, subject: str, schema: str, *, version: str | int = "latest"
    ) -> Compatibility:
        """Whether the registry would accept ``schema`` as the next version of ``subject``
        under its compatibility level. A subject with no versions accepts anything."""
        path = f"/compatibility/subjects/{_quote(subject)}/versions/{version}?verbose=true"
        try:
            body = self._request("POST", path, {"schema": schema})
        except SchemaRegistryError as exc:
            if exc.error_code in (SUBJECT_NOT_FOUND, VERSION_NOT_FOUND):
                return Compatibility(True)
            raise
        compatible = _field(body, "is_compatible", bool, self.url)
        messages: list[str] = []
        for key in ("messages", "reason"):
            value = body.get(key) if isinstance(body, dict) else None
            if isinstance(value, str) and value:
                messages.append(value)
            elif isinstance(value, list):
                messages.extend(str(m) for m in value)
        return Compatibility(compatible, tuple(messages))

    def set_compatibility(self, level: str, subject: str | None = None) -> None:
        """Set the compatibility level of ``subject``, or the registry-wide default."""
        level = level.upper()
        if level not in COMPATIBILITY_LEVELS:
            msg = f"unknown compatibility level {level!r}; one of {sorted(COMPATIBILITY_LEVELS)}"
            raise SerializationError(msg)
        path = "/config" if subject is None else f"/config/{_quote(subject)}"
        self._request("PUT", path, {"compatibility": level})

    # --- HTTP ------------------------------------------------------------------------------

    def _request(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        headers = {"Accept": f"{CONTENT_TYPE}, application/json", **self.headers}
        if data is not None:
            headers["Content-Type"] = CONTENT_TYPE
        url = self.url + path
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                error = self._http_error(method, path, exc)
                if exc.code < 500 or attempt >= self.retries:
                    raise error from None
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                if attempt >= self.retries:
                    msg = (
                        f"schema registry at {self.url} is unreachable "
                        f"({method} {path}: {reason}; {attempt + 1} attempt(s), "
                        f"timeout {self.timeout:g} s)"
                    )
                    raise SchemaRegistryError(msg) from exc
            else:
                try:
                    return json.loads(raw) if raw else None
                except ValueError as exc:
                    msg = (
                        f"schema registry at {self.url}: {method} {path} returned "
                        f"something that is not JSON: {raw[:200]!r}"
                    )
                    raise SchemaRegistryError(msg) from exc
            attempt += 1
            time.sleep(self.backoff * attempt)

    def _http_error(
        self, method: str, path: str, exc: urllib.error.HTTPError
    ) -> SchemaRegistryError:
        try:
            raw = exc.read()
        except OSError:
            raw = b""
        error_code: int | None = None
        detail = raw.decode("utf-8", "replace").strip()[:500]
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("error_code")
            error_code = code if isinstance(code, int) else None
            message = body.get("message")
            if isinstance(message, str):
                detail = message
        suffix = f" (error {error_code})" if error_code is not None else ""
        msg = (
            f"schema registry at {self.url}: {method} {path} failed with "
            f"HTTP {exc.code}{suffix}: {detail or exc.reason}"
        )
        return SchemaRegistryError(msg, status=exc.code, error_code=error_code)


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _field(body: Any, name: str, kind: type[_T], url: str) -> _T:
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        msg = f"schema registry at {url} answered {body!r}: no {kind.__name__} {name!r}"
        raise SchemaRegistryError(msg)
    return value


__all__ = [
    "Compatibility",
    "RegisteredSchema",
    "SchemaRegistryClient",
    "SchemaRegistryError",
]
