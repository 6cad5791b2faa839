"""What the pipeline runner itself costs per step, on SQLite and (if reachable) PostgreSQL.

Runs a chain of N trivial steps three ways: first run (every step executes), a re-run (every
step cached) and a forced re-run. The steps do almost nothing, so the time is the runner's:
hashing, metadata-store writes, artifact puts.

    python bench/bench_runner.py [--steps 50] [--postgres-admin postgresql://postgres@127.0.0.1/postgres]

PostgreSQL gets a fresh database, dropped at the end.
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conveyor.artifacts import ArtifactStore
from conveyor.pipeline import Pipeline, Runner, Step, StepContext
from conveyor.store import MetadataStore


def passthrough(ctx: StepContext) -> dict[str, bytes]:
    data = ctx.inputs["x"].read_bytes() if ctx.inputs else b"0" * 1024
    return {"x": data}


def chain(n: int) -> Pipeline:
    steps = [Step("s0", passthrough, outputs=("x",))]
    steps += [
        Step(f"s{i}", passthrough, inputs={"x": f"s{i - 1}.x"}, outputs=("x",)) for i in range(1, n)
    ]
    return Pipeline(steps)


def measure(db_url: str, root: Path, n: int) -> dict[str, float]:
    timings = {}
    with MetadataStore(db_url) as store:
        runner = Runner(
            chain(n),
            store=store,
            artifacts=ArtifactStore(str(root / "artifacts")),
            project=f"bench-{root.name}",
            project_root=root,
            spec_hash="0" * 64,
        )
        for label, force in (("first run", False), ("all cached", False), ("forced", True)):
            start = time.perf_counter()
            runner.run(force=force)
            timings[label] = (time.perf_counter() - start) / n * 1000
    return timings


@contextmanager
def fresh_postgres(admin_url: str) -> Iterator[str]:
    import psycopg

    name = f"conveyor_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--postgres-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows.append(("sqlite", measure(f"sqlite:///{root / 'c.db'}", root, args.steps)))
        try:
            with fresh_postgres(args.postgres_admin) as url:
                rows.append(("postgresql", measure(url, root, args.steps)))
        except Exception as err:  # the bench still reports SQLite without a server
            print(f"postgresql skipped: {err}")
    print(f"\nrunner overhead per step, {args.steps}-step chain (ms/step)")
    print(f"{'backend':<12}{'first run':>12}{'all cached':>12}{'forced':>12}")
    for backend, t in rows:
        print(f"{backend:<12}{t['first run']:>12.2f}{t['all cached']:>12.2f}{t['forced']:>12.2f}")


if __name__ == "__main__":
    main()
