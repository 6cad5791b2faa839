"""Throughput of the artifact store on a local folder.

Run: ``python bench/bench_artifacts.py`` (about 5-15 s). Puts are of new content (not dedup
hits) and include an fsync per object; gets verify the sha256 of every byte.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from conveyor.artifacts import ArtifactStore

KIB = 1 << 10
MIB = 1 << 20


def timed(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def row(case: str, op: str, count: int, size: int, seconds: float) -> str:
    mb_s = count * size / MIB / seconds
    return f"{case:<16}{op:<12}{count / seconds:>10,.0f}{mb_s:>10,.1f}{seconds:>9.2f}"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        rows = []

        store = ArtifactStore(str(work / "small"))
        blobs = [os.urandom(KIB) for _ in range(1000)]
        digests: list[str] = []
        seconds = timed(lambda: digests.extend(store.put_bytes(b).digest for b in blobs))
        rows.append(row("1 KiB x 1000", "put_bytes", 1000, KIB, seconds))
        seconds = timed(lambda: [store.get_bytes(d) for d in digests])
        rows.append(row("1 KiB x 1000", "get_bytes", 1000, KIB, seconds))

        store = ArtifactStore(str(work / "big"))
        data = os.urandom(100 * MIB)
        source = work / "big.bin"
        source.write_bytes(data)
        ref = store.put_file(source)
        store.verify(ref.digest)
        # The first put above warmed the page cache; measure a second store on the same disk.
        store = ArtifactStore(str(work / "big2"))
        seconds = timed(lambda: store.put_file(source))
        rows.append(row("100 MiB x 1", "put_file", 1, 100 * MIB, seconds))
        seconds = timed(lambda: store.get_file(ref.digest, work / "copy.bin"))
        rows.append(row("100 MiB x 1", "get_file", 1, 100 * MIB, seconds))
        store = ArtifactStore(str(work / "big3"))
        seconds = timed(lambda: store.put_bytes(data))
        rows.append(row("100 MiB x 1", "put_bytes", 1, 100 * MIB, seconds))
        seconds = timed(lambda: store.get_bytes(ref.digest))
        rows.append(row("100 MiB x 1", "get_bytes", 1, 100 * MIB, seconds))

    print(f"{'case':<16}{'op':<12}{'ops/s':>10}{'MiB/s':>10}{'seconds':>9}")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
