"""OpenTelemetry tracing of the worker, with W3C trace context carried in Kafka headers.

Off by default. :func:`tracing_from_env` turns it on when trace export is configured through
the standard ``OTEL_*`` environment variables (see the operations guide), and returns None
otherwise: the worker then runs its plain loop and never touches OpenTelemetry.

When on, for each polled batch:

* a ``streamer process`` span covers the batch (attribute ``messaging.batch.message_count``);
* each record carrying a ``traceparent`` header gets its own ``process <topic>`` span
  (kind CONSUMER) whose parent is the trace context from the header, linked to the batch
  span, so the trace continues from the producer into the worker;
* every record the worker sends to a sink, repartition or dead-letter topic while processing
  carries the context of the current span (the record's span, else the batch span) in its
  ``traceparent`` / ``tracestate`` headers, replacing those it inherited, so the next
  consumer continues the trace. Changelog records get no trace headers.

Sampling follows the SDK: ``OTEL_TRACES_SAMPLER`` (default ``parentbased_always_on``), so a
record whose upstream span was not sampled is not recorded either.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import TYPE_CHECKING

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.propagators.textmap import Getter

from streamer.errors import ConfigError
from streamer.processors.api import Headers

if TYPE_CHECKING:
    from streamer.kafka.types import Message
    from streamer.runtime.task import RecordSink

TRACER_NAME = "streamer"
TRACEPARENT = "traceparent"


class _HeaderGetter(Getter[Sequence[tuple[str, bytes | None]]]):
    """Reads text-map keys from Kafka headers (a list of ``(key, bytes)`` pairs)."""

    def get(self, carrier: Sequence[tuple[str, bytes | None]], key: str) -> list[str] | None:
        values = [v.decode("latin-1") for k, v in carrier if k.lower() == key and v is not None]
        return values or None

    def keys(self, carrier: Sequence[tuple[str, bytes | None]]) -> list[str]:
        return [k for k, _ in carrier]


HEADER_GETTER = _HeaderGetter()


def extract_context(headers: Headers) -> otel_context.Context | None:
    """The trace context in ``headers``, or None when they carry none."""
    if not any(k == TRACEPARENT for k, _ in headers):
        return None
    ctx = propagate.extract(headers, getter=HEADER_GETTER)
    span_context = trace.get_current_span(ctx).get_span_context()
    return ctx if span_context.is_valid else None


def inject_context(headers: Headers, ctx: otel_context.Context | None = None) -> Headers:
    """``headers`` with the trace context of ``ctx`` (default: the current one) in place of
    any trace headers they had; unchanged when there is no valid span."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=ctx)
    if not carrier:
        return headers
    fields = propagate.get_global_textmap().fields | set(carrier)
    kept = [(k, v) for k, v in headers if k not in fields]
    return [*kept, *((k, v.encode("latin-1")) for k, v in carrier.items())]


class _TracingSink:
    """A RecordSink that puts the current trace context into outgoing records' headers."""

    def __init__(self, inner: RecordSink, skip_topics: Collection[str]) -> None:
        self.inner = inner
        self.skip_topics = frozenset(skip_topics)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        timestamp: int,
        headers: Headers = (),
        partition: int | None = None,
    ) -> None:
        if topic not in self.skip_topics:
            headers = inject_context(headers)
        self.inner.send(
            topic, key, value, timestamp=timestamp, headers=headers, partition=partition
        )


