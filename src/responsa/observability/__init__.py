"""What an operator sees: Prometheus metrics, structured logs, OpenTelemetry
traces, health checks. Everything hangs off one per-request ``Observation``
(``context.py``) that the ASGI middleware opens and the store, provider and
tool wrappers fill in, so the engine itself carries no instrumentation."""
