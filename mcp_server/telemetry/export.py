"""Series totals -> the OpenTelemetry SDK's metrics data -> one exporter call, success or not.

The only module that imports ``opentelemetry`` (the ``[otel]`` extra). Each series is sent as a
cumulative monotonic sum that starts at this exporter instance's start time, so the values of
every push continue one another, across processes. The protocol is the SDK's: OTLP/HTTP
(protobuf) by ``opentelemetry-exporter-otlp-proto-http``, or Prometheus remote write by
``opentelemetry-exporter-prometheus-remote-write``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Mapping

from mcp_server.config import TelemetrySettings
from mcp_server.errors import HybridError
from mcp_server.telemetry.series import METRICS, SeriesKey

SCOPE = "hybrid-orchestrator.ledger"
SERVICE_NAME = "hybrid-orchestrator"
OTLP_METRICS_PATH = "/v1/metrics"
# What a collector's Prometheus exporters make of our units (its unit translation).
_PROMETHEUS_UNITS = {"tokens": "tokens", "USD": "USD", "s": "seconds"}
_FRACTIONAL_UNITS = {"USD", "s"}  # sent as doubles; counts as integers


class TelemetryUnavailable(HybridError):
    """Telemetry is configured but the [otel] extra is not installed."""


def prometheus_name(metric: str) -> str:
    """The name a collector gives the metric in Prometheus: ``hybrid.cost.usage`` (USD) ->
    ``hybrid_cost_usage_USD_total``; the remote-write path uses the same names."""
    unit = _PROMETHEUS_UNITS.get(METRICS[metric][0])
    return "_".join([metric.replace(".", "_"), *([unit] if unit else []), "total"])


def otlp_url(endpoint: str) -> str:
    """A collector's base URL gets the metrics path, as OTEL_EXPORTER_OTLP_ENDPOINT does."""
    trimmed = endpoint.rstrip("/")
    return trimmed if trimmed.endswith(OTLP_METRICS_PATH) else trimmed + OTLP_METRICS_PATH


@dataclass(frozen=True)
class Outcome:
    ok: bool
    error: str | None = None


class _Captured(logging.Handler):
    """The exporters report a failure only in their log: keep the last line, for `status`."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class Exporter:
    def __init__(self, settings: TelemetrySettings, instance_id: str, start_ns: int):
        try:
            from opentelemetry.sdk.resources import Resource
        except ImportError:
            raise TelemetryUnavailable(
                "telemetry is configured but the OpenTelemetry SDK is missing: "
                "pip install 'hybrid-orchestrator[otel]'"
            ) from None
        if settings.endpoint is None:
            raise HybridError("telemetry.endpoint is not set (see docs/telemetry.md)")
        self.settings = settings
        self.start_ns = start_ns
        self.instance_id = instance_id
        self.resource = Resource(
            {"service.name": SERVICE_NAME, "service.instance.id": instance_id, **settings.resource_attributes}
        )
        self._secrets = [value.get_secret_value() for value in settings.headers.values()]
        self._exporter = self._build()

    def _build(self):
        headers = {name: value.get_secret_value() for name, value in self.settings.headers.items()}
        if self.settings.protocol == "prometheus-remote-write":
            try:
                from opentelemetry.exporter.prometheus_remote_write import PrometheusRemoteWriteMetricsExporter
            except ImportError:
                raise TelemetryUnavailable(
                    "telemetry.protocol prometheus-remote-write needs pip install 'hybrid-orchestrator[otel]'"
                ) from None
            # Labels come from the points (see _points): the resource's would repeat them.
            return PrometheusRemoteWriteMetricsExporter(
                endpoint=self.settings.endpoint, headers=headers, timeout=self.settings.timeout_s,
                resources_as_labels=False,
            )
        try:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        except ImportError:
            raise TelemetryUnavailable(
                "telemetry needs the OTLP/HTTP exporter: pip install 'hybrid-orchestrator[otel]'"
            ) from None
        return OTLPMetricExporter(endpoint=otlp_url(self.settings.endpoint), headers=headers, timeout=self.settings.timeout_s)

    def close(self) -> None:
        self._exporter.shutdown()

    def metrics_data(self, totals: Mapping[SeriesKey, Decimal]):
        """The SDK's data model for these series: one cumulative sum per metric."""
        from opentelemetry.sdk.metrics.export import (
            AggregationTemporality,
            Metric,
            MetricsData,
            NumberDataPoint,
            ResourceMetrics,
            ScopeMetrics,
            Sum,
        )
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        now = time.time_ns()
        remote_write = self.settings.protocol == "prometheus-remote-write"
        by_metric: dict[str, list] = {}
        for (metric, attributes), total in totals.items():
            labels = dict(attributes)
            if remote_write:  # what a collector makes of service.name and service.instance.id
                labels.update(job=SERVICE_NAME, instance=self.instance_id)
            value = float(total) if METRICS[metric][0] in _FRACTIONAL_UNITS else int(total)
            by_metric.setdefault(metric, []).append(
                NumberDataPoint(attributes=labels, start_time_unix_nano=self.start_ns, time_unix_nano=now, value=value)
            )
        metrics = [
            Metric(
                # remote write names a series `<name>_<unit>`: give it the collector's name whole
                name=prometheus_name(metric) if remote_write else metric,
                description=METRICS[metric][1],
                unit="" if remote_write else METRICS[metric][0],
                data=Sum(data_points=points, aggregation_temporality=AggregationTemporality.CUMULATIVE, is_monotonic=True),
            )
            for metric, points in by_metric.items()
        ]
        scope = ScopeMetrics(scope=InstrumentationScope(SCOPE), metrics=metrics, schema_url="")
        return MetricsData(resource_metrics=[ResourceMetrics(resource=self.resource, scope_metrics=[scope], schema_url="")])

    def export(self, totals: Mapping[SeriesKey, Decimal]) -> Outcome:
        from opentelemetry.sdk.metrics.export import MetricExportResult

        if not totals:
            return Outcome(True)
        captured = _Captured()
        logger = logging.getLogger("opentelemetry.exporter")
        logger.addHandler(captured)
        propagate, logger.propagate = logger.propagate, False  # the caller reports it, once
        try:
            result = self._exporter.export(self.metrics_data(totals), timeout_millis=self.settings.timeout_s * 1000)
        except Exception as error:  # an exporter bug must not take a tool call down with it
            captured.lines.append(f"{type(error).__name__}: {error}")
            result = None
        finally:
            logger.removeHandler(captured)
            logger.propagate = propagate
        if result == MetricExportResult.SUCCESS:
            return Outcome(True)
        lines = captured.lines or ["the exporter reported a failure"]
        # the first says why (connection refused, HTTP 401), the last how it ended (gave up after retries)
        return Outcome(False, self._scrub(lines[0] if len(lines) == 1 else f"{lines[0][:300]} ... {lines[-1]}"))

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            if secret:
                text = text.replace(secret, "***")
        return text[:500]
