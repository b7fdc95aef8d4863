"""Traces: OpenTelemetry spans for requests, periodic jobs, outbox deliveries and SQL statements,
exported over OTLP/HTTP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``…_TRACES_ENDPOINT``) is set.

One tracer provider per process. Nothing is sampled while no exporter is attached (spans still carry
a trace id, for the ``traceparent`` answer and the access log); `enable_tracing` attaches an OTLP
exporter, instruments the app's engines (SQLAlchemy) and outbound HTTP (httpx). Every exported span
passes `scrub`: only allow-listed attributes leave the process (method, route template, status,
SQL text with its placeholders, ``bpo.*`` attributes we set ourselves), so a URL with a query string,
a client address, a header or an exception message holding a value never reaches a collector.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
    TraceIdRatioBased,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

SERVICE = "bpo-control-plane"
# Attributes that may leave the process; anything else an instrumentation records is dropped.
ALLOWED = frozenset(
    {
        "http.request.method",
        "http.method",
        "http.route",
        "http.response.status_code",
        "http.status_code",
        "http.scheme",
        "url.scheme",
        "network.protocol.version",
        "http.flavor",
        "server.address",
        "server.port",
        "net.peer.name",
        "net.peer.port",
        "db.system",
        "db.system.name",
        "db.name",
        "db.namespace",
        "db.statement",  # the SQL text with its placeholders: the instrumentation records no parameter values
        "db.query.text",
        "db.operation",
        "db.operation.name",
        "error.type",
        "exception.type",
    }
)
_PROPAGATOR = TraceContextTextMapPropagator()


def _allowed(key: str) -> bool:
    return key in ALLOWED or key.startswith("bpo.")


def scrub(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` holding only allow-listed attributes (and events reduced to their type)."""
    attributes = {k: v for k, v in (span.attributes or {}).items() if _allowed(k)}
    events = [
        Event(e.name, {k: v for k, v in (e.attributes or {}).items() if _allowed(k)}, e.timestamp) for e in span.events
    ]
    status = span.status
    if status.description:  # an exception's message may quote a value
        status = trace.Status(status.status_code)
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=attributes,
        events=events,
        links=span.links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class ScrubbingExporter(SpanExporter):
    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([scrub(s) for s in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class _Exporters(SpanProcessor):
    """The processors attached now (one per app with tracing on): added and removed at run time."""

    def __init__(self) -> None:
        self.processors: list[SpanProcessor] = []
        self.lock = threading.Lock()

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        for p in self.processors:
            p.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for p in self.processors:
            p.on_end(span)

    def shutdown(self) -> None:
        for p in list(self.processors):
            p.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(p.force_flush(timeout_millis) for p in list(self.processors))


class _WhileExporting(Sampler):
    """Drops every span while no exporter is attached; else the standard choice (``OTEL_TRACES_SAMPLER``
    ``parentbased_traceidratio`` with ``OTEL_TRACES_SAMPLER_ARG`` is honoured, parent-based always-on by default)."""

    def __init__(self, exporters: _Exporters) -> None:
        self.exporters = exporters
        ratio = os.environ.get("OTEL_TRACES_SAMPLER_ARG")
        wants_ratio = "traceidratio" in os.environ.get("OTEL_TRACES_SAMPLER", "")
        self.sampler = ParentBased(TraceIdRatioBased(float(ratio)) if ratio and wants_ratio else ALWAYS_ON)

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None) -> SamplingResult:
        if not self.exporters.processors:
            return SamplingResult(Decision.DROP)
        return self.sampler.should_sample(parent_context, trace_id, name, kind, attributes, links)

    def get_description(self) -> str:
        return f"WhileExporting{{{self.sampler.get_description()}}}"


_EXPORTERS = _Exporters()
PROVIDER = TracerProvider(
    sampler=_WhileExporting(_EXPORTERS), resource=Resource.create({"service.name": SERVICE})
)  # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES override
PROVIDER.add_span_processor(_EXPORTERS)
tracer = PROVIDER.get_tracer("bpo")


def endpoint_configured(env: dict[str, str] | None = None) -> bool:
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or env.get("OTEL_TRACES_EXPORTER", "") == "none":
        return False
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


class Tracing:
    """An attached exporter; `close` flushes and detaches it (the app's shutdown)."""

    def __init__(self, processor: SpanProcessor) -> None:
        self.processor = processor

    def flush(self) -> bool:
        return self.processor.force_flush()

    def close(self) -> None:
        with _EXPORTERS.lock:
            if self.processor in _EXPORTERS.processors:
                _EXPORTERS.processors.remove(self.processor)
        self.processor.shutdown()


_INSTRUMENTED: set[int] = set()


def instrument_engines(engines: Sequence[Any]) -> None:
    """Spans for every SQL statement of these (async) engines, once per engine."""
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.metrics import NoOpMeter

    usage = NoOpMeter("bpo").create_up_down_counter("db.client.connections.usage")
    for engine in engines:
        sync = getattr(engine, "sync_engine", engine)
        if id(sync) not in _INSTRUMENTED:
            _INSTRUMENTED.add(id(sync))
            EngineTracer(PROVIDER.get_tracer("opentelemetry.instrumentation.sqlalchemy"), sync, usage)


_FROM_ENV: list[Tracing] = []  # the OTLP exporter the OTEL_* variables asked for, while attached


def enable_tracing(engines: Sequence[Any], exporter: SpanExporter | None = None) -> Tracing | None:
    """Attach an OTLP/HTTP exporter (or ``exporter``) when the ``OTEL_*`` variables ask for one and none
    is attached yet (then only ``engines`` are instrumented; ``None`` is returned: the owner closes it)."""
    from_env = exporter is None
    if exporter is None:
        if not endpoint_configured():
            return None
        if any(t.processor in _EXPORTERS.processors for t in _FROM_ENV):
            instrument_engines(engines)
            return None
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()  # reads OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, _HEADERS, _TIMEOUT, ...
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

    instrumentor = HTTPXClientInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=PROVIDER)
    instrument_engines(engines)
    processor = BatchSpanProcessor(ScrubbingExporter(exporter), schedule_delay_millis=500)
    with _EXPORTERS.lock:
        _EXPORTERS.processors.append(processor)
    tracing = Tracing(processor)
    if from_env:
        _FROM_ENV[:] = [tracing]
    return tracing


def current_ids() -> tuple[str | None, str | None]:
    """``(trace_id, span_id)`` of the current span as hex, or ``(None, None)``."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def traceparent() -> str | None:
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A span of ours (``bpo.*`` attributes: never a secret, a customer reference or contact content)."""
    attrs = {f"bpo.{k}": v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attrs) as current:
        yield current


def _span_details(scope: dict) -> tuple[str, dict[str, str]]:
    """The server span's name and route: the route template (Litestar routes before middleware runs)."""
    route = scope.get("path_template") or "(unmatched)"
    return f"{scope.get('method', '')} {route}".strip(), {"http.route": route}


def server_spans(app: Any) -> Any:
    """The ASGI instrumentation around the app's routes: a server span per request, continuing the
    caller's ``traceparent``; no spans for each ``receive``/``send``."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware(
        app, tracer_provider=PROVIDER, default_span_details=_span_details, exclude_spans=["receive", "send"]
    )
