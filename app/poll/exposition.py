"""A Prometheus text-format (0.0.4) parser fast enough for a large mesh's ztunnel.

`prometheus_client.parser` spends ~100 µs per ztunnel sample (scanning every character of two
dozen quoted labels). A ztunnel exposition is the same few thousand series, scrape after
scrape, with only the numbers changing, so `ExpositionParser` keys a cache on the raw series text
(`name{labels}`): a line seen before costs a slice, a dict lookup and a `float()`. Label sets are
parsed once and shared (read-only mappings) by every later sample of that series.

Agreement with `prometheus_client.parser.text_string_to_metric_families` on every sample of the
fixtures and of generated expositions is a property test (tests/poll/test_exposition.py).
Not supported (ztunnel never prints them): UTF-8 quoted metric/label names, exemplars.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import NamedTuple

from app.hot_path import BoundedMemo

_EMPTY: Mapping[str, str] = MappingProxyType({})
_ESCAPES = {"\\": "\\", "n": "\n", '"': '"'}


class ExpositionError(ValueError):
    """The text is not Prometheus text format; carries the 1-based line number."""

    def __init__(self, line_no: int, message: str) -> None:
        super().__init__(f"line {line_no}: {message}")
        self.line_no = line_no


class Sample(NamedTuple):
    name: str
    labels: Mapping[str, str]
    value: float
    timestamp_s: float | None
    # `name{labels}` exactly as printed: identifies the series on this target.
    series: str


class _Series(NamedTuple):
    name: str
    labels: Mapping[str, str]


# One remembered line: (text up to the value, metric name or None for a comment/blank line,
# labels, whether `keep` accepts it, whether the text ends with '}').
_Entry = tuple[str, str | None, Mapping[str, str], bool, bool]


_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")


def _check_name(name: str, what: str) -> None:
    pattern = _LABEL_NAME if what == "label name" else _METRIC_NAME
    if not pattern.match(name):
        raise ValueError(f"invalid {what} {name!r}")


def parse_label_text(text: str) -> dict[str, str]:
    """Parse the inside of `{...}`: `a="x",b="y\\n"` (a trailing comma and blanks allowed)."""
    labels: dict[str, str] = {}
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            return labels
        eq = text.find("=", i)
        if eq < 0:
            raise ValueError(f"label without value in {text!r}")
        name = text[i:eq].strip()
        _check_name(name, "label name")
        if name.startswith("__") and name != "__name__":
            # prometheus_client rejects reserved names; keep the same rule.
            raise ValueError(f"reserved label name {name!r}")
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] != '"':
            raise ValueError(f"label {name!r} value is not quoted")
        i += 1
        chunks: list[str] = []
        start = i
        while True:
            j = text.find('"', i)
            k = text.find("\\", i, j if j >= 0 else n)
            if k >= 0:
                if k + 1 >= n or text[k + 1] not in _ESCAPES:
                    # Text format: only \\ \" \n are escapes; any other backslash is literal.
                    chunks.append(text[start : k + 1])
                    i = start = k + 1
                    continue
                chunks.append(text[start:k])
                chunks.append(_ESCAPES[text[k + 1]])
                i = start = k + 2
                continue
            if j < 0:
                raise ValueError(f"unterminated value of label {name!r}")
            chunks.append(text[start:j])
            i = j + 1
            break
        if name in labels:
            raise ValueError(f"duplicate label {name!r}")
        labels[name] = "".join(chunks)
        while i < n and text[i] in " \t":
            i += 1
        if i < n:
            if text[i] != ",":
                raise ValueError(f"expected ',' after label {name!r}")
            i += 1


def _parse_number(text: str) -> float:
    # Go's ParseFloat spellings Prometheus accepts; Python's float() also takes "infinity" and
    # "1_000", which the text format does not.
    if "_" in text:
        raise ValueError(f"invalid number {text!r}")
    return float(text)


class ExpositionParser:
    """Parses expositions of one target, remembering what it saw for the next call.

    Two caches make the steady state cheap. A dict maps series text → (name, labels), so a label
    set is parsed once. A template remembers the previous exposition's line layout: ztunnel
    prints the same series in the same order scrape after scrape (prometheus-client's `Family`
    is a hash map iterated in a stable order), so each line is first compared in place
    (`str.startswith` at an offset, no copy) with the line expected there; only a mismatch
    takes the general path. Either way the result is the same; only the speed differs.

    `keep` selects metric names (None = all). The series cache is bounded by `max_series`
    (cleared when full). Instances are not thread-safe: use one per target.
    """

    def __init__(
        self, keep: Callable[[str], bool] | None = None, max_series: int = 200_000
    ) -> None:
        self._keep = keep
        self._cache: BoundedMemo[str, _Series] = BoundedMemo(max_series)
        self._template: list[_Entry] = []

    def __len__(self) -> int:
        return len(self._cache)

    def parse(self, text: str) -> list[Sample]:
        out: list[Sample] = []
        append = out.append
        template = self._template
        # Copied only from the first line that differs from the previous exposition.
        new_template: list[_Entry] | None = None
        expected = len(template)
        n, pos, i = len(text), 0, 0
        find, startswith, new_sample = text.find, text.startswith, _new_sample
        while pos < n:
            if i < expected:
                key, name, labels, kept, labelled = entry = template[i]
                if startswith(key, pos):
                    after = pos + len(key)
                    end = find("\n", after)
                    if end < 0:
                        end = n
                    if name is None:
                        ok = end == after
                    else:
                        rest = text[after:end]
                        # The key must end where the general path would cut the line: a
                        # labelled key is followed by no further '}', a bare name by a blank.
                        ok = "}" not in rest and (labelled or rest[:1] in (" ", "\t"))
                    if ok:
                        if new_template is not None:
                            new_template.append(entry)
                        i += 1
                        pos = end + 1
                        if kept and name is not None:
                            # Hot path: a bare value. float() takes the text format's spellings
                            # (NaN, +Inf, -Inf) and surrounding blanks; "1_0" it would take too.
                            try:
                                if "_" in rest:
                                    raise ValueError
                                value = float(rest)
                            except ValueError:
                                _append_sample(append, name, labels, key, rest, i)
                            else:
                                append(new_sample(Sample, (name, labels, value, None, key)))
                        continue
            if new_template is None:
                new_template = template[:i]
            end = find("\n", pos)
            if end < 0:
                end = n
            line_no = i + 1
            entry = self._read_line(text[pos:end], line_no)
            new_template.append(entry)
            i += 1
            key, name, labels, kept, _ = entry
            if name is not None and kept:
                _append_sample(append, name, labels, key, text[pos + len(key) : end], line_no)
            pos = end + 1
        if new_template is not None:
            self._template = new_template
        elif i < expected:
            self._template = template[:i]
        return out

    def _read_line(self, raw: str, line_no: int) -> _Entry:
        line = raw.strip()
        if not line or line[0] == "#":
            return raw, None, _EMPTY, False, False
        close = raw.rfind("}")
        if close >= 0:
            key = raw[: close + 1]
        else:
            lead = len(raw) - len(raw.lstrip())
            cut = _first_blank(raw, lead)
            if cut < 0:
                raise ExpositionError(line_no, f"no value: {line[:80]!r}")
            key = raw[:cut]
        series_text = key.strip()
        series = self._cache.get(series_text)
        if series is None:
            try:
                series = _parse_series(series_text)
            except ValueError as exc:
                raise ExpositionError(line_no, str(exc)) from None
            self._cache.set(series_text, series)
        kept = self._keep is None or self._keep(series.name)
        return key, series.name, series.labels, kept, key[-1] == "}"


# `Sample(...)` without the generated `__new__`'s Python frame: `_new_sample(Sample, values)`
# (steady parse 20% faster, bench/poll.py).
_new_sample = tuple.__new__


def _append_sample(
    append: Callable[[Sample], None],
    name: str,
    labels: Mapping[str, str],
    key: str,
    rest: str,
    line_no: int,
) -> None:
    fields = rest.split()
    try:
        if len(fields) == 1:
            append(_new_sample(Sample, (name, labels, _parse_number(fields[0]), None, key)))
        elif len(fields) == 2:
            ts = _parse_number(fields[1])
            if not math.isfinite(ts):
                raise ValueError(f"invalid timestamp {fields[1]!r}")
            value = _parse_number(fields[0])
            append(_new_sample(Sample, (name, labels, value, ts / 1000, key)))
        else:
            raise ValueError(f"expected value [timestamp], got {rest.strip()[:80]!r}")
    except ValueError as exc:
        raise ExpositionError(line_no, str(exc)) from None


def _first_blank(line: str, start: int) -> int:
    for i in range(start, len(line)):
        if line[i] in " \t":
            return i
    return -1


def _parse_series(series_text: str) -> _Series:
    brace = series_text.find("{")
    if brace < 0:
        name = series_text.strip()
        _check_name(name, "metric name")
        return _Series(name, _EMPTY)
    if not series_text.endswith("}"):
        raise ValueError(f"unbalanced braces in {series_text[:80]!r}")
    name = series_text[:brace].strip()
    _check_name(name, "metric name")
    labels = parse_label_text(series_text[brace + 1 : -1])
    if "__name__" in labels:
        raise ValueError("metric name given twice")
    return _Series(name, MappingProxyType(labels) if labels else _EMPTY)


def parse_exposition(text: str) -> list[Sample]:
    """One-shot parse (no cache reuse); prefer a long-lived `ExpositionParser` per target."""
    return ExpositionParser().parse(text)
