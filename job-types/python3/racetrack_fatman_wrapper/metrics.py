"""Prometheus metrics in the text exposition format (version 0.0.4), without prometheus_client.

Exported series (counters get the ``_total`` suffix, as prometheus_client writes them):
- ``requests_started_total`` / ``requests_done_total``: every HTTP request
- ``endpoint_requests_started_total{endpoint}``: calls of perform / auxiliary endpoints
- ``request_internal_errors_total{endpoint}``: responses with status 500 by endpoint
- ``request_duration{endpoint}``: histogram (seconds) of perform / auxiliary calls
- ``last_call_timestamp``: gauge, unix time of the last perform / auxiliary call (0 before any)
- the entrypoint's own gauges from ``metrics()``: ``[{name, description?, value, labels?}]``
"""

import math
import re
import threading
import time
from typing import Dict, Iterable, List, Tuple

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0,
           100.0, 250.0, 500.0, 1000.0)

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def _escape_label(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(value) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n")


def _labels(pairs: Iterable[Tuple[str, str]]) -> str:
    items = [f'{k}="{_escape_label(v)}"' for k, v in pairs]
    return "{" + ",".join(items) + "}" if items else ""


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


class _Histogram:
    __slots__ = ("counts", "total", "count")

    def __init__(self):
        self.counts = [0] * len(BUCKETS)
        self.total = 0.0
        self.count = 0

    def observe(self, seconds: float):
        for i, bound in enumerate(BUCKETS):
            if seconds <= bound:
                self.counts[i] += 1
        self.total += seconds
        self.count += 1


class Metrics:
    def __init__(self):
        self._lock = threading.Lock()
        self.requests_started = 0
        self.requests_done = 0
        self.endpoint_requests_started: Dict[str, int] = {}
        self.internal_errors: Dict[str, int] = {}
        self.durations: Dict[str, _Histogram] = {}
        self.last_call_timestamp = 0.0

    def request_started(self):
        with self._lock:
            self.requests_started += 1

    def request_done(self):
        with self._lock:
            self.requests_done += 1

    def endpoint_call_started(self, endpoint: str):
        with self._lock:
            self.endpoint_requests_started[endpoint] = self.endpoint_requests_started.get(endpoint, 0) + 1

    def endpoint_call_done(self, endpoint: str, seconds: float):
        with self._lock:
            self.durations.setdefault(endpoint, _Histogram()).observe(seconds)
            self.last_call_timestamp = time.time()

    def internal_error(self, endpoint: str):
        with self._lock:
            self.internal_errors[endpoint] = self.internal_errors.get(endpoint, 0) + 1

    def render(self, user_metrics: List[dict] = (), on_bad_metric=None) -> str:
        with self._lock:
            lines: List[str] = []

            def family(name, kind, help_text):
                lines.append(f"# HELP {name} {_escape_help(help_text)}")
                lines.append(f"# TYPE {name} {kind}")

            family("requests_started", "counter", "Total number of requests started")
            lines.append(f"requests_started_total {self.requests_started}")
            family("requests_done", "counter", "Total number of requests finished")
            lines.append(f"requests_done_total {self.requests_done}")
            family("endpoint_requests_started", "counter", "Calls of perform and auxiliary endpoints")
            for endpoint, value in sorted(self.endpoint_requests_started.items()):
                lines.append(f"endpoint_requests_started_total{_labels([('endpoint', endpoint)])} {value}")
            family("request_internal_errors", "counter", "Responses with an internal server error")
            for endpoint, value in sorted(self.internal_errors.items()):
                lines.append(f"request_internal_errors_total{_labels([('endpoint', endpoint)])} {value}")
            family("request_duration", "histogram", "Duration of perform and auxiliary calls in seconds")
            for endpoint, hist in sorted(self.durations.items()):
                for bound, count in zip(BUCKETS, hist.counts):
                    lines.append(
                        f"request_duration_bucket{_labels([('endpoint', endpoint), ('le', _number(bound))])} {count}"
                    )
                lines.append(f"request_duration_bucket{_labels([('endpoint', endpoint), ('le', '+Inf')])} {hist.count}")
                lines.append(f"request_duration_sum{_labels([('endpoint', endpoint)])} {_number(hist.total)}")
                lines.append(f"request_duration_count{_labels([('endpoint', endpoint)])} {hist.count}")
            family("last_call_timestamp", "gauge", "Unix time of the last call of perform or an auxiliary endpoint")
            lines.append(f"last_call_timestamp {_number(self.last_call_timestamp)}")

        seen = {"requests_started", "requests_done", "endpoint_requests_started", "request_internal_errors",
                "request_duration", "last_call_timestamp"}
        grouped: Dict[str, List[dict]] = {}
        descriptions: Dict[str, str] = {}
        for metric in user_metrics or ():
            if not isinstance(metric, dict):
                _report(on_bad_metric, f"custom metric is not a dict: {metric!r}")
                continue
            name, value = metric.get("name"), metric.get("value")
            if not name or value is None:
                continue
            if not isinstance(name, str) or not _NAME_RE.match(name) or name in seen:
                _report(on_bad_metric, f"custom metric has an invalid or reserved name: {name!r}")
                continue
            try:
                float(value)
            except (TypeError, ValueError):
                _report(on_bad_metric, f"custom metric {name} has a non-numeric value: {value!r}")
                continue
            grouped.setdefault(name, []).append(metric)
            if metric.get("description"):
                descriptions.setdefault(name, str(metric["description"]))
        for name, samples in grouped.items():
            lines.append(f"# HELP {name} {_escape_help(descriptions.get(name, name))}")
            lines.append(f"# TYPE {name} gauge")
            for metric in samples:
                labels = metric.get("labels") or {}
                pairs = [(str(k), v) for k, v in labels.items() if _LABEL_RE.match(str(k))] if isinstance(labels, dict) else []
                lines.append(f"{name}{_labels(pairs)} {_number(metric['value'])}")
        return "\n".join(lines) + "\n"


def _report(callback, message):
    if callback is not None:
        callback(message)
