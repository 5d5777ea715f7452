"""A JSON response encoded by orjson: the graph and listing bodies (hundreds of edges) took
~4 ms per /graph in the standard library's encoder, ~half of a cached neighbourhood's answer."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


class FastJSONResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        # Values are finite (app/graph/edge_json.py `finite`) and keys strings, as json.dumps
        # requires of them with allow_nan=False; orjson would write NaN as null, not fail.
        return orjson.dumps(content)
