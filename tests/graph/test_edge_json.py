"""The edge's JSON: the builder generated from the response models gives exactly their keys, in
their order, and output they validate."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from app.graph.edge_json import EdgeOut, builder_expression, edge_json
from app.graph.model import Exemplar, Graph, GraphEdge, L4Stats, L7Stats


def _keys_follow(model: type[BaseModel], value: dict[str, Any]) -> None:
    assert list(value) == [info.alias or name for name, info in model.model_fields.items()]
    for name, info in model.model_fields.items():
        name = info.alias or name
        nested = getattr(info.annotation, "__args__", (info.annotation,))
        for candidate in (info.annotation, *nested):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                items = value[name] if isinstance(value[name], list) else [value[name]]
                for item in items:
                    if item is not None:
                        _keys_follow(candidate, item)


def test_built_json_has_the_models_keys_and_validates() -> None:
    l7 = L7Stats(10, 1, {"app": 1}, {"200": 9, "503": 1}, 55.0, 1.5, 9.0, 12.0, 2, 1, 0)
    edge = GraphEdge(
        "default/a",
        "default/b",
        "http",
        "default/waypoint",
        l7,
        L4Stats(3, 3, 100, 900, 3, principals=("spiffe://a",)),
        {"paired_spans": 10},
        {"default/c": 0.25, "default/d": 0.75},
        (Exemplar("slowest", "ab" * 16, 12.0, 5, "200"),),
    )
    out = edge_json(edge, Graph({}, [edge], 0, 60))
    EdgeOut.model_validate(out)
    _keys_follow(EdgeOut, out)
    assert out["l7"]["rps"] == round(10 / 60, 4)
    assert out["l4"]["bytes_received"] == 900
    assert out["provenance"]["candidates"][0] == {"source": "default/c", "share": 0.25}
    bare = edge_json(GraphEdge("a/x", "b/y"), Graph({}, [], 0, 60))
    assert bare["l7"] is None and bare["l4"] is None and bare["protocol"] == "tcp"
    EdgeOut.model_validate(bare)


def test_a_key_without_a_source_is_refused() -> None:
    class Incomplete(BaseModel):
        nowhere: int

    with pytest.raises(TypeError, match="nowhere"):
        builder_expression(Incomplete)
