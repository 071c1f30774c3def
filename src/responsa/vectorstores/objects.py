"""The API objects of vector stores, built from their rows (one place
writes each shape: ``vector_store``, ``vector_store.file``,
``vector_store.files_batch``), and the validation of the parameters that
describe them (``name``, ``metadata`` -- the one metadata rule of
``protocol.request``, re-exported here --, ``expires_after``)."""

from __future__ import annotations

from typing import Any

from responsa.protocol.errors import invalid
from responsa.protocol.request import check_metadata_param as check_metadata_param
from responsa.store.vectors import FileRow, StoreRow

DAY_S = 86_400
STATUSES = ("in_progress", "completed", "failed", "cancelled")
MAX_NAME = 256
MAX_DESCRIPTION = 512


def file_counts(counts: dict[str, int]) -> dict[str, int]:
    out = {s: counts.get(s, 0) for s in STATUSES}
    out["total"] = sum(out.values())
    return out


def expires_at(body: dict[str, Any], last_active_at: int) -> int | None:
    after = body.get("expires_after")
    return None if after is None else last_active_at + int(after["days"]) * DAY_S


def vector_store(row: StoreRow, now: int) -> dict[str, Any]:
    counts = file_counts(row.counts)
    expiry = expires_at(row.body, row.last_active_at)
    status = ("expired" if expiry is not None and expiry <= now
              else "in_progress" if counts["in_progress"] else "completed")
    return {"id": row.id, "object": "vector_store", "created_at": row.created_at,
            "name": row.body.get("name") or "", "usage_bytes": row.usage_bytes, "file_counts": counts,
            "status": status, "expires_after": row.body.get("expires_after"), "expires_at": expiry,
            "last_active_at": row.last_active_at, "metadata": row.body.get("metadata") or {}}


def vector_store_file(row: FileRow) -> dict[str, Any]:
    return {"id": row.id, "object": "vector_store.file", "usage_bytes": row.usage_bytes,
            "created_at": row.created_at, "vector_store_id": row.vector_store_id, "status": row.status,
            "last_error": row.last_error, "chunking_strategy": row.chunking, "attributes": row.attributes}


def batch(batch_id: str, vector_store_id: str, created_at: int, cancelled: bool,
          counts: dict[str, int]) -> dict[str, Any]:
    fc = file_counts(counts)
    if fc["in_progress"]:
        status = "in_progress"
    elif cancelled:
        status = "cancelled"
    elif fc["total"] and fc["failed"] == fc["total"]:
        status = "failed"
    else:
        status = "completed"
    return {"id": batch_id, "object": "vector_store.files_batch", "created_at": created_at,
            "vector_store_id": vector_store_id, "status": status, "file_counts": fc}


def check_name(raw: Any, param: str = "name") -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid(f"Invalid type for '{param}': expected a string.", param, "invalid_type")
    if len(raw) > MAX_NAME:
        raise invalid(f"Invalid '{param}': at most {MAX_NAME} characters.", param, "string_above_max_length")
    return raw


def check_description(raw: Any) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or len(raw) > MAX_DESCRIPTION:
        raise invalid(f"Invalid 'description': expected a string of at most {MAX_DESCRIPTION} characters.",
                      "description", "invalid_value")
    return raw


def check_expires_after(raw: Any) -> dict[str, Any] | None:
    """``{"anchor": "last_active_at", "days": 1..365}`` or ``None``."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise invalid("Invalid type for 'expires_after': expected an object.", "expires_after", "invalid_type")
    extra = sorted(set(raw) - {"anchor", "days"})
    if extra:
        raise invalid(f"Unknown parameter: 'expires_after.{extra[0]}'.", f"expires_after.{extra[0]}",
                      "unknown_parameter")
    if raw.get("anchor") != "last_active_at":
        raise invalid("Invalid value for 'expires_after.anchor': supported values are: 'last_active_at'.",
                      "expires_after.anchor")
    days = raw.get("days")
    if type(days) is not int or not 1 <= days <= 365:
        raise invalid("Invalid 'expires_after.days': expected an integer between 1 and 365.", "expires_after.days")
    return {"anchor": "last_active_at", "days": days}
