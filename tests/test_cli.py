"""The command line, run as a user runs it: `python app.py ...` in a subprocess (SQLite).

Errors a user can cause print one line starting with "error:" on stderr and exit non-zero;
imports print a one-line summary on stdout.
"""
from __future__ import annotations

import csv
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parent.parent
PACKAGE_DATA = PROJECT / "data_feeds" / "data"
BOUNDARY = PROJECT / "tests" / "data" / "boundaries" / "310107.geojson"
SUBCOMMANDS = ["demo", "serve", "init-db", "import-grids", "import-catalog", "import-departments", "import-workers"]
SUMMARY = re.compile(r"^(departments|catalogue|grids|workers): \d+ added, \d+ updated$")
# Settings the command reads from the environment: removed so the machine's own cannot leak in.
SETTING_NAMES = ("DATABASE_URL", "REDIS_URL", "PORT", "HOST", "SECRET_KEY", "TILE_URL")


def run_app(tmp_path: Path, *args, **env_overrides) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES and not k.startswith("GRIDOPS_")}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'grid.db'}", GRIDOPS_VAR_DIR=str(tmp_path / "var"))
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "app.py", *map(str, args)], cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120
    )


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def summary_line(result: subprocess.CompletedProcess) -> str:
    line = ok(result).stdout.strip().splitlines()[-1]
    assert SUMMARY.match(line), line
    return line


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The single stderr line of a failed command."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error:")
    return lines[0]


def dump_db(tmp_path: Path) -> dict:
    """Every table's rows in the SQLite file."""
    with sqlite3.connect(tmp_path / "grid.db") as connection:
        tables = [name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {table: sorted(map(repr, connection.execute(f'SELECT * FROM "{table}"'))) for table in tables}


def basic_grid_codes(tmp_path: Path, n: int = 3) -> list[str]:
    with sqlite3.connect(tmp_path / "grid.db") as connection:
        return [code for (code,) in connection.execute("SELECT code FROM grids WHERE level = 4 ORDER BY code LIMIT ?", (n,))]


def bad_catalogue(tmp_path: Path, line: int) -> Path:
    """The real catalogue with handle_limit '2x' on the detail row at physical ``line``."""
    with (PACKAGE_DATA / "catalogue.csv").open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows, fields = list(reader), reader.fieldnames
    assert rows[line - 2]["handle_limit"], "must be a detail row"
    rows[line - 2]["handle_limit"] = "2x"
    path = tmp_path / "bad_catalogue.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


def bad_grids(tmp_path: Path) -> Path:
    """The real 普陀区 file with a Point for a geometry."""
    document = json.loads(BOUNDARY.read_text(encoding="utf-8"))
    document["features"][0]["geometry"] = {"type": "Point", "coordinates": [121.39, 31.25]}
    path = tmp_path / "bad.geojson"
    path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------


def test_top_level_help(tmp_path):
    result = ok(run_app(tmp_path, "--help"))
    for command in SUBCOMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_subcommand_help(tmp_path, command):
    result = ok(run_app(tmp_path, command, "--help"))
    assert result.stdout.startswith("usage: python app.py " + command)


def test_init_db_twice(tmp_path):
    first = ok(run_app(tmp_path, "init-db"))
    second = ok(run_app(tmp_path, "init-db"))
    assert "database ready" in first.stdout and "database ready" in second.stdout
    assert "grids" in dump_db(tmp_path)


def test_imports_in_sequence(tmp_path):
    ok(run_app(tmp_path, "init-db"))
    assert summary_line(run_app(tmp_path, "import-departments", PACKAGE_DATA / "departments.csv")) == "departments: 23 added, 0 updated"
    assert summary_line(run_app(tmp_path, "import-catalog", PACKAGE_DATA / "catalogue.csv")) == "catalogue: 325 added, 0 updated"
    grids = summary_line(
        run_app(
            tmp_path, "import-grids", BOUNDARY, "--subdivide", "--towns", PACKAGE_DATA / "towns.csv", "--communities", "6", "--grids", "12"
        )
    )
    assert grids.startswith("grids: ") and grids.endswith(" added, 0 updated")
    codes = basic_grid_codes(tmp_path)
    workers = tmp_path / "workers.csv"
    workers.write_text("id,name,grid,role\n" + "".join(f"W{i},网格员{i},{code},网格员\n" for i, code in enumerate(codes)), encoding="utf-8")
    assert summary_line(run_app(tmp_path, "import-workers", workers)) == "workers: 3 added, 0 updated"
    db = dump_db(tmp_path)
    assert (len(db["departments"]), len(db["categories"]), len(db["workers"])) == (23, 325, 3)
    assert len(db["grids"]) == int(grids.split()[1])


def test_a_bad_catalogue_is_refused_in_one_line(tmp_path):
    ok(run_app(tmp_path, "import-departments", PACKAGE_DATA / "departments.csv"))
    before = dump_db(tmp_path)
    path = bad_catalogue(tmp_path, 40)
    error = one_error_line(run_app(tmp_path, "import-catalog", path))
    assert str(path) in error and "line 40" in error and "'handle_limit'" in error and "'2x'" in error
    assert dump_db(tmp_path) == before


def test_a_bad_grids_file_is_refused_in_one_line(tmp_path):
    ok(run_app(tmp_path, "import-departments", PACKAGE_DATA / "departments.csv"))
    before = dump_db(tmp_path)
    path = bad_grids(tmp_path)
    error = one_error_line(run_app(tmp_path, "import-grids", path, "--subdivide", "--towns", PACKAGE_DATA / "towns.csv"))
    assert str(path) in error and "feature 1" in error and "'geometry'" in error
    assert dump_db(tmp_path) == before


def test_an_unreachable_database_is_one_line(tmp_path):
    result = run_app(tmp_path, "init-db", DATABASE_URL="postgresql://nobody@127.0.0.1:1/none")
    error = one_error_line(result)
    assert "127.0.0.1" in error


def test_an_unreachable_database_hides_the_password(tmp_path):
    error = one_error_line(run_app(tmp_path, "init-db", DATABASE_URL="postgresql://nobody:s3cret-pw@127.0.0.1:1/none"))
    assert "127.0.0.1" in error and "s3cret-pw" not in error


def test_a_malformed_database_url_is_one_line(tmp_path):
    error = one_error_line(run_app(tmp_path, "init-db", DATABASE_URL="notaurl"))
    assert "notaurl" in error and "DATABASE_URL" in error


@pytest.mark.parametrize("name, value", [("PORT", "abc"), ("GRIDOPS_TZ", "Mars/Base")])
def test_a_bad_setting_is_one_line(tmp_path, name, value):
    error = one_error_line(run_app(tmp_path, "init-db", **{name: value}))
    assert name in error and value in error
