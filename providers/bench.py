"""The baseline half of `tenantq bench pipeline`: how fast bare LiteLLM calls the loopback server.

The pipeline bench compares the fleet's job throughput with this number, measured in the same process
setup against the same server and delay, so the difference is what tenantq itself costs (queues,
admission, Celery, storage) rather than LiteLLM or the network.
"""

from __future__ import annotations

import asyncio
import time

from providers.runtime import litellm_module


async def bare_litellm_rate(url: str, concurrency: int, total: int) -> float:
    """Calls per second of bare litellm.acompletion against `url` (the loopback server, with or without
    /v1), `concurrency` calls in flight, `total` calls in all."""
    if concurrency < 1 or total < 1:
        raise ValueError("concurrency and total must be at least 1")
    litellm = litellm_module()
    api_base = url.rstrip("/")
    api_base = api_base if api_base.endswith("/v1") else f"{api_base}/v1"
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            await litellm.acompletion(
                model="openai/bench", api_base=api_base, api_key="loopback", num_retries=0, max_retries=0,
                messages=[{"role": "user", "content": f"bench call {index}"}], max_tokens=16,
            )

    await one(-1)  # warm up: connection pool, lazy imports
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - started)
