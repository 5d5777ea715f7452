from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from app.poll.exposition import ExpositionError, ExpositionParser, parse_exposition
from tests.conftest import DATA
from tests.poll.fake_ztunnel import synthetic_exposition


def reference(text: str) -> list[tuple[str, dict[str, str], float, float | None]]:
    return [
        (s.name, dict(s.labels), float(s.value), s.timestamp)
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def ours(
    text: str, parser: ExpositionParser | None = None
) -> list[tuple[str, dict[str, str], float, float | None]]:
    samples = (parser or ExpositionParser()).parse(text)
    return [(s.name, dict(s.labels), s.value, s.timestamp_s) for s in samples]


def same(a: list, b: list) -> bool:  # type: ignore[type-arg]
    def norm(rows: list) -> list:  # type: ignore[type-arg]
        return [(n, sorted(lb.items()), "nan" if math.isnan(v) else v, t) for n, lb, v, t in rows]

    return sorted(norm(a), key=repr) == sorted(norm(b), key=repr)


def test_agrees_with_prometheus_client_on_the_real_sample() -> None:
    text = (DATA / "ztunnel" / "ztunnel-metrics-sample.prom").read_text()
    assert len(ours(text)) == 3
    assert same(ours(text), reference(text))


def test_agrees_on_a_synthetic_ztunnel_exposition_first_and_steady() -> None:
    text = synthetic_exposition(400)
    parser = ExpositionParser()
    assert same(ours(text, parser), reference(text))
    assert same(ours(text, parser), reference(text))  # template path
    changed = text.replace("} 1", "} 7").replace("istio_build{", "istio_build2{")
    assert same(ours(changed, parser), reference(changed))


def test_steady_state_shares_label_objects() -> None:
    parser = ExpositionParser()
    text = synthetic_exposition(8)
    first, second = parser.parse(text), parser.parse(text)
    assert all(
        a.labels is b.labels and a.series is b.series for a, b in zip(first, second, strict=True)
    )


@pytest.mark.parametrize(
    "text",
    [
        "<html>{{{</html>\n",
        'm{a="1" 3\n',
        "m\n",
        'm{a="1"} 1 2 3\n',
        "m{a=1} 2\n",
        "m 1_0\n",
        "9m 1\n",
    ],
)
def test_garbage_is_an_exposition_error(text: str) -> None:
    with pytest.raises(ExpositionError):
        parse_exposition(text)


names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,8}", fullmatch=True)
label_names = names.filter(lambda n: not n.startswith("__"))
values = st.text(st.sampled_from([*list('ab\\"\n{},= x'), "é"]), max_size=8)
numbers = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from(["NaN", "+Inf", "-Inf", "1e3", "-0.5"]),
)


def _escape(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@st.composite
def expositions(draw: st.DrawFn) -> str:
    lines = []
    for i in range(draw(st.integers(1, 6))):
        name = draw(names) + f"_{i}"
        kind = draw(st.sampled_from(["counter", "gauge", "untyped", None]))
        if draw(st.booleans()):
            lines.append(f"# HELP {name} some help")
        if kind:
            lines.append(f"# TYPE {name} {kind}")
        sample_name = name + ("_total" if kind == "counter" else "")
        for _ in range(draw(st.integers(1, 3))):
            labels = draw(st.dictionaries(label_names, values, max_size=4))
            body = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
            ts = f" {draw(st.integers(0, 2**40))}" if draw(st.booleans()) else ""
            head = f"{sample_name}{{{body}}}" if labels or draw(st.booleans()) else sample_name
            lines.append(f"{head} {draw(numbers)}{ts}")
        if draw(st.booleans()):
            lines.append("# a comment")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expositions())
def test_property_agrees_with_prometheus_client(text: str) -> None:
    parser = ExpositionParser()
    assert same(ours(text, parser), reference(text))
    assert same(ours(text, parser), reference(text))
