"""Model calls shared by concurrent requests: what arrives while the model is busy runs as one batch."""

import asyncio
import time
from collections.abc import Callable

import numpy as np

from service.core import tracing
from service.core.metrics import BATCH_SIZE, CANCELLED, INFERENCE, QUEUED
from service.core.tracing import Queued

Outputs = tuple[np.ndarray, ...]

# While calls come alone, all but one in this many run at once; that one is deferred to see whether
# others arrive with it.
PROBE_EVERY = 16


class Batcher:
    """Concatenates the inputs of concurrent callers along the batch axis and runs one model call.

    Callers are gathered by deferring the call to the event loop's next turn, so that the requests
    already waiting then join it; once two or more are waiting, the call may wait up to max_wait_s
    for more, unless the batch is already full. A deferral costs loop turns, a noticeable share of
    a lone request, so while calls come alone they run at once, and only one in PROBE_EVERY is
    deferred, to notice when concurrency returns.
    """

    def __init__(
        self,
        model: str,
        graph: str,
        run: Callable[[np.ndarray], Outputs],
        max_batch: int,
        max_wait_s: float,
        *,
        model_id: str | None = None,
    ):
        self._attributes = {"vae.model": model, "vae.graph": graph} | ({"vae.model_id": model_id} if model_id else {})
        self._seconds = INFERENCE.labels(model, graph)  # the labelled series, looked up once
        self._batch_sizes = BATCH_SIZE.labels(model, graph)
        self._cancelled = CANCELLED.labels(model, graph)
        self._queued = QUEUED.labels(model, graph)
        self._run = run
        self._max_batch = max_batch
        self._max_wait_s = max_wait_s
        self._pending: list[tuple[np.ndarray, asyncio.Future, Queued | None]] = []
        self._scheduled = False
        self._waited = False
        self._alone_calls_left = 0

    async def __call__(self, inputs: np.ndarray) -> Outputs:
        if self._alone_calls_left and not self._pending:
            self._alone_calls_left -= 1
            with tracing.span("model call", **self._attributes, **{"vae.batch_size": len(inputs)}):
                return self._infer(inputs)
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._pending.append((inputs, future, Queued() if tracing.enabled else None))
        self._queued.inc(len(inputs))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _infer(self, inputs: np.ndarray) -> Outputs:
        started = time.perf_counter()
        outputs = self._run(inputs)
        self._seconds.observe(time.perf_counter() - started)
        self._batch_sizes.observe(len(inputs))
        return outputs

    def _pending_rows(self) -> int:
        return sum(len(inputs) for inputs, _, _ in self._pending)

    def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        if self._max_wait_s and not self._waited and 1 < len(self._pending) and self._pending_rows() < self._max_batch:
            self._waited = True
            loop.call_later(self._max_wait_s, self._flush)
            return
        self._waited = False
        batch, rows = [], 0
        while self._pending and (not batch or rows + len(self._pending[0][0]) <= self._max_batch):
            batch.append(entry := self._pending.pop(0))
            rows += len(entry[0])
        self._queued.dec(rows)
        self._alone_calls_left = PROBE_EVERY - 1 if len(batch) == 1 and not self._pending else 0
        self._run_batch(batch)
        if self._pending:
            loop.call_soon(self._flush)
        else:
            self._scheduled = False

    def _run_batch(self, batch: list[tuple[np.ndarray, asyncio.Future, Queued | None]]) -> None:
        live = [entry for entry in batch if not entry[1].done()]  # skip cancelled callers
        if len(live) < len(batch):
            self._cancelled.inc(len(batch) - len(live))
        if not live:
            return
        started = time.time_ns() if tracing.enabled else 0  # for the spans alone
        try:
            joined = live[0][0] if len(live) == 1 else np.concatenate([inputs for inputs, _, _ in live])
            outputs = self._infer(joined)
        except Exception as error:  # the callers' handlers report it; the loop must go on
            for _, future, _ in live:
                future.set_exception(error)
            return
        if tracing.enabled:
            ended = time.time_ns()
            attributes = self._attributes | {"vae.batch_size": len(joined)}
            for _, _, queued in live:
                queued.record(started, ended, attributes)
        start = 0
        for inputs, future, _ in live:
            end = start + len(inputs)
            future.set_result(tuple(output[start:end] for output in outputs))
            start = end
