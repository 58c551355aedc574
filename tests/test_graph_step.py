"""The bookkeeping of the CUDA-graph training step, on the CPU with a stand-in for CUDA graphs
(the capture itself runs on the GPU: tests/test_training.py::test_the_cuda_graph_step_trains_...)."""

import contextlib

import pytest
import torch

from core.train import graph_step
from core.train.graph_step import GraphedStep


class FakeGraph:
    """Records the step at capture and runs it again at each replay, as a CUDA graph would."""

    def __init__(self):
        self.body = None

    def replay(self):
        self.body()


@pytest.fixture
def fake_cuda(monkeypatch):
    state = {"capturing": None, "fail": False}

    @contextlib.contextmanager
    def graph(g, capture_error_mode="global"):
        assert capture_error_mode == "thread_local"
        state["capturing"] = g
        try:
            if state["fail"]:
                raise RuntimeError("operation not permitted when stream is capturing")
            yield
        finally:
            state["capturing"] = None

    class Stream:
        def wait_stream(self, other):
            pass

    monkeypatch.setattr(graph_step.torch.cuda, "CUDAGraph", FakeGraph)
    monkeypatch.setattr(graph_step.torch.cuda, "graph", graph)
    monkeypatch.setattr(graph_step.torch.cuda, "Stream", Stream)
    monkeypatch.setattr(graph_step.torch.cuda, "stream", lambda s: contextlib.nullcontext())
    monkeypatch.setattr(graph_step.torch.cuda, "current_stream", lambda: Stream())
    monkeypatch.setattr(graph_step.torch.cuda, "synchronize", lambda: None)
    return state


def make_step(state, calls):
    """A step whose result is the batch's sum; at capture it binds itself to the static batch."""
    out = {"total": torch.zeros(())}

    def step(b):
        g = state["capturing"]
        if g is not None:  # capture: record, do not run
            calls.append("capture")

            def body(b=b):
                out["total"].copy_(b["x"].sum())

            g.body = body
            return out
        calls.append("eager")
        return {"total": b["x"].sum()}

    return step


def test_warm_up_eagerly_then_capture_once_and_replay_each_batch(fake_cuda):
    calls: list = []
    step = GraphedStep(make_step(fake_cuda, calls), warmup=3)
    results = [float(step({"x": torch.full((2, 3), float(i))})["total"]) for i in range(6)]
    assert results == [6.0 * i for i in range(6)]  # every batch's own step, captured or not
    assert calls == ["eager"] * 3 + ["capture"]  # the replays run no Python step
    assert len(step.graphs) == 1 and step.failed is None


def test_results_are_copies_the_next_replay_does_not_overwrite(fake_cuda):
    step = GraphedStep(make_step(fake_cuda, []), warmup=0)
    first = step({"x": torch.ones(2, 2)})
    step({"x": torch.zeros(2, 2)})
    assert float(first["total"]) == 4.0


def test_each_shape_gets_its_graph_and_too_many_shapes_run_eagerly(fake_cuda):
    calls: list = []
    step = GraphedStep(make_step(fake_cuda, calls), warmup=1, max_shapes=2)
    for n in (2, 2, 3, 3, 2, 3):
        step({"x": torch.ones(n, 2)})
    assert calls == ["eager", "capture", "eager", "capture"] and len(step.graphs) == 2
    calls.clear()
    assert float(step({"x": torch.ones(5, 2)})["total"]) == 10.0
    assert float(step({"x": torch.ones(5, 2)})["total"]) == 10.0
    assert calls == ["eager", "eager"] and len(step.graphs) == 2


def test_a_failed_capture_goes_on_eagerly_and_says_why(fake_cuda):
    calls: list = []
    fake_cuda["fail"] = True
    step = GraphedStep(make_step(fake_cuda, calls), warmup=1)
    totals = [float(step({"x": torch.full((2,), 3.0)})["total"]) for _ in range(4)]
    assert totals == [6.0] * 4 and "not permitted" in step.failed
    assert calls == ["eager"] * 4 and not step.graphs  # one try at capturing, then eager for good
