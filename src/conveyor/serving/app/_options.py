"""How the prediction app behaves: limits, batching and the response cache."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AppOptions"]


@dataclass(frozen=True)
class AppOptions:
    """Settings of one app (one worker process).

    Attributes:
        max_body_bytes: Largest request body accepted; larger ones get 413 before being read.
        batching: Whether concurrent requests for one model are micro-batched.
        max_batch_size: Most rows predicted in one model call.
        max_wait_ms: Longest a request waits for a running call before its batch is sent.
        cache_size: Responses kept in the LRU cache (0 turns the cache off). Only for
            deterministic models: a cached answer is returned without calling the model.
        cache_ttl_seconds: How long a cached response stays valid.
        log_close_timeout_seconds: How long the shutdown waits for the prediction log to flush.
    """

    max_body_bytes: int = 10 * 1024 * 1024
    batching: bool = True
    max_batch_size: int = 64
    max_wait_ms: float = 2.0
    cache_size: int = 0
    cache_ttl_seconds: float = 60.0
    log_close_timeout_seconds: float = 30.0
