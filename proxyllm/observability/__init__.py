"""Prometheus metrics and structured request logs."""

from proxyllm.observability.hook import ObservabilityHook
from proxyllm.observability.logs import configure_logging, json_logs_wanted
from proxyllm.observability.metrics import Metrics

__all__ = ["Metrics", "ObservabilityHook", "configure_logging", "json_logs_wanted"]
