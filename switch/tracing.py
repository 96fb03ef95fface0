"""One trace per transaction, through every Kafka hop (OpenTelemetry, W3C trace context).

Each stage reads the `traceparent` header of the record it handles, records a span for its
hop (started at the record's append time, so the wait in the topic is part of it) and
writes the new `traceparent` on the records it sends: the router's span is a child of the
producer's own trace when the request carries one, the services' and the correlator's spans
are children of the router's, and the reply carries the trace on to whoever reads it. The
manifest keeps the router's `traceparent`, so a reply made by a deadline (no record in hand)
stays in the transaction's trace.

Spans are exported only when an exporter is configured the OpenTelemetry way
(`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: OTLP over HTTP to
any backend, e.g. Jaeger or Tempo); without one the context still travels in the headers.
Span attributes are the transaction's ids (cid, mid, ORI, MKE, system, status), never
image bytes.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

Headers = list[tuple[str, bytes]]
TRACE_HEADERS = ("traceparent", "tracestate")
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None


def provider() -> TracerProvider:
    """The process's tracer provider, made once; with an OTLP exporter if one is configured."""
    global _provider
    if _provider is None:
        _provider = TracerProvider(resource=Resource.create({"service.name": "switch"}))
        if _exporter_configured(os.environ):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            _provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    return _provider


def add_processor(processor: SpanProcessor) -> None:
    """Another destination for the spans (a test's in-memory exporter)."""
    provider().add_span_processor(processor)


def _exporter_configured(env: Mapping[str, str]) -> bool:
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def tracer(component: str) -> trace.Tracer:
    return provider().get_tracer(f"switch.{component}")


def parent_of(headers: Sequence[tuple[str, bytes]] | None = None,
              traceparent: str | None = None) -> otel_context.Context:
    """The trace context in a record's headers (or a stored `traceparent`); empty if none."""
    carrier: dict[str, str] = {}
    for key, value in headers or ():
        if key in TRACE_HEADERS and value:
            try:
                carrier[key] = value.decode("ascii")
            except UnicodeDecodeError:
                continue
    if traceparent and "traceparent" not in carrier:
        carrier["traceparent"] = traceparent
    return _PROPAGATOR.extract(carrier)


def start(tracer_: trace.Tracer, name: str, parent: otel_context.Context, *,
          appended_ms: int | None = None, kind: SpanKind = SpanKind.CONSUMER,
          attributes: Mapping[str, Any] | None = None) -> Span:
    """A span for one hop, from the record's append time (ms) when known."""
    start_ns = appended_ms * 1_000_000 if appended_ms and appended_ms > 0 else None
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    return tracer_.start_span(name, context=parent, kind=kind, start_time=start_ns,
                              attributes=attrs)


def headers_of(span: Span) -> Headers:
    """The headers that make `span` the parent of the next hop."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return [(k, v.encode("ascii")) for k, v in carrier.items()]


def traceparent_of(headers: Iterable[tuple[str, bytes]]) -> str | None:
    for key, value in headers:
        if key == "traceparent":
            return value.decode("ascii", "replace")
    return None


def trace_id(traceparent: str | None) -> str | None:
    """The trace id (32 hex digits) of a `traceparent`, for showing and searching."""
    if not traceparent:
        return None
    parts = traceparent.split("-")
    return parts[1] if len(parts) >= 4 and len(parts[1]) == 32 else None
