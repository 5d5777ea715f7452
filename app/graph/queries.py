"""Read-side queries behind the REST and Grafana routes: the only place that combines
repositories (store) with graph rules (neighbourhood, attribution, triage).

Route handlers call these methods (in a thread pool) and only pick an output format.
"""

from __future__ import annotations


class UnknownNode(LookupError):
    """A node named in a query does not exist in the window; carries the closest known names."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name, self.suggestions = name, suggestions
