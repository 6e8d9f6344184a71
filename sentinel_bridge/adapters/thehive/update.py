"""How a changed incident updates the TheHive alert that stands for it. Pure.

The alert is shared with the SOC's analysts, so an update writes only what is the bridge's:
- never `status` or `assignee`: those are the analyst's from the moment the alert exists;
- tags by difference (`addTags`/`removeTags`): the bridge's new tags are added and only its
  own stale ones (`tactic:`, `tenant:`, `sentinel-severity:`) removed; the analyst's own tags,
  and a label removed in Sentinel, stay (a label is not told from an analyst's tag);
- `severity` only while it is still the one the bridge mapped (the description's Source
  section says from which Sentinel severity): an analyst's re-rating stays;
- nothing at all when the alert already shows this revision or a newer one.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.model import JsonObject
from .mapping import (
    BRIDGE_TAG_PREFIXES,
    REVISION_ROW,
    SEVERITY_ROW,
    instant,
    severity,
    source_row,
)


@dataclass(frozen=True, slots=True)
class Patch:
    """The `PATCH /api/v1/alert/{id}` body; empty when the alert shows this revision."""

    fields: JsonObject
    stale: bool = False  # the alert already shows a newer revision: nothing to write


def alert_patch(existing: JsonObject, wanted: JsonObject, revision: object) -> Patch:
    """The update from the alert as TheHive holds it (`existing`) to the one the bridge
    would create now (`wanted`, from thehive_alert) at `revision`."""
    held = instant(source_row(existing.get("description"), REVISION_ROW))
    new = instant(revision)
    if held is not None and new is not None and held >= new:
        return Patch({}, stale=held > new)
    fields: JsonObject = {
        name: wanted[name] for name in ("title", "description", "externalLink") if name in wanted
    }
    if _severity_untouched(existing):
        fields["severity"] = wanted["severity"]
    fields.update(_tag_changes(existing.get("tags"), wanted.get("tags")))
    return Patch(fields)


def _severity_untouched(existing: JsonObject) -> bool:
    """Whether the alert's severity is still the one mapped from the Sentinel severity its
    description records (an alert without that record is the bridge's to rate)."""
    mapped_from = source_row(existing.get("description"), SEVERITY_ROW)
    return mapped_from is None or existing.get("severity") == severity(mapped_from)


def _tag_changes(held: object, wanted: object) -> JsonObject:
    held_tags = {tag for tag in held if isinstance(tag, str)} if isinstance(held, list) else set()
    wanted_tags = (
        [tag for tag in wanted if isinstance(tag, str)] if isinstance(wanted, list) else []
    )
    add = [tag for tag in wanted_tags if tag not in held_tags]
    remove = sorted(
        tag for tag in held_tags if tag.startswith(BRIDGE_TAG_PREFIXES) and tag not in wanted_tags
    )
    changes: JsonObject = {}
    if add:
        changes["addTags"] = add
    if remove:
        changes["removeTags"] = remove
    return changes
