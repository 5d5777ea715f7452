"""Read-time node identity: stored edges re-joined under the canonical service.

Edges are written under the names identity knew at the time (app/correlate/identity.py); an
alias learned later (a ztunnel series naming the Service beside its canonical service, a
Kubernetes listing, the setting) re-joins what was already stored **when it is read**: each
stored `namespace/alias` id at `level=service` reads as `namespace/<canonical>`, and edges that
meet on the same pair are merged exactly (app/edge/merge.py). Nothing stored is rewritten, so
a wrong alias can be corrected (a stronger source, the setting) and the data follows.
Workload-level ids are workloads (ztunnel's `*_workload`) and are read as stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from app.domain import Alias, Level
from app.graph.read_every import ReadEvery


@dataclass(frozen=True, slots=True)
class AliasMap:
    canonical_of: dict[str, str] = field(default_factory=dict)  # "ns/alias" -> "ns/service"
    aliases_of: dict[str, tuple[str, ...]] = field(default_factory=dict)  # inverse, sorted
    by_name: dict[str, tuple[str, ...]] = field(default_factory=dict)  # bare alias -> node ids

    @classmethod
    def from_aliases(cls, aliases: Iterable[Alias]) -> AliasMap:
        canonical: dict[str, str] = {}
        for a in aliases:
            if a.name != a.service:
                canonical[f"{a.namespace}/{a.name}"] = f"{a.namespace}/{a.service}"
        # An alias of an alias (learned in two steps) resolves to the end of the chain.
        for key, value in list(canonical.items()):
            seen = {key}
            while value in canonical and value not in seen:
                seen.add(value)
                value = canonical[value]
            canonical[key] = value
        inverse: dict[str, list[str]] = {}
        for alias_id, node_id in canonical.items():
            inverse.setdefault(node_id, []).append(alias_id)
        by_name: dict[str, set[str]] = {}
        for alias_id, node_id in canonical.items():
            by_name.setdefault(alias_id.partition("/")[2], set()).add(node_id)
        return cls(
            canonical,
            {k: tuple(sorted(v)) for k, v in inverse.items()},
            {k: tuple(sorted(v)) for k, v in by_name.items()},
        )

    def for_level(self, level: Level | str) -> AliasMap:
        return self if str(level) == Level.SERVICE.value else _EMPTY

    def canonical(self, node_id: str) -> str:
        return self.canonical_of.get(node_id, node_id)

    def names(self, node_id: str) -> tuple[str, ...]:
        """The other ids `node_id` is known by (empty for most nodes)."""
        return self.aliases_of.get(node_id, ())

    def named(self, name: str) -> tuple[str, ...]:
        """The node ids a bare alias (no namespace) reads as, in any namespace."""
        return self.by_name.get(name, ())

    def expand(self, ids: Iterable[str]) -> set[str]:
        """`ids` and every stored id that reads as one of them."""
        out = set(ids)
        for node_id in list(out):
            out.update(self.aliases_of.get(node_id, ()))
        return out

    def __bool__(self) -> bool:
        return bool(self.canonical_of)


_EMPTY = AliasMap()


def cached_aliases(read: Callable[[], list[Alias]], ttl_s: float = 5.0) -> ReadEvery[AliasMap]:
    """The alias table, read at most every `ttl_s` (it changes rarely; replicas write it): an
    alias learned late re-joins stored edges in reads within `ttl_s`. A read that finds the
    same aliases gives the same map object, so what the read side keeps per alias map (graph
    nodes, the attributed whole window) lives until the aliases really change."""
    last: list[tuple[list[Alias], AliasMap]] = []

    def read_map() -> AliasMap:
        found = read()
        if last and last[0][0] == found:
            return last[0][1]
        made = AliasMap.from_aliases(found)
        last[:] = [(found, made)]
        return made

    return ReadEvery(read_map, ttl_s)


_SVC_SUFFIX = ".svc.cluster.local"


def name_forms(name: str) -> list[str]:
    """What a user may type for a service, most literal first: `reviews.bookinfo.svc.cluster.local`,
    `reviews.bookinfo.svc`, `reviews.bookinfo` → `bookinfo/reviews`; `reviews:9080` → `reviews`."""
    forms = [name]
    host = name
    if "/" not in host and host.count(":") == 1:
        host = host.partition(":")[0]
        forms.append(host)
    if "/" not in host and "." in host:
        bare = host.removesuffix(_SVC_SUFFIX).removesuffix(".svc")
        service, _, namespace = bare.partition(".")
        if service and namespace and "." not in namespace:
            forms.append(f"{namespace}/{service}")
    return list(dict.fromkeys(forms))
