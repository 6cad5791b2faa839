"""HTTP sources against a real local server: pagination, retries, staging and errors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import duckdb
import pytest

from conveyor.data.sources import HttpJsonSource
from conveyor.errors import SourceError
from conveyor.spec import HttpSource

RECORDS = [{"id": i, "name": f"n{i}"} for i in range(1, 8)]
TOKEN = "tok-5ecret-value-42"


class Sleeps(list[float]):
    """Records backoff delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def source(project: Path, sleeps: Sleeps | None = None, **config: Any) -> HttpJsonSource:
    return HttpJsonSource(
        "events",
        HttpSource(type="http", **config),
        project_root=project,
        sleep=sleeps if sleeps is not None else Sleeps(),
        jitter=lambda: 0.5,
    )


def ids(con: duckdb.DuckDBPyConnection) -> list[int]:
    return [row[0] for row in con.execute('SELECT id FROM "events" ORDER BY id').fetchall()]


def test_single_request(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, RECORDS))
    source(project, url=api.url("/items"), params={"kind": "a"}).register(con, workdir)
    assert con.execute('SELECT * FROM "events" ORDER BY id').fetchall() == [
        (r["id"], r["name"]) for r in RECORDS
    ]
    assert [r.query for r in api.seen] == [{"kind": "a"}]
    assert api.seen[0].method == "GET"


