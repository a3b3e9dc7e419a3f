"""The batcher: concurrent callers share one model call; lone callers do not wait for company."""

import asyncio

import numpy as np
import pytest
from prometheus_client import REGISTRY

from service.core.batcher import PROBE_EVERY, Batcher


class Model:
    """Doubles its input, and records the batch of every call."""

    def __init__(self, fail: bool = False):
        self.batches: list[np.ndarray] = []
        self.fail = fail

    def __call__(self, inputs: np.ndarray) -> tuple[np.ndarray, ...]:
        self.batches.append(inputs)
        if self.fail:
            raise RuntimeError("model failed")
        return (inputs * 2,)


def rows(*values: float) -> np.ndarray:
    return np.array(values, np.float32)[:, None]


def test_concurrent_callers_share_one_call_and_get_their_own_rows():
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=0)

    async def scenario():
        return await asyncio.gather(batcher(rows(1)), batcher(rows(2, 3)), batcher(rows(4)))

    results = asyncio.run(scenario())
    assert [len(batch) for batch in model.batches] == [4]
    assert [result[0].ravel().tolist() for result in results] == [[2], [4, 6], [8]]


def test_a_call_never_exceeds_the_batch_limit():
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=4, max_wait_s=0)

    async def scenario():
        await asyncio.gather(*(batcher(rows(i)) for i in range(6)), batcher(rows(7, 8, 9)))

    asyncio.run(scenario())
    assert [len(batch) for batch in model.batches] == [4, 2, 3]


def test_lone_callers_run_at_once_and_one_in_probe_every_looks_for_company():
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=0)
    turns = 0

    async def ticker():
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async def waited_for() -> list[bool]:
        asyncio.get_running_loop().create_task(ticker())
        await asyncio.sleep(0)
        waits = []
        for _ in range(2 * PROBE_EVERY + 1):
            before = turns
            await batcher(rows(1))
            waits.append(turns > before)
        return waits

    waits = asyncio.run(waited_for())
    assert [index for index, waited in enumerate(waits) if waited] == [0, PROBE_EVERY, 2 * PROBE_EVERY]


def test_callers_gather_again_as_soon_as_a_probe_finds_company():
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=0)

    async def scenario():
        await batcher(rows(1))  # alone: the next calls run at once
        for _ in range(PROBE_EVERY - 1):
            await batcher(rows(1))
        await asyncio.gather(*(batcher(rows(i)) for i in range(3)))  # the probe: three together
        await asyncio.gather(*(batcher(rows(i)) for i in range(3)))

    asyncio.run(scenario())
    assert [len(batch) for batch in model.batches[-2:]] == [3, 3]


@pytest.mark.parametrize(("max_wait_s", "calls"), [(0, [2, 1]), (0.2, [3])])
def test_under_concurrency_a_bounded_wait_lets_later_callers_join(max_wait_s, calls):
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=max_wait_s)

    async def late_caller():
        for _ in range(3):  # past the turn on which the first two are run
            await asyncio.sleep(0)
        return await batcher(rows(3))

    async def scenario():
        await asyncio.gather(batcher(rows(1)), batcher(rows(2)), late_caller())

    asyncio.run(scenario())
    assert [len(batch) for batch in model.batches] == calls


def test_a_failed_call_reaches_each_of_its_callers_and_the_next_call_runs():
    model = Model(fail=True)
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=0)

    async def scenario():
        outcomes = await asyncio.gather(batcher(rows(1)), batcher(rows(2)), return_exceptions=True)
        model.fail = False
        return outcomes, await batcher(rows(3))

    outcomes, after = asyncio.run(scenario())
    assert all(isinstance(outcome, RuntimeError) for outcome in outcomes)
    assert after[0].ravel().tolist() == [6]


def test_cancelled_callers_are_left_out_of_the_call():
    model = Model()
    batcher = Batcher("test", "encoder", model, max_batch=64, max_wait_s=0)

    async def scenario():
        loop = asyncio.get_running_loop()
        gone, kept = loop.create_task(batcher(rows(1))), loop.create_task(batcher(rows(2)))
        await asyncio.sleep(0)  # both are waiting for the call
        gone.cancel()
        return await kept

    assert asyncio.run(scenario())[0].ravel().tolist() == [4]
    assert [batch.ravel().tolist() for batch in model.batches] == [[2]]


def test_64_callers_that_leave_before_their_call_cost_no_model_call_and_are_counted():
    model = Model()
    batcher = Batcher("cancel-test", "encoder", model, max_batch=128, max_wait_s=0.05)  # not full: it waits
    cancelled = REGISTRY.get_sample_value("vae_cancelled_total", {"model": "cancel-test", "graph": "encoder"}) or 0

    async def scenario():
        loop = asyncio.get_running_loop()
        callers = [loop.create_task(batcher(rows(index))) for index in range(64)]
        await asyncio.sleep(0.01)  # all 64 queued, inside the batch wait
        for caller in callers:
            caller.cancel()
        await asyncio.sleep(0.1)  # past the batch wait: the flush finds no one left
        return [caller.cancelled() for caller in callers]

    assert all(asyncio.run(scenario()))
    assert model.batches == []
    after = REGISTRY.get_sample_value("vae_cancelled_total", {"model": "cancel-test", "graph": "encoder"})
    assert after - cancelled == 64


