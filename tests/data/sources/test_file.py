"""File sources: CSV, Parquet, JSON and NDJSON read by DuckDB in place, with useful errors."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import duckdb
import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conveyor.data.sources import FileTableSource, wrap_duckdb_errors
from conveyor.errors import SourceError
from conveyor.spec import FileSource

CSV = 'id,name,score\n1,"Smith, Jane",1.5\n2,"say ""hi""",\n3,,2.25\n'


def source(path: str, project: Path, name: str = "things", **config: Any) -> FileTableSource:
    return FileTableSource(name, FileSource(type="file", path=path, **config), project_root=project)


def rows(con: duckdb.DuckDBPyConnection, name: str, order: str = "1") -> list[tuple[Any, ...]]:
    return con.execute(f'SELECT * FROM "{name}" ORDER BY {order}').fetchall()


def types(con: duckdb.DuckDBPyConnection, name: str) -> dict[str, str]:
    return {row[0]: row[1] for row in con.execute(f'DESCRIBE "{name}"').fetchall()}


def test_csv_with_quotes_and_nulls(con, workdir, project):
    (project / "data").mkdir()
    (project / "data" / "things.csv").write_text(CSV)
    source("data/things.csv", project).register(con, workdir)
    assert rows(con, "things") == [
        (1, "Smith, Jane", 1.5),
        (2, 'say "hi"', None),
        (3, None, 2.25),
    ]
    assert types(con, "things") == {"id": "BIGINT", "name": "VARCHAR", "score": "DOUBLE"}


def test_register_creates_a_view_not_a_table(con, workdir, project):
    (project / "things.csv").write_text(CSV)
    source("things.csv", project).register(con, workdir)
    views = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall()
    assert [name for name, _ in views] == ["things"]
    assert "read_csv" in views[0][1]
    assert con.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    assert list(workdir.iterdir()) == []  # nothing staged: DuckDB reads the file itself


def test_parquet(con, workdir, project):
    table = pa.table(
        {
            "id": pa.array([1, 2], pa.int32()),
            "at": pa.array([dt.datetime(2024, 5, 1, 12), None], pa.timestamp("us")),
            "tag": ["a", None],
        }
    )
    pq.write_table(table, project / "events.parquet")
    source("events.parquet", project, name="events").register(con, workdir)
    assert types(con, "events") == {"id": "INTEGER", "at": "TIMESTAMP", "tag": "VARCHAR"}
    assert rows(con, "events") == [(1, dt.datetime(2024, 5, 1, 12), "a"), (2, None, None)]


@pytest.mark.parametrize(
    ("filename", "content", "config"),
    [
        ("a.json", json.dumps([{"id": 1, "v": "x"}, {"id": 2, "v": None}]), {}),
        ("a.ndjson", '{"id": 1, "v": "x"}\n{"id": 2}\n', {}),
        ("a.jsonl", '{"id": 1, "v": "x"}\n{"id": 2, "v": null}\n', {}),
        ("a.txt", '{"id": 1, "v": "x"}\n{"id": 2, "v": null}\n', {"format": "ndjson"}),
        ("a.data", json.dumps([{"id": 1, "v": "x"}, {"id": 2}]), {"format": "json"}),
    ],
)
def test_json_and_ndjson(con, workdir, project, filename, content, config):
    (project / filename).write_text(content)
    source(filename, project, **config).register(con, workdir)
    assert rows(con, "things") == [(1, "x"), (2, None)]


def test_glob_over_parts_in_sorted_order(con, workdir, project):
    parts = project / "parts"
    parts.mkdir()
    for index in (2, 0, 1):
        (parts / f"part-{index}.csv").write_text(f"id,part\n{index * 10},{index}\n")
    (parts / "notes.md").write_text("not data")
    src = source("parts/*.csv", project)
    assert src.files() == [parts / f"part-{index}.csv" for index in range(3)]
    src.register(con, workdir)
    assert con.execute('SELECT part FROM "things"').fetchall() == [(0,), (1,), (2,)]


def test_recursive_glob_and_absolute_path(con, workdir, project, tmp_path):
    nested = tmp_path / "elsewhere" / "a" / "b"
    nested.mkdir(parents=True)
    (nested / "x.csv").write_text("id\n7\n")
    src = source(str(tmp_path / "elsewhere" / "**" / "*.csv"), project)
    assert src.files() == [nested / "x.csv"]
    src.register(con, workdir)
    assert rows(con, "things") == [(7,)]
    source(f"file://{nested / 'x.csv'}", project, name="by_url").register(con, workdir)
    assert rows(con, "by_url") == [(7,)]


