"""Microsoft Sentinel over Azure Resource Manager."""

from .client import SentinelClient
from .clock import Clock
from .paging import IncidentListing
from .parse import format_arm_time, parse_arm_time, parse_incident, parse_page
from .retry import RetryPolicy
from .throttle import Bucket, ThrottleGate, ThrottleGates, pacing_interval

__all__ = [
    "Bucket",
    "Clock",
    "IncidentListing",
    "RetryPolicy",
    "SentinelClient",
    "ThrottleGate",
    "ThrottleGates",
    "format_arm_time",
    "pacing_interval",
    "parse_arm_time",
    "parse_incident",
    "parse_page",
]
