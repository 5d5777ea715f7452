"""`meshstitch demo`: serve on the embedded default and say where to look.

The simulated ambient mesh that feeds it is tracked in issue 7; until then the demo serves an
empty graph so the quick start works end to end.
"""

from __future__ import annotations

from app.settings import Settings


def demo_urls(settings: Settings) -> list[str]:
    host = "127.0.0.1" if settings.host in {"0.0.0.0", "::"} else settings.host
    base = f"http://{host}:{settings.http_port}"
    return [f"{base}/healthz", f"{base}/readyz", f"{base}/docs", f"{base}/openapi.json"]


def run_demo(settings: Settings) -> int:
    from app.cli import _serve

    print("meshstitch demo: serving on the embedded SQLite default")
    print(f"  database: {settings.database_url}")
    for url in demo_urls(settings):
        print(f"  {url}")
    print("  OTLP/gRPC: " + f"{settings.host}:{settings.grpc_port}" + "    Ctrl-C to stop")
    return _serve(settings)
