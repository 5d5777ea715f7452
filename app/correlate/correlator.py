"""Spans → exactly one `L7Observation` per request: pairing, waypoint collapse, attribution.

Implements `app.pipeline.Correlator`. Rules (DESIGN.md, "Correlation rules"):

- Waypoint span W: target from its `upstream_cluster`, `via` = the waypoint's node id. Source, in
  order: its parent span when that is an app CLIENT span (PARENT_SPAN; the client span is consumed,
  not counted again); the `istio.source_*` tags Istio ≥ 1.29 waypoints write (PEER_TAGS);
  `peer.address` → workload via the `WorkloadDirectory` (PEER_ADDRESS); else
  UNATTRIBUTED with an UNKNOWN source named by evidence (`unknown/<peer IP>` or
  `unknown/caller-of-<svc>.<ns>`), target and via set, so query-time L4 attribution
  (app/graph/attribution.py) can name the caller. A W with a parent waits (bounded) for it; a
  root W resolves at once.
- An app SERVER span whose parent is a waypoint span, and a proxy span whose parent is a waypoint
  span (Envoy's upstream span), is the same request: corroboration, no observation.
- App CLIENT + app SERVER (server.parent == client.span_id): one observation client → server,
  PAIRED_SPANS, with the client's duration (what the caller waited) and end time.
- Unpaired after the wait (or evicted from the full store): CLIENT → the peer named by its best
  attribute (PEER_ATTRIBUTE); SERVER → an UNKNOWN caller named by its address (UNATTRIBUTED, or
  PEER_ADDRESS when the directory knows it); W → as above. All flagged `unpaired=True`, evicted
  ones also `evicted=True`. Root SERVER spans (no parent) and DB client spans (databases send no
  server spans) expect no peer: they resolve at once and are not counted as unpaired.

Keys seen recently are remembered (tombstones, bounded like the store) so that a server span
arriving after its waypoint span, or a second request under one client span, still resolves.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from app.correlate.identity import NodeIdentity
from app.correlate.normalize import (
    SpanNormalizer,
    SpanRole,
    WorkloadDirectory,
    address_of,
    unknown_caller,
)
from app.correlate.pairing import PairingStore
from app.correlate.status import span_protocol, span_status
from app.domain import Endpoint, L7Observation, NodeKind, Provenance, Span
from app.hot_path import fast_constructor

__all__ = ["CorrelatorStats", "SpanCorrelator", "WorkloadDirectory"]

# Tombstone value meaning "this key is a waypoint span's own span id".
_WAYPOINT_SPAN = Endpoint("", "", kind=NodeKind.WAYPOINT)
# Tombstone: "this gateway span's upstream span arrived; it, not the gateway span, is the hop".
_HOP_TAKEN = Endpoint("", "", kind=NodeKind.GATEWAY)
_AS_CLIENT = (SpanRole.CLIENT, SpanRole.GATEWAY_HOP)

Waiting = tuple[SpanRole, Span]

# `L7Observation(...)` at about 1/3 of the cost: the frozen dataclass's `__init__` sets each of
# its 16 slots through `object.__setattr__` (bench/correlate.py: 12-18% of `correlate`).
_observation = fast_constructor(L7Observation)


@dataclass(slots=True)
class CorrelatorStats:
    skipped: int = 0  # INTERNAL / unspecified spans
    corroborated: int = 0  # spans folded into another span's observation
    collisions: int = 0  # a second span waiting on an occupied key; resolved at once


class SpanCorrelator:
    def __init__(
        self,
        wait_s: float,
        max_items: int,
        bucket_s: int,
        waypoint_names: frozenset[str] = frozenset(),
        directory: WorkloadDirectory | None = None,
        identity: NodeIdentity | None = None,
    ) -> None:
        wait_ns = int(wait_s * 1e9)
        self._pending: PairingStore[Waiting] = PairingStore(wait_ns, max_items)
        self._seen: PairingStore[Endpoint] = PairingStore(wait_ns, max_items)
        self.identity = identity if identity is not None else NodeIdentity(waypoints=waypoint_names)
        self._norm = SpanNormalizer(waypoint_names, directory, self.identity)
        self._canonical = self.identity.canonical
        self.bucket_s = bucket_s  # lateness is the aggregator's call (aggregate.py)
        self.stats = CorrelatorStats()

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def evicted(self) -> int:
        return self._pending.evicted

    @property
    def expired(self) -> int:
        return self._pending.expired

    # ---- Correlator protocol -------------------------------------------------------------------
    def add(self, spans: Iterable[Span], now_ns: int) -> list[L7Observation]:
        out: list[L7Observation] = []
        role_of = self._norm.role
        for span in spans:
            role = role_of(span)
            if role is SpanRole.WAYPOINT:
                self._add_waypoint(span, now_ns, out)
            elif role is SpanRole.CLIENT:
                self._add_client(span, now_ns, out)
            elif role is SpanRole.SERVER:
                self._add_server(span, now_ns, out)
            else:
                self.stats.skipped += 1
        return out

    def expire(self, now_ns: int) -> list[L7Observation]:
        self._seen.expire(now_ns)
        return [self._unpaired(entry, evicted=False) for entry in self._pending.expire(now_ns)]

    def drain(self) -> list[L7Observation]:
        self._seen.drain()
        return [self._unpaired(entry, evicted=False) for entry in self._pending.drain()]

    # ---- arrival --------------------------------------------------------------------------------
    def _add_waypoint(self, w: Span, now_ns: int, out: list[L7Observation]) -> None:
        own = w.trace_id + w.span_id
        if self._pending.pop(own) is not None:  # its server or inner proxy span came first
            self.stats.corroborated += 1
        self._seen.put(own, _WAYPOINT_SPAN, now_ns)
        if not w.parent_span_id:
            out.append(self._waypoint_obs(w, None))
            return
        key = w.trace_id + w.parent_span_id
        seen = self._seen.get(key)
        if seen is _WAYPOINT_SPAN:  # Envoy's upstream span under the waypoint's own span
            self.stats.corroborated += 1
            return
        if seen is not None:  # the caller's client span, already consumed by a sibling
            out.append(self._waypoint_obs(w, seen))
            return
        waiting = self._pending.get(key)
        if waiting is None:
            self._wait(key, (SpanRole.WAYPOINT, w), now_ns, out)
        elif waiting[0] in _AS_CLIENT:
            self._pending.pop(key)
            source = self._norm.app_endpoint(waiting[1])
            self._seen.put(key, source, now_ns)
            out.append(self._waypoint_obs(w, source))
        else:
            self.stats.collisions += 1
            out.append(self._waypoint_obs(w, None, unpaired=True))

    def _add_client(self, c: Span, now_ns: int, out: list[L7Observation]) -> None:
        if "db.system" in c.attributes:
            out.append(self._client_obs(c, unpaired=False))
            return
        if c.parent_span_id and self._norm.is_proxy(c):
            # A gateway's upstream span: it is the hop its downstream span would stand in for.
            parent = c.trace_id + c.parent_span_id
            hop = self._pending.get(parent)
            if hop is not None and hop[0] is SpanRole.GATEWAY_HOP:
                self._pending.pop(parent)
            else:
                self._seen.put(parent, _HOP_TAKEN, now_ns)
        key = c.trace_id + c.span_id
        waiting = self._pending.pop(key)
        if waiting is None:
            self._wait(key, (SpanRole.CLIENT, c), now_ns, out)
            return
        role, other = waiting
        if role is SpanRole.WAYPOINT:
            source = self._norm.app_endpoint(c)
            self._seen.put(key, source, now_ns)
            out.append(self._waypoint_obs(other, source))
        elif role is SpanRole.SERVER:
            out.append(self._paired_obs(c, other))
        else:  # the same client span twice: keep the first
            self._pending.put(key, waiting, now_ns)
            self.stats.collisions += 1

    def _add_server(self, s: Span, now_ns: int, out: list[L7Observation]) -> None:
        if self._norm.is_gateway_with_upstream(s):
            own = s.trace_id + s.span_id
            if self._seen.get(own) is _HOP_TAKEN:
                self.stats.corroborated += 1
            else:  # wait, as the client of the hop, for the callee's span or the upstream span
                self._wait(own, (SpanRole.GATEWAY_HOP, s), now_ns, out)
        if not s.parent_span_id:
            out.append(self._server_obs(s, unpaired=False))
            return
        key = s.trace_id + s.parent_span_id
        if self._seen.get(key) is not None:  # behind a waypoint span (or its consumed caller)
            self.stats.corroborated += 1
            return
        waiting = self._pending.get(key)
        if waiting is None:
            self._wait(key, (SpanRole.SERVER, s), now_ns, out)
        elif waiting[0] in _AS_CLIENT:
            self._pending.pop(key)
            out.append(self._paired_obs(waiting[1], s))
        else:
            self.stats.collisions += 1
            out.append(self._server_obs(s, unpaired=True))

    def _wait(self, key: bytes, entry: Waiting, now_ns: int, out: list[L7Observation]) -> None:
        evicted = self._pending.put(key, entry, now_ns)
        if evicted is not None:
            out.append(self._unpaired(evicted, evicted=True))

    def _unpaired(self, entry: Waiting, *, evicted: bool) -> L7Observation:
        role, span = entry
        if role is SpanRole.WAYPOINT:
            return self._waypoint_obs(span, None, unpaired=True, evicted=evicted)
        if role is SpanRole.CLIENT:
            return self._client_obs(span, unpaired=True, evicted=evicted)
        if role is SpanRole.GATEWAY_HOP:  # no upstream span and no instrumented callee: expected
            return self._client_obs(span, unpaired=False, evicted=evicted)
        return self._server_obs(span, unpaired=True, evicted=evicted)

    # ---- observations ---------------------------------------------------------------------------
    def _waypoint_obs(
        self, w: Span, source: Endpoint | None, *, unpaired: bool = False, evicted: bool = False
    ) -> L7Observation:
        """`_waypoint_obs_plain` with the target and via memoised (`SpanNormalizer.waypoint_ends`;
        bench/ingest.py --stages, correlate); tests/correlate/test_waypoint_ends.py holds the two
        equal."""
        norm = self._norm
        ends = norm.waypoint_ends(w)
        if ends is None:
            return self._waypoint_obs_plain(w, source, unpaired=unpaired, evicted=evicted)
        canonical = self._canonical
        attrs = w.attributes
        target = norm.refined_target(w, ends) if ends.refine else ends.target
        if source is not None:
            source = canonical(source)
            provenance = Provenance.PARENT_SPAN
        elif (
            "istio.source_namespace" in attrs  # else no caller by tags
            and (tagged := norm.caller_by_peer_tags(attrs)) is not None
        ):
            source, provenance = canonical(tagged), Provenance.PEER_TAGS
        else:
            address = address_of(attrs.get("peer.address"))
            found = norm.caller_by_address(address)
            if found is not None and found.kind is not NodeKind.WAYPOINT:
                source, provenance = canonical(found), Provenance.PEER_ADDRESS
            else:
                source, provenance = unknown_caller(address, target), Provenance.UNATTRIBUTED
        code, cause = span_status(attrs, w.status_error)
        return _observation(
            source,
            target,
            w.end_ns,
            w.duration_ms,
            w.trace_id,
            w.span_id,
            w.parent_span_id,
            span_protocol(attrs),
            code,
            cause,
            ends.via,
            provenance,
            unpaired=unpaired,
            evicted=evicted,
        )

    def _waypoint_obs_plain(
        self, w: Span, source: Endpoint | None, *, unpaired: bool = False, evicted: bool = False
    ) -> L7Observation:
        """The waypoint rules as written (the reference for `_waypoint_obs`)."""
        norm, canonical = self._norm, self._canonical
        attrs = w.attributes
        raw_target = norm.waypoint_target(w)
        via = norm.waypoint_via(w, raw_target)
        target = canonical(raw_target)
        if source is not None:
            source = canonical(source)
            provenance = Provenance.PARENT_SPAN
        elif (tagged := norm.caller_by_peer_tags(attrs)) is not None:
            source, provenance = canonical(tagged), Provenance.PEER_TAGS
        else:
            address = address_of(attrs.get("peer.address"))
            found = norm.caller_by_address(address)
            if found is not None and found.kind is not NodeKind.WAYPOINT:
                source, provenance = canonical(found), Provenance.PEER_ADDRESS
            else:
                source, provenance = unknown_caller(address, target), Provenance.UNATTRIBUTED
        code, cause = span_status(attrs, w.status_error)
        return _observation(
            source,
            target,
            w.end_ns,
            w.duration_ms,
            w.trace_id,
            w.span_id,
            w.parent_span_id,
            span_protocol(attrs),
            code,
            cause,
            via,
            provenance,
            unpaired=unpaired,
            evicted=evicted,
        )

    def _paired_obs(self, c: Span, s: Span) -> L7Observation:
        client_code, client_cause = span_status(c.attributes, c.status_error)
        server_code, server_cause = span_status(s.attributes, s.status_error)
        return _observation(
            self._canonical(self._norm.app_endpoint(c)),
            self._canonical(self._norm.app_endpoint(s)),
            c.end_ns,
            c.duration_ms,
            c.trace_id,
            c.span_id,
            c.parent_span_id,
            span_protocol(c.attributes),
            server_code or client_code,
            client_cause or server_cause,
            "",
            Provenance.PAIRED_SPANS,
        )

    def _client_obs(self, c: Span, *, unpaired: bool, evicted: bool = False) -> L7Observation:
        source = self._norm.app_endpoint(c)
        code, cause = span_status(c.attributes, c.status_error)
        return _observation(
            self._canonical(source),
            self._canonical(self._norm.client_peer(c, source)),
            c.end_ns,
            c.duration_ms,
            c.trace_id,
            c.span_id,
            c.parent_span_id,
            span_protocol(c.attributes),
            code,
            cause,
            "",
            Provenance.PEER_ATTRIBUTE,
            unpaired=unpaired,
            evicted=evicted,
        )

    def _server_obs(self, s: Span, *, unpaired: bool, evicted: bool = False) -> L7Observation:
        target = self._canonical(self._norm.app_endpoint(s))
        source, provenance = self._norm.server_caller(s, target)
        code, cause = span_status(s.attributes, s.status_error)
        return _observation(
            self._canonical(source),
            target,
            s.end_ns,
            s.duration_ms,
            s.trace_id,
            s.span_id,
            s.parent_span_id,
            span_protocol(s.attributes),
            code,
            cause,
            "",
            provenance,
            unpaired=unpaired,
            evicted=evicted,
        )
