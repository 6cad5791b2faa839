"""lineage(): the source config recorded with a dataset version, with secrets redacted."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from conveyor.data.sources import FileTableSource, HttpJsonSource, build_source
from conveyor.spec import FileSource, HttpSource, SqlSource, parse_spec


def test_sql_url_password_is_redacted_unless_a_placeholder(tmp_path):
    src = build_source(
        "db", SqlSource(type="sql", url="sqlite:///x.db", query="SELECT 1"), project_root=tmp_path
    )
    raw = {
        "type": "sql",
        "url": "postgresql+psycopg://app:hunter2@db:5432/shop",
        "query": "SELECT 1",
    }
    assert src.lineage(raw) == {
        "type": "sql",
        "url": "postgresql+psycopg://app:***@db:5432/shop",
        "query": "SELECT 1",
    }
    placeholder = {**raw, "url": "postgresql+psycopg://app:${DB_PASSWORD}@db/shop"}
    assert src.lineage(placeholder)["url"] == "postgresql+psycopg://app:${DB_PASSWORD}@db/shop"
    whole = {**raw, "url": "${DATABASE_URL}"}
    assert src.lineage(whole)["url"] == "${DATABASE_URL}"


def test_http_headers_params_and_url_secrets(tmp_path):
    raw = {
        "type": "http",
        "url": "https://user:pa55@api.example.com/v1/items?api_key=abc123&region=eu",
        "headers": {
            "Authorization": "Bearer ${API_TOKEN}",
            "X-Api-Key": "literal-key-value",
            "Cookie": "session=deadbeef",
            "X-Client-Token": "${CLIENT_TOKEN:-fallback-secret}",
            "Accept": "application/json",
        },
        "params": {"token": "t0ken", "access_key": "${KEY}", "page_size": 50},
        "pagination": {"type": "page", "max_pages": 3},
    }
    before = copy.deepcopy(raw)
    src = HttpJsonSource(
        "items", HttpSource(type="http", url="https://api.example.com"), project_root=tmp_path
    )
    recorded = src.lineage(raw)
    assert recorded == {
        "type": "http",
        "url": "https://user:***@api.example.com/v1/items?api_key=***&region=eu",
        "headers": {
            "Authorization": "Bearer ${API_TOKEN}",
            "X-Api-Key": "***",
            "Cookie": "***",
            "X-Client-Token": "***",  # a default inside the reference may be a secret
            "Accept": "application/json",
        },
        "params": {"token": "***", "access_key": "${KEY}", "page_size": 50},
        "pagination": {"type": "page", "max_pages": 3},
    }
    assert raw == before  # not modified
    recorded["pagination"]["max_pages"] = 9
    assert raw["pagination"]["max_pages"] == 3  # a copy, not a view
    json.dumps(recorded)


def test_file_lineage_is_the_raw_config(tmp_path):
    src = FileTableSource("f", FileSource(type="file", path="a.csv"), project_root=tmp_path)
    raw = {"type": "file", "path": "data/*.csv", "options": {"delim": ";"}}
    assert src.lineage(raw) == raw


def test_lineage_from_a_loaded_spec_keeps_placeholders(tmp_path: Path):
    """End to end with the spec loader: the raw mapping keeps ${VAR}; secrets never appear."""
    text = """
name: shop
sources:
  orders:
    type: http
    url: https://api.example.com/orders
    headers:
      Authorization: Bearer ${SHOP_TOKEN}
      X-Api-Key: ${SHOP_KEY}
"""
    loaded = parse_spec(text, environ={"SHOP_TOKEN": "real-token-1", "SHOP_KEY": "real-key-2"})
    config = loaded.spec.sources["orders"]
    assert config.headers["Authorization"] == "Bearer real-token-1"  # expanded for requests
    src = build_source("orders", config, project_root=tmp_path)
    recorded = src.lineage(loaded.raw["sources"]["orders"])
    assert recorded["headers"] == {
        "Authorization": "Bearer ${SHOP_TOKEN}",
        "X-Api-Key": "${SHOP_KEY}",
    }
    assert "real-" not in json.dumps(recorded)
