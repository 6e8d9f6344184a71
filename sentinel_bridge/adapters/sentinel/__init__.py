"""Microsoft Sentinel over Azure Resource Manager."""

from .client import SentinelClient
from .clock import Clock
from .paging import IncidentListing
from .parse import format_arm_time, parse_arm_time, parse_incident, parse_page
from .retry import RetryPolicy
from .throttle import Bucket, ThrottleGate, ThrottleGates, pacing_interval
from .workspace import incidents_path, sentinel_workspace, subscription_of, workspace_of

__all__ = [
    "Bucket",
    "Clock",
    "IncidentListing",
    "RetryPolicy",
    "SentinelClient",
    "ThrottleGate",
    "ThrottleGates",
    "format_arm_time",
    "incidents_path",
    "pacing_interval",
    "parse_arm_time",
    "parse_incident",
    "parse_page",
    "sentinel_workspace",
    "subscription_of",
    "workspace_of",
]
