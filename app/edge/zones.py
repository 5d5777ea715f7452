"""An edge's bytes by zone path: client zone → (waypoint zone →) server zone.

The bucket keeps `l4_zone_bytes`, a count map keyed `zone_key(…)` =
`<side>|<client zone>|<waypoint zone>|<server zone>|<x exact, e estimated>` → bytes both ways (request + response), one entry per zone path a sample's traffic
took (app/poll/zone_split.py decides the paths). `side` is the bucket side the bytes were
counted under (app/edge/fields.py: source, destination or sole), so a reader takes the same
sides as `choose_l4` and never adds both reporters of one direct connection. A zone is "" when
no source named it.

The figures (per path, summed on the edge):

* `cross_zone_bytes`: bytes times the zone boundaries they crossed — a call through a waypoint
  in a third zone crosses twice and is billed twice;
* `detour_bytes`: the crossings that exist only because of the waypoint, i.e. the path's
  crossings minus those of the direct path client zone → server zone (`[c≠w] + [w≠s] - [c≠s]`,
  never negative); known only when all three zones are;
* `estimated_bytes`: bytes whose server zone was split in proportion (module
  app/poll/zone_split.py), so their path, and with it the detour, is an estimate.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

SEP = "|"
EXACT, ESTIMATED = "x", "e"


UNKNOWN_WAYPOINT_ZONE = "?"  # a waypoint path whose waypoint's zone no source named


def zone_key(
    side: str, client: str, waypoint: str, server: str, *, via: bool, estimated: bool
) -> str:
    middle = (waypoint or UNKNOWN_WAYPOINT_ZONE) if via else ""
    return SEP.join((side, client, middle, server, ESTIMATED if estimated else EXACT))


def _crosses(a: str, b: str) -> int | None:
    """1 when a hop between zones `a` and `b` crosses a boundary, 0 when not, None: unknown."""
    if not a or not b:
        return None
    return int(a != b)


@dataclass(frozen=True, slots=True)
class ZonePath:
    client_zone: str
    waypoint_zone: str  # "" on a direct path (or a waypoint whose zone is unknown: `via`)
    server_zone: str
    via: bool  # the path runs through a waypoint
    bytes: int
    estimated_bytes: int = 0

    @property
    def known(self) -> bool:
        """Every hop's zones are known."""
        if self.via:
            return bool(self.client_zone and self.waypoint_zone and self.server_zone)
        return bool(self.client_zone and self.server_zone)

    @property
    def crossings(self) -> int:
        """Zone boundaries crossed on the hops whose zones are known."""
        if not self.via:
            return _crosses(self.client_zone, self.server_zone) or 0
        first = _crosses(self.client_zone, self.waypoint_zone) or 0
        return first + (_crosses(self.waypoint_zone, self.server_zone) or 0)

    @property
    def cross_zone_bytes(self) -> int:
        return self.bytes * self.crossings

    @property
    def direct_crossings(self) -> int | None:
        """Crossings of the direct path client → server; None when a zone is unknown."""
        return _crosses(self.client_zone, self.server_zone)

    @property
    def detour_bytes(self) -> int:
        if not self.via or not self.known:
            return 0
        return self.bytes * (self.crossings - (self.direct_crossings or 0))


@dataclass(frozen=True, slots=True)
class ZoneStats:
    paths: tuple[ZonePath, ...]  # sorted by (client, waypoint, server)

    @property
    def bytes(self) -> int:
        return sum(p.bytes for p in self.paths)

    @property
    def known_bytes(self) -> int:
        return sum(p.bytes for p in self.paths if p.known)

    @property
    def unknown_bytes(self) -> int:
        return self.bytes - self.known_bytes

    @property
    def cross_zone_bytes(self) -> int:
        return sum(p.cross_zone_bytes for p in self.paths)

    @property
    def detour_bytes(self) -> int:
        return sum(p.detour_bytes for p in self.paths)

    @property
    def estimated_bytes(self) -> int:
        return sum(p.estimated_bytes for p in self.paths)

    @property
    def cross_zone_share(self) -> float | None:
        """Share of the bytes with known zones that crossed at least one boundary."""
        known = self.known_bytes
        if not known:
            return None
        return sum(p.bytes for p in self.paths if p.known and p.crossings) / known


def zone_stats(zone_bytes: Mapping[str, int], sides: Collection[str]) -> ZoneStats | None:
    """The paths of the chosen `sides` (those `choose_l4` read); None without any."""
    acc: dict[tuple[str, str, str, bool], list[int]] = {}
    for key, n in zone_bytes.items():
        parts = key.split(SEP)
        if len(parts) != 5 or parts[0] not in sides or not n:
            continue
        _side, client, waypoint, server, how = parts
        via = bool(waypoint)
        path = (client, "" if waypoint == UNKNOWN_WAYPOINT_ZONE else waypoint, server, via)
        entry = acc.setdefault(path, [0, 0])
        entry[0] += n
        if how == ESTIMATED:
            entry[1] += n
    if not acc:
        return None
    return ZoneStats(
        tuple(ZonePath(c, w, s, via, n, est) for (c, w, s, via), (n, est) in sorted(acc.items()))
    )
