"""The one bearer-token check: REST and /grafana (MESHSTITCH_API_TOKEN), OTLP (MESHSTITCH_OTLP_TOKEN).

Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac

WRONG_TOKEN = "missing or wrong bearer token"


def bearer_matches(header_value: str | None, token: str) -> bool:
    """Whether an `Authorization` value is `Bearer <token>` (the scheme in any case, RFC 7235)."""
    scheme, _, presented = (header_value or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())