def test_memory_url(con, workdir, project):
    fs = fsspec.filesystem("memory")
    root = f"memory://conveyor-test-{uuid.uuid4().hex}"
    fs.pipe(f"{root}/a.csv", b"id,v\n1,a\n")
    fs.pipe(f"{root}/b.csv", b"id,v\n2,b\n")
    try:
        single = source(f"{root}/a.csv", project, name="one")
        assert single.files() == []  # remote: nothing local to hash
        single.register(con, workdir)
        source(f"{root}/*.csv", project, name="both").register(con, workdir)
        assert rows(con, "one") == [(1, "a")]
        assert rows(con, "both") == [(1, "a"), (2, "b")]
        with pytest.raises(SourceError, match=r"source 'gone'.*no file matches.*missing\.csv"):
            source(f"{root}/missing.csv", project, name="gone").register(con, workdir)
    finally:
        fs.rm(root, recursive=True)


def test_options_are_passed_to_the_reader(con, workdir, project):
    (project / "semi.csv").write_text("id;code\n1;007\n2;042\n")
    source("semi.csv", project, options={"delim": ";", "types": {"code": "VARCHAR"}}).register(
        con, workdir
    )
    assert rows(con, "things") == [(1, "007"), (2, "042")]


def test_unknown_option_names_the_option(con, workdir, project):
    (project / "a.csv").write_text(CSV)
    with pytest.raises(SourceError, match=r"source 'things'.*\"delimiterr\"") as caught:
        source("a.csv", project, options={"delimiterr": ";"}).register(con, workdir)
    assert "options:" in str(caught.value)
    assert con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone() == (0,)


def test_option_name_must_be_an_identifier(con, workdir, project):
    (project / "a.csv").write_text(CSV)
    with pytest.raises(SourceError, match=r"option 'x\) --' is not a valid option name"):
        source("a.csv", project, options={"x) --": 1}).register(con, workdir)


def test_missing_file_names_the_path_and_project_root(con, workdir, project):
    with pytest.raises(SourceError) as caught:
        source("data/nope.csv", project).register(con, workdir)
    message = str(caught.value)
    assert "source 'things'" in message
    assert "'data/nope.csv' does not exist" in message
    assert str(project) in message


def test_glob_matching_nothing(con, workdir, project):
    with pytest.raises(SourceError, match=r"source 'things': no file matches 'in/\*\.csv'") as e:
        source("in/*.csv", project).files()
    assert str(project) in str(e.value)


def test_folder_is_not_a_file(con, workdir, project):
    (project / "data").mkdir()
    with pytest.raises(SourceError, match=r"'data' is a folder.*'data/\*\.parquet'"):
        source("data", project).register(con, workdir)


def test_unknown_extension_asks_for_a_format(con, workdir, project):
    (project / "a.dat").write_text(CSV)
    with pytest.raises(SourceError, match=r"source 'things'.*\(\.dat\); set `format:`"):
        source("a.dat", project).register(con, workdir)
    source("a.dat", project, format="csv").register(con, workdir)
    assert len(rows(con, "things")) == 3


