"""Prometheus metrics, in prometheus-client's multiprocess mode so that uvicorn
workers add up.

`qa serve` points PROMETHEUS_MULTIPROC_DIR at a fresh folder before any worker
imports this module (prometheus-client picks its storage at import time; see
qa/ops/server.py:prepare_metrics_dir); each
worker then writes its values to memory-mapped files there, and `/metrics` sums
them. Without the variable (tests in one process, `qa ask`) the metrics live in
the process's own registry.
"""

from __future__ import annotations

import os
import time

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter("qa_http_requests_total", "HTTP requests by endpoint and status", ["endpoint", "method", "status"])
LATENCY = Histogram(
    "qa_http_request_duration_seconds", "HTTP request latency by endpoint", ["endpoint"],
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)
ANSWERS = Counter("qa_questions_total", "Questions asked, by whether a confident answer was found", ["answered"])
FEEDBACK = Counter("qa_feedback_total", "Feedback received: opened results and helpful votes", ["kind", "helpful"])
EVENTS_WRITTEN = Counter("qa_events_written_total", "Events written to the event store")
EVENTS_DROPPED = Counter("qa_events_dropped_total", "Events dropped: queue full or the store failed")
# Known label values start at 0, so a scrape shows them before the first event.
for _answered in ("yes", "no"):
    ANSWERS.labels(_answered)
for _kind, _helpful in (("opened", ""), ("helpful", "yes"), ("helpful", "no")):
    FEEDBACK.labels(_kind, _helpful)
FEEDBACK_CHANGED = Counter("qa_feedback_changed_total", "Votes that replaced an earlier vote on the same section")
FEEDBACK_REJECTED = Counter(
    "qa_feedback_rejected_total", "Feedback not stored: unknown query, or a section or position it did not show",
    ["reason"],
)
STORE_INCIDENTS = Counter(
    "qa_event_store_incidents_total", "Event store file incidents: deleted, replaced, emptied, corrupt", ["kind"]
)
STORE_DEGRADED = Gauge(
    "qa_event_store_degraded", "1 while the event store is degraded (see /readyz's store field)",
    multiprocess_mode="livemax",
)
for _reason in ("unknown_query", "not_shown", "wrong_position"):
    FEEDBACK_REJECTED.labels(_reason)
QUEUE_DEPTH = Gauge("qa_event_queue_depth", "Events waiting for the writer", multiprocess_mode="livesum")


def mark_process_dead() -> None:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())


class IndexAge:
    """Collected at scrape time by whichever worker answers /metrics: the age of its index."""

    def __init__(self, build_time: callable, build_seconds: float | None):
        self.build_time = build_time
        self.build_seconds = build_seconds

    def collect(self):
        if self.build_seconds is not None:
            d = GaugeMetricFamily("qa_index_build_duration_seconds", "How long building the loaded index took")
            d.add_metric([], float(self.build_seconds))
            yield d
        built = self.build_time()
        if built is None:
            return
        g = GaugeMetricFamily("qa_index_build_timestamp_seconds", "When the loaded index was built (Unix time)")
        g.add_metric([], built)
        yield g
        age = GaugeMetricFamily("qa_index_age_seconds", "Age of the loaded index")
        age.add_metric([], max(0.0, time.time() - built))
        yield age


def exposition(build_time: callable, build_seconds: float | None = None) -> tuple[bytes, str]:
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_Forward(REGISTRY))
    registry.register(IndexAge(build_time, build_seconds))
    return generate_latest(registry), CONTENT_TYPE_LATEST


class _Forward:
    def __init__(self, registry):
        self.registry = registry

    def collect(self):
        return self.registry.collect()


class MetricsMiddleware:
    """Pure ASGI: counts each HTTP request by its route template (not the raw path,
    which would make a label per question) and status, and times it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            REQUESTS.labels(endpoint, scope.get("method", ""), str(status[0])).inc()
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
