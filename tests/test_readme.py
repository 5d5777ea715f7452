"""The README documents every setting and every CLI command, and nothing that does not exist."""

from __future__ import annotations

import re
from pathlib import Path

from app.cli import build_parser
from app.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_configuration_table_lists_exactly_the_settings() -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(MESHSTITCH_[A-Z0-9_]+)` \|", section, flags=re.M))
    expected = {f"MESHSTITCH_{name.upper()}" for name in Settings.model_fields}
    assert documented == expected


def test_documented_defaults_match_the_settings() -> None:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for name, field in Settings.model_fields.items():
        row = re.search(rf"^\| `MESHSTITCH_{name.upper()}` \| ([^|]+) \|", section, flags=re.M)
        assert row is not None, name
        default = field.default
        shown = row.group(1).strip()
        if (isinstance(default, str) and default) or (
            isinstance(default, (int, float)) and not isinstance(default, bool)
        ):
            assert shown == f"`{default}`", name


def test_every_cli_command_is_documented_and_only_those() -> None:
    section = README.split("## Command line", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `meshstitch (\w+)", section, flags=re.M))
    subparsers = next(a for a in build_parser()._actions if a.dest == "command")
    assert documented == set(subparsers.choices)  # type: ignore[arg-type]


def test_quick_start_has_exactly_the_two_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = quick.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make demo", "make test"]


def test_api_table_names_every_route_of_openapi_yaml() -> None:
    import yaml

    section = README.split("## API at a glance", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`(?:GET|POST) ([^`]+)`", section))
    documented |= set(re.findall(r", `(/grafana/[\w-]+)`", section))
    spec = yaml.safe_load((Path(__file__).resolve().parents[1] / "openapi.yaml").read_text())
    assert set(spec["paths"]) <= documented, set(spec["paths"]) - documented