class Tracing:
    """Spans around the worker's processing; see the module docstring.

    ``provider`` is any OpenTelemetry tracer provider (tests use the SDK's with an
    in-memory exporter); ``group`` names the consumer group in span attributes.
    """

    def __init__(
        self,
        provider: trace.TracerProvider,
        *,
        group: str,
        shutdown: Callable[[], None] | None = None,
    ) -> None:
        self.tracer = provider.get_tracer(TRACER_NAME)
        self.group = group
        self._shutdown = shutdown

    def wrap_sink(self, sink: RecordSink, *, skip_topics: Collection[str]) -> RecordSink:
        """``sink``, adding trace headers to records for every topic but ``skip_topics``."""
        return _TracingSink(sink, skip_topics)

    def process_batch(
        self, messages: list[Message], process: Callable[[list[Message]], None]
    ) -> None:
        """Process ``messages`` through ``process`` (which takes a run of messages), inside
        the batch span; each message with a trace context is processed alone in its span."""
        tracer = self.tracer
        with tracer.start_as_current_span(
            "streamer process",
            attributes={
                "messaging.system": "kafka",
                "messaging.consumer.group.name": self.group,
                "messaging.batch.message_count": len(messages),
            },
        ) as batch_span:
            batch_link = [trace.Link(batch_span.get_span_context())]
            start = 0
            for index, message in enumerate(messages):
                headers = message.headers()
                parent = extract_context(headers) if headers else None
                if parent is None:
                    continue
                if start < index:
                    process(messages[start:index])
                start = index + 1
                topic = message.topic() or ""
                with tracer.start_as_current_span(
                    f"process {topic}",
                    context=parent,
                    kind=trace.SpanKind.CONSUMER,
                    links=batch_link,
                    attributes={
                        "messaging.system": "kafka",
                        "messaging.operation.type": "process",
                        "messaging.destination.name": topic,
                        "messaging.destination.partition.id": str(message.partition()),
                        "messaging.kafka.offset": int(message.offset() or 0),
                        "messaging.consumer.group.name": self.group,
                    },
                ):
                    process(messages[index : index + 1])
            if start < len(messages):
                process(messages[start:])

    def shutdown(self) -> None:
        """Export what is buffered and stop the provider (if this object created it)."""
        if self._shutdown is not None:
            self._shutdown()


def _env(name: str) -> str:
    return os.environ.get(name, "").strip()


def tracing_enabled_by_env() -> bool:
    """True when the standard ``OTEL_*`` variables ask for trace export."""
    if _env("OTEL_SDK_DISABLED").lower() == "true":
        return False
    exporters = _env("OTEL_TRACES_EXPORTER").lower()
    if exporters:
        return exporters != "none"
    return bool(_env("OTEL_EXPORTER_OTLP_ENDPOINT") or _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracing_from_env(
    service_name: str, *, instance_id: str, group: str, set_global: bool = True
) -> Tracing | None:
    """A :class:`Tracing` exporting as the ``OTEL_*`` variables say, or None when they do
    not ask for traces.

    On when ``OTEL_TRACES_EXPORTER`` names exporters (``otlp``, ``console``; ``none`` is
    off), or when it is unset and ``OTEL_EXPORTER_OTLP_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` is set. ``OTEL_SDK_DISABLED=true`` turns it off.
    OTLP goes over HTTP/protobuf (``OTEL_EXPORTER_OTLP_PROTOCOL`` must be ``http/protobuf``
    or unset). The service name is ``OTEL_SERVICE_NAME`` (or ``service.name`` in
    ``OTEL_RESOURCE_ATTRIBUTES``), else ``service_name``. Everything else (sampler, batch
    processor, endpoint, headers, timeouts) is read by the SDK from its variables.
    """
    if not tracing_enabled_by_env():
        return None
    from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    resource = Resource.create({SERVICE_INSTANCE_ID: instance_id})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: service_name}))
    provider = TracerProvider(resource=resource)
    names = [n.strip() for n in (_env("OTEL_TRACES_EXPORTER") or "otlp").lower().split(",")]
    for name in filter(None, names):
        exporter: SpanExporter
        if name == "otlp":
            protocol = _env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _env(
                "OTEL_EXPORTER_OTLP_PROTOCOL"
            )
            if protocol not in ("", "http/protobuf"):
                msg = (
                    f"OTLP protocol {protocol!r} is not supported: streamer exports traces "
                    "over http/protobuf (set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf and "
                    "an HTTP endpoint, port 4318 on a collector)"
                )
                raise ConfigError(msg)
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            exporter = ConsoleSpanExporter()
        elif name == "none":
            continue
        else:
            msg = f"OTEL_TRACES_EXPORTER {name!r} is not supported: use otlp, console or none"
            raise ConfigError(msg)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    if set_global:
        trace.set_tracer_provider(provider)
    return Tracing(provider, group=group, shutdown=provider.shutdown)


__all__ = [
    "HEADER_GETTER",
    "Tracing",
    "extract_context",
    "inject_context",
    "tracing_enabled_by_env",
    "tracing_from_env",
]