def test_a_request_alone_never_waits_for_the_batch_wait_and_a_pair_does():
    """With a batch wait far longer than a model call, each lone caller, the probing one included,
    answers at once; two callers together wait for it, once, so the wait is really set."""
    wait = 0.5

    async def lone_latencies() -> list[float]:
        batcher = Batcher("test", "encoder", Model(), max_batch=64, max_wait_s=wait)
        latencies = []
        for value in range(PROBE_EVERY + 2):  # a whole probing cycle and into the next
            started = asyncio.get_running_loop().time()
            await batcher(rows(value))
            latencies.append(asyncio.get_running_loop().time() - started)
        return latencies

    async def pair_latency() -> float:
        batcher = Batcher("test", "encoder", Model(), max_batch=64, max_wait_s=wait)
        started = asyncio.get_running_loop().time()
        await asyncio.gather(batcher(rows(1)), batcher(rows(2)))
        return asyncio.get_running_loop().time() - started

    assert max(asyncio.run(lone_latencies())) < wait / 5
    assert asyncio.run(pair_latency()) >= wait


def test_a_full_batch_runs_at_once_and_every_gathering_waits_afresh():
    """With a wait far longer than a model call: callers that fill the batch exactly do not wait for
    more; callers that do not fill it wait once per call, each time the wait comes round."""
    wait = 0.3

    async def latencies(batcher: Batcher, *callers: np.ndarray) -> float:
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*(batcher(inputs) for inputs in callers))
        return asyncio.get_running_loop().time() - started

    async def scenario() -> tuple[float, list[float]]:
        filled = Batcher("test", "encoder", Model(), max_batch=4, max_wait_s=wait)
        full = await latencies(filled, rows(1, 2), rows(3, 4))
        batcher = Batcher("test", "encoder", Model(), max_batch=64, max_wait_s=wait)
        pairs = [await latencies(batcher, rows(1), rows(2)) for _ in range(2)]
        return full, pairs

    full, pairs = asyncio.run(scenario())
    assert full < wait / 5
    assert min(pairs) >= wait


def test_a_call_counts_its_batch_and_queue_under_its_model_and_half():
    """vae_batch_size and vae_batch_queue are labelled with the batcher's model and graph: two
    callers wait in the queue (2 rows) for one call of 2, then the queue is empty."""
    labels = {"model": "labelled-test", "graph": "decoder"}
    batcher = Batcher("labelled-test", "decoder", Model(), max_batch=64, max_wait_s=0.05)
    before = REGISTRY.get_sample_value("vae_batch_size_sum", labels) or 0.0

    async def scenario() -> float:
        callers = asyncio.gather(batcher(rows(1)), batcher(rows(2)))
        await asyncio.sleep(0.01)  # inside the batch wait
        queued = REGISTRY.get_sample_value("vae_batch_queue", labels)
        await callers
        return queued

    assert asyncio.run(scenario()) == 2
    assert REGISTRY.get_sample_value("vae_batch_queue", labels) == 0
    assert REGISTRY.get_sample_value("vae_batch_size_sum", labels) - before == 2


def test_only_the_callers_that_left_are_counted_as_cancelled():
    labels = {"model": "partly-cancelled", "graph": "encoder"}
    before = REGISTRY.get_sample_value("vae_cancelled_total", labels) or 0.0
    model = Model()
    batcher = Batcher("partly-cancelled", "encoder", model, max_batch=64, max_wait_s=0)

    async def scenario() -> None:
        staying = [asyncio.ensure_future(batcher(rows(value))) for value in (1, 2)]
        leaving = asyncio.ensure_future(batcher(rows(3)))
        await asyncio.sleep(0)  # all three wait for the call
        leaving.cancel()
        await asyncio.gather(*staying)

    asyncio.run(scenario())
    assert [batch.ravel().tolist() for batch in model.batches] == [[1, 2]]
    assert REGISTRY.get_sample_value("vae_cancelled_total", labels) - before == 1


def test_the_inference_time_is_the_model_calls_own():
    """vae_inference_seconds gets each model call's duration: positive, and no longer than the calls took."""
    labels = {"model": "timed-test", "graph": "encoder"}
    sum_before, count_before = (
        REGISTRY.get_sample_value(f"vae_inference_seconds_{part}", labels) or 0.0 for part in ("sum", "count")
    )
    batcher = Batcher("timed-test", "encoder", Model(), max_batch=64, max_wait_s=0)

    async def scenario() -> float:
        started = asyncio.get_running_loop().time()
        for value in range(3):
            await batcher(rows(value))
        return asyncio.get_running_loop().time() - started

    took = asyncio.run(scenario())
    recorded = REGISTRY.get_sample_value("vae_inference_seconds_sum", labels) - sum_before
    assert REGISTRY.get_sample_value("vae_inference_seconds_count", labels) - count_before == 3
    assert 0 < recorded <= took