def test_page_pagination(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        size = int(request.query["per_page"])
        start = (int(request.query["p"]) - 1) * size
        return 200, {}, {"data": {"items": RECORDS[start : start + size]}}

    source(
        project,
        url=api.url("/items"),
        params={"kind": "a"},
        records="data.items",
        pagination={"type": "page", "param": "p", "size_param": "per_page", "size": 3},
    ).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert [r.query for r in api.seen] == [
        {"kind": "a", "p": str(page), "per_page": "3"} for page in (1, 2, 3, 4)
    ]


def test_offset_pagination_advances_by_what_came_back(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        offset = int(request.query["offset"])
        limit = min(int(request.query["limit"]), 2)  # the server caps the limit
        return 200, {}, RECORDS[offset : offset + limit]

    source(project, url=api.url("/items"), pagination={"type": "offset", "limit": 5}).register(
        con, workdir
    )
    assert ids(con) == list(range(1, 8))
    assert [r.query["offset"] for r in api.seen] == ["0", "2", "4", "6", "7"]


def test_cursor_pagination(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        start = int(request.query.get("after", "0"))
        chunk = RECORDS[start : start + 3]
        end = start + len(chunk)
        nxt = str(end) if end < len(RECORDS) else None
        return 200, {}, {"results": chunk, "meta": {"next": nxt}}

    source(
        project,
        url=api.url("/items"),
        records="results",
        pagination={"type": "cursor", "field": "meta.next", "param": "after"},
    ).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert [r.query.get("after") for r in api.seen] == [None, "3", "6"]


def test_next_link_in_the_body_may_be_relative(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        page = int(request.query.get("page", "1"))
        chunk = RECORDS[(page - 1) * 3 : page * 3]
        nxt = f"/items?page={page + 1}&sig=abc" if page * 3 < len(RECORDS) else None
        return 200, {}, {"records": chunk, "links": {"next": nxt}}

    source(
        project,
        url=api.url("/items"),
        params={"kind": "a"},
        records="records",
        pagination={"type": "next_link", "field": "links.next"},
    ).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert [r.query for r in api.seen] == [
        {"kind": "a"},
        {"page": "2", "sig": "abc"},
        {"page": "3", "sig": "abc"},
    ]


def test_next_link_in_the_link_header(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        page = int(request.query.get("page", "1"))
        chunk = RECORDS[(page - 1) * 4 : page * 4]
        headers = {}
        if page * 4 < len(RECORDS):
            link = api.url(f"/items?page={page + 1}")
            headers["Link"] = f'<{link}>; rel="next", <{api.url("/items?page=1")}>; rel="first"'
        return 200, headers, chunk

    source(project, url=api.url("/items"), pagination={"type": "next_link"}).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert len(api.seen) == 2


def test_max_pages_stops_early(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        page = int(request.query["page"])
        return 200, {}, [{"id": page}]  # never ends on its own

    source(project, url=api.url("/items"), pagination={"type": "page", "max_pages": 3}).register(
        con, workdir
    )
    assert ids(con) == [1, 2, 3]
    assert len(api.seen) == 3


def test_429_then_200_obeys_retry_after(api, con, workdir, project):
    replies = iter([(429, {"Retry-After": "2"}, {"error": "slow down"}), (200, {}, RECORDS)])
    api.route("/items")(lambda r: next(replies))
    sleeps = Sleeps()
    source(project, sleeps, url=api.url("/items")).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert sleeps == [2.0]


def test_retry_after_is_capped(api, con, workdir, project):
    replies = iter([(503, {"Retry-After": "86400"}, ""), (200, {}, RECORDS)])
    api.route("/items")(lambda r: next(replies))
    sleeps = Sleeps()
    source(project, sleeps, url=api.url("/items")).register(con, workdir)
    assert sleeps == [60.0]


def test_500_then_200_backs_off(api, con, workdir, project):
    replies = iter([(500, {}, "oops"), (502, {}, "oops"), (200, {}, RECORDS)])
    api.route("/items")(lambda r: next(replies))
    sleeps = Sleeps()
    source(project, sleeps, url=api.url("/items")).register(con, workdir)
    assert ids(con) == list(range(1, 8))
    assert sleeps == [0.375, 0.75]  # 0.5 s then 1 s, each with jitter 0.5 -> 75%


def test_permanent_500_fails_after_max_retries(api, con, workdir, project, caplog):
    api.route("/items")(lambda r: (500, {}, {"error": "down"}))
    sleeps = Sleeps()
    src = source(project, sleeps, url=api.url("/items"), params={"kind": "a"}, max_retries=2)
    with caplog.at_level(logging.WARNING), pytest.raises(SourceError) as caught:
        src.register(con, workdir)
    assert str(caught.value) == (
        f"source 'events': GET {api.url('/items')}?kind=a (page 1) failed after 3 attempts; "
        "the last with HTTP 500 Internal Server Error. The server may be down or overloaded: "
        "try again later, or raise `max_retries` / `timeout_s`"
    )
    assert len(api.seen) == 3
    assert len(sleeps) == 2
    assert [r.levelname for r in caplog.records if r.name.startswith("conveyor")] == [
        "WARNING",
        "WARNING",
    ]
    assert list(workdir.iterdir()) == []  # the staging folder is gone


def test_connection_refused_is_retried_then_fails(con, workdir, project):
    sleeps = Sleeps()
    src = source(project, sleeps, url="http://127.0.0.1:1/items", max_retries=1)
    with pytest.raises(SourceError, match=r"failed after 2 attempts; the last with ConnectError"):
        src.register(con, workdir)
    assert len(sleeps) == 1


def test_client_error_is_not_retried(api, con, workdir, project):
    api.route("/items")(lambda r: (404, {}, {"error": "no such list"}))
    sleeps = Sleeps()
    with pytest.raises(SourceError) as caught:
        source(project, sleeps, url=api.url("/items")).register(con, workdir)
    assert str(caught.value) == (
        f"source 'events': GET {api.url('/items')} (page 1) failed with HTTP 404 Not Found: "
        '\'{"error": "no such list"}\'; check the URL'
    )
    assert len(api.seen) == 1
    assert sleeps == []


def test_malformed_json_page(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        if request.query["page"] == "2":
            return 200, {"Content-Type": "application/json"}, '[{"id": 4}, {"id": '
        return 200, {}, RECORDS[:3]

    with pytest.raises(SourceError) as caught:
        source(project, url=api.url("/items"), pagination={"type": "page"}).register(con, workdir)
    message = str(caught.value)
    assert message.startswith(
        f"source 'events': GET {api.url('/items')}?page=2 (page 2) is not JSON "
        "(application/json, 19 bytes"
    )
    assert "check the URL and that the API returns JSON" in message


def test_html_instead_of_json(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {"Content-Type": "text/html"}, "<html>login</html>"))
    with pytest.raises(SourceError, match=r"\(page 1\) is not JSON \(text/html.*'<html>login"):
        source(project, url=api.url("/items")).register(con, workdir)


def test_missing_records_path(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, {"data": [], "total": 0}))
    with pytest.raises(SourceError) as caught:
        source(project, url=api.url("/items"), records="results").register(con, workdir)
    assert str(caught.value) == (
        f"source 'events': GET {api.url('/items')} (page 1) has no 'results' in its body "
        "(its keys: data, total); set `records:` to the dotted path of the list of records"
    )


def test_records_path_is_not_a_list(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, {"data": {"items": {"id": 1}}}))
    with pytest.raises(SourceError, match=r"has a JSON object at 'data.items', not a list"):
        source(project, url=api.url("/items"), records="data.items").register(con, workdir)


def test_body_is_an_object_without_records_path(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, {"items": RECORDS}))
    with pytest.raises(SourceError, match=r"has a JSON object as its body.*\(its keys: items\)"):
        source(project, url=api.url("/items")).register(con, workdir)


def test_record_that_is_not_an_object(api, con, workdir, project):
    @api.route("/items")
    def items(request):
        page = int(request.query["page"])
        return 200, {}, [{"id": 1}] if page == 1 else [{"id": 2}, "oops"]

    with pytest.raises(SourceError) as caught:
        source(project, url=api.url("/items"), pagination={"type": "page"}).register(con, workdir)
    assert "(page 2) holds record 1 that is a JSON string ('oops'), not an object" in str(
        caught.value
    )


def test_auth_header_is_sent_but_never_shown(api, con, workdir, project, caplog):
    """The token reaches the server, but no message, log line or lineage record shows it."""
    state = {"calls": 0}

    @api.route("/items")
    def items(request):
        state["calls"] += 1
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return 401, {}, {"error": "unauthorized"}
        if state["calls"] == 1:
            return 503, {}, {"error": f"busy; you sent {request.headers['authorization']}"}
        if request.query["page"] == "2":
            return 403, {}, {"error": f"token {TOKEN} may not read page 2"}
        return 200, {}, RECORDS

    config = {
        "url": api.url("/items"),
        "headers": {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"},
        "pagination": {"type": "page"},
    }
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceError) as caught:
        source(project, **config).register(con, workdir)
    assert all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api.seen)
    message = str(caught.value)
    assert "(page 2) failed with HTTP 403 Forbidden" in message
    assert "token *** may not read page 2" in message
    assert TOKEN not in message
    assert TOKEN not in caplog.text
    assert "retry 1/3" in caplog.text  # the 503 was logged, without the token it echoed

    raw = {"type": "http", **config}
    assert TOKEN not in str(source(project, **config).lineage(raw))

    with pytest.raises(SourceError, match=r"HTTP 401 Unauthorized.*check the credentials"):
        source(project, url=api.url("/items")).register(con, workdir)


def test_secret_query_params_are_redacted_in_messages(api, con, workdir, project):
    api.route("/items")(lambda r: (400, {}, {"error": "bad request"}))
    with pytest.raises(SourceError) as caught:
        source(project, url=api.url("/items"), params={"api_key": "k3y-s3cret", "q": "x"}).register(
            con, workdir
        )
    message = str(caught.value)
    assert f"GET {api.url('/items')}?api_key=***&q=x (page 1)" in message
    assert "k3y-s3cret" not in message


def test_post(api, con, workdir, project):
    api.route("/search")(lambda r: (200, {}, {"hits": RECORDS}))
    source(project, url=api.url("/search"), method="POST", records="hits").register(con, workdir)
    assert [r.method for r in api.seen] == ["POST"]
    assert len(ids(con)) == 7


def test_a_cursor_that_repeats_is_an_error(api, con, workdir, project):
    calls = iter(range(100))
    api.route("/items")(lambda r: (200, {}, {"results": [{"id": next(calls)}], "next": "c1"}))
    with pytest.raises(SourceError, match=r"\(page 2\) the API returned the cursor it was sent"):
        source(
            project,
            url=api.url("/items"),
            records="results",
            pagination={"type": "cursor", "field": "next"},
        ).register(con, workdir)


def test_an_api_that_ignores_the_page_parameter_is_an_error(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, RECORDS[:2]))
    with pytest.raises(SourceError, match=r"\(page 2\) returned the same records as the page"):
        source(project, url=api.url("/items"), pagination={"type": "page"}).register(con, workdir)


def test_no_records_at_all(api, con, workdir, project):
    api.route("/items")(lambda r: (200, {}, []))
    with pytest.raises(SourceError, match=r"source 'events': .* returned no records"):
        source(project, url=api.url("/items")).register(con, workdir)


def test_records_are_staged_in_batches_and_schemas_reconciled(api, con, workdir, project):
    """New fields, NULL-then-typed fields, int-then-float and int-then-text across batches."""
    pages = [
        [{"id": 1, "v": 1, "later": None, "always_null": None}, {"id": 2, "v": 2}],
        [{"id": 3, "v": 2.5, "later": 7, "extra": "x", "nested": {"a": 1}}],
        [{"id": 4, "v": "n/a", "nested": {"b": "y"}, "mixed": 1}, {"id": 5, "mixed": "one"}],
    ]

    @api.route("/items")
    def items(request):
        page = int(request.query["page"])
        return 200, {}, pages[page - 1] if page <= len(pages) else []

    src = HttpJsonSource(
        "events",
        HttpSource(type="http", url=api.url("/items"), pagination={"type": "page"}),
        project_root=project,
        batch_size=2,
    )
    src.register(con, workdir)
    parts = sorted(path.name for path in (workdir / "events").iterdir())
    assert parts == [
        "part-00000-pages-1-1.parquet",
        "part-00001-pages-2-3.parquet",
    ]
    described = {r[0]: r[1] for r in con.execute('DESCRIBE "events"').fetchall()}
    assert described == {
        "id": "BIGINT",
        "v": "VARCHAR",  # a number on some pages, text on another: cast to text
        "later": "BIGINT",
        "always_null": "VARCHAR",
        "extra": "VARCHAR",
        "nested": "STRUCT(a BIGINT, b VARCHAR)",
        "mixed": "VARCHAR",  # a number and text in one batch: text
    }
    assert con.execute(
        'SELECT id, v, later, extra, nested.a, mixed FROM "events" ORDER BY id'
    ).fetchall() == [
        (1, "1", None, None, None, None),
        (2, "2", None, None, None, None),
        (3, "2.5", 7, "x", 1, None),
        (4, "n/a", None, None, None, "1"),
        (5, None, None, None, None, "one"),
    ]


def test_register_again_replaces_the_staged_records(api, con, workdir, project):
    data = {"records": RECORDS}
    api.route("/items")(lambda r: (200, {}, data["records"]))
    src = source(project, url=api.url("/items"))
    src.register(con, workdir)
    data["records"] = RECORDS[:2]
    src.register(con, workdir)
    assert ids(con) == [1, 2]
    assert [p.name for p in workdir.iterdir()] == ["events"]
    assert src.files() == []


def test_timeout_is_retried_then_fails(api, con, workdir, project):
    import time

    def slow(request):
        time.sleep(0.3)
        return 200, {}, RECORDS

    api.route("/items")(slow)
    sleeps = Sleeps()
    src = source(project, sleeps, url=api.url("/items"), timeout_s=0.05, max_retries=1)
    with pytest.raises(SourceError, match=r"failed after 2 attempts; the last with ReadTimeout"):
        src.register(con, workdir)
    assert len(sleeps) == 1
