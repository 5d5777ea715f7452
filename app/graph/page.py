"""One page of a ranked listing: `limit` items from `offset`, with the total and whether more
follow, so every /services, /edges, /coverage and /graph answer stays small whatever the mesh."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page:
    limit: int
    offset: int = 0

    def take(self, items: Sequence[T]) -> tuple[list[T], dict[str, Any]]:
        """The page's items, and its JSON: `total`, `offset`, `limit`, `truncated` (items
        follow this page) and `next_offset` (where the next page starts, or null)."""
        kept = list(items[self.offset : self.offset + self.limit])
        end = self.offset + len(kept)
        truncated = end < len(items)
        return kept, {
            "total": len(items),
            "offset": self.offset,
            "limit": self.limit,
            "truncated": truncated,
            "next_offset": end if truncated else None,
        }