def test_malformed_line_early_fails_at_register(con, workdir, project):
    lines = ["id,name,score"] + [f"{i},n{i},{i}.5" for i in range(50)]
    lines.insert(11, "99,too,many,fields")
    (project / "bad.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(SourceError) as caught:
        source("bad.csv", project).register(con, workdir)
    assert str(caught.value) == (
        f"source 'things': reading failed (file {project / 'bad.csv'}, line 12): the line has 4 "
        "fields where the header has 3 (delimiter ','): '99,too,many,fields'; fix the line, or "
        "set `options: {null_padding: true}` to fill missing fields with NULL, or "
        "`options: {ignore_errors: true}` to skip bad lines"
    )


def test_short_line_in_the_sniffer_sample_names_the_line(con, workdir, project):
    """DuckDB's sniffer gives up without a line number; the message still has one."""
    body = "".join(f"{i},y,{i}\n" for i in range(3000))
    (project / "short.csv").write_text("a,b,c\n1,x,2\n" + body + "5,6\n7,8,9\n")
    with pytest.raises(SourceError, match=r"line 3003\): the line has 2 fields .* has 3"):
        source("short.csv", project).register(con, workdir)


@pytest.mark.parametrize(
    ("content", "line", "runs"),
    [
        (
            'carrier,origin,distance\nUA,EWR,1400\nAA,JFK,1089\nUA,"EWR,1400\n',
            4,
            "to the end of the file",
        ),
        ('a,b,c\n1,"x",2\n2,"unclosed,3\n4,5,6\n7,8,9\n', 3, "on to line 5"),
    ],
)
def test_unclosed_quote_is_an_error_not_data(con, workdir, project, content, line, runs):
    """DuckDB's sniffer would fall back to no quoting and keep '"EWR' as a value."""
    (project / "q.csv").write_text(content)
    with pytest.raises(SourceError) as caught:
        source("q.csv", project).register(con, workdir)
    message = str(caught.value)
    assert message.startswith(
        f"source 'things': reading failed (file {project / 'q.csv'}, line {line}): a quote "
        f"opened on this line is never closed (the field runs {runs})"
    )
    assert "options: {quote: ''}" in message
    source("q.csv", project, options={"quote": ""}).register(con, workdir)  # an explicit choice


def test_stray_quote_inside_an_unquoted_field_is_data(con, workdir, project):
    (project / "tv.csv").write_text('id,size\n1,55" screen\n2,32" screen\n')
    source("tv.csv", project).register(con, workdir)
    assert rows(con, "things") == [(1, '55" screen'), (2, '32" screen')]


def test_a_quoted_header_with_a_comma_is_one_column(con, workdir, project):
    (project / "one.csv").write_text('"a,b"\nx\ny\n')
    source("one.csv", project).register(con, workdir)
    assert types(con, "things") == {"a,b": "VARCHAR"}


def test_malformed_line_deep_in_the_file_surfaces_when_consumed(con, workdir, project):
    """The view is lazy: a bad line past the probe fails the query that reads it, wrapped."""
    body = "".join(f"{i},name{i},{i}.5\n" for i in range(30_000))
    (project / "big.csv").write_text("id,name,score\n" + body + "1,short\n")
    source("big.csv", project).register(con, workdir)
    with pytest.raises(SourceError) as caught, wrap_duckdb_errors("things"):
        con.execute('SELECT * FROM "things"').fetchall()
    message = str(caught.value)
    assert "source 'things'" in message
    assert f"file {project / 'big.csv'}" in message
    assert "line 30002" in message
    assert "Expected Number of Columns: 3 Found: 2" in message
    assert "null_padding" in message  # DuckDB's suggested fix, as an option name
    assert isinstance(caught.value.__cause__, duckdb.Error)


def test_wrong_type_deep_in_the_file_surfaces_when_consumed(con, workdir, project):
    body = "".join(f"{i}\n" for i in range(30_000))
    (project / "ids.csv").write_text("id\n" + body + "oops\n")
    source("ids.csv", project).register(con, workdir)
    with pytest.raises(SourceError, match=r"line 30002.*Could not convert string \"oops\""):
        with wrap_duckdb_errors("things"):
            con.execute('SELECT sum(id) FROM "things"').fetchall()


def test_latin1_file_suggests_the_encoding(con, workdir, project):
    (project / "people.csv").write_bytes("name,city\nJosé,Zürich\n".encode("latin-1"))
    with pytest.raises(SourceError) as caught:
        source("people.csv", project).register(con, workdir)
    message = str(caught.value)
    assert "source 'things'" in message
    assert str(project / "people.csv") in message
    assert "options: {encoding: latin-1}" in message
    source("people.csv", project, options={"encoding": "latin-1"}).register(con, workdir)
    assert rows(con, "things") == [("José", "Zürich")]


def test_malformed_json_names_file_and_record(con, workdir, project):
    (project / "a.ndjson").write_text('{"id": 1}\n{"id": 2}\n{"id": \n')
    with pytest.raises(SourceError) as caught:
        source("a.ndjson", project).register(con, workdir)
    message = str(caught.value)
    assert f"file {project / 'a.ndjson'}" in message
    assert "line 4" in message  # the broken record runs to the end of the file
    assert "Malformed JSON" in message


def test_malformed_json_array_names_file_and_record(con, workdir, project):
    (project / "a.json").write_text('[{"id": 1}, {"id": 2}, {"id": ]')
    with pytest.raises(SourceError) as caught:
        source("a.json", project).register(con, workdir)
    message = str(caught.value)
    assert f"file {project / 'a.json'}" in message
    assert "at byte 8 in record/value" in message


def test_corrupt_parquet_names_the_file(con, workdir, project):
    (project / "broken.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(SourceError) as caught:
        source("broken.parquet", project).register(con, workdir)
    assert f"file {project / 'broken.parquet'}" in str(caught.value)
    assert "magic bytes" in str(caught.value)


def test_any_name_is_quoted(con, workdir, project):
    (project / "a.csv").write_text("id\n1\n")
    source("a.csv", project, name='odd name-"x"').register(con, workdir)
    assert con.execute('SELECT id FROM "odd name-""x"""').fetchall() == [(1,)]


def test_register_again_replaces_the_view(con, workdir, project):
    (project / "a.csv").write_text("id\n1\n")
    src = source("a.csv", project)
    src.register(con, workdir)
    (project / "a.csv").write_text("id\n1\n2\n")
    src.register(con, workdir)
    assert rows(con, "things") == [(1,), (2,)]
