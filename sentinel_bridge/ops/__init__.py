"""What operators see: logs, metrics, health and readiness, the ops listener."""
