"""The training step replayed from one CUDA graph (--graph): when it is used, checkpoints that resume with or
without it, the trainer's side of a replay (emulated on the CPU), and on a GPU the same training as eager, an
exact resume, and eager training when capture fails."""
import math

import pytest
import torch

from helpers import HAS_GPU, random_gray_pngs, require
from mdrn_fast.cuda_graph import GraphedStep
from mdrn_fast.errors import UsageError
from mdrn_fast.train import TrainConfig, _make_capturable, _portable, _scheduler, graph_wanted, run

CUDA = torch.device("cuda")  # a device object only: graph_wanted decides without touching a GPU
needs_gpu = pytest.mark.skipif(not HAS_GPU, reason="needs a CUDA GPU")


@pytest.mark.parametrize("graph, device, amp, world, wanted", [
    ("auto", "cpu", "bf16", 1, False), ("off", "cpu", "off", 1, False), ("auto", "cuda", "bf16", 1, True),
    ("auto", "cuda", "off", 1, True), ("auto", "cuda", "fp16", 1, False), ("auto", "cuda", "bf16", 2, False),
    ("on", "cuda", "bf16", 1, True), ("off", "cuda", "bf16", 1, False),
])
def test_auto_graphs_one_gpu_without_fp16(graph, device, amp, world, wanted):
    assert graph_wanted(TrainConfig(graph=graph, amp=amp), torch.device(device), world) is wanted


@pytest.mark.parametrize("device, amp, world, words", [
    ("cpu", "bf16", 1, "CUDA graphs need a CUDA device"), ("cuda", "fp16", 1, "not with --amp fp16"),
    ("cuda", "bf16", 2, "one process only"),
])
def test_graph_on_where_it_cannot_be_is_refused(device, amp, world, words):
    with pytest.raises(UsageError, match=f"--graph on: {words}"):
        graph_wanted(TrainConfig(graph="on", amp=amp), torch.device(device), world)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_a_graphed_runs_checkpoint_keeps_plain_learning_rates():
    """A graphed run's Adam holds its rate as a tensor and is capturable; its checkpoint holds the scheduled rate
    as a number and capturable off, and loads into an eager run's optimizer, which then steps (on the CPU,
    where a capturable Adam could not)."""
    cfg = TrainConfig(lr=1e-3, steps=10)
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.Adam([w], lr=cfg.lr)
    sched = _scheduler(opt, cfg)
    _make_capturable(opt)
    for _ in range(4):
        sched.step()
    group = opt.param_groups[0]
    assert isinstance(group["lr"], torch.Tensor) and group["capturable"]
    scheduled = float(group["lr"])
    assert scheduled == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 4 / 10)))
    optimizer_state, scheduler_state = _portable(opt.state_dict(), sched.state_dict())
    saved = optimizer_state["param_groups"][0]
    assert type(saved["lr"]) is float and saved["lr"] == scheduled and saved["capturable"] is False
    assert all(type(lr) is float for lr in scheduler_state["_last_lr"])
    assert isinstance(opt.param_groups[0]["lr"], torch.Tensor), "the running optimizer keeps its tensor"

    v = torch.nn.Parameter(torch.ones(3))
    eager = torch.optim.Adam([v], lr=cfg.lr)
    eager_sched = _scheduler(eager, cfg)
    eager.load_state_dict(optimizer_state)
    eager_sched.load_state_dict(scheduler_state)
    v.grad = torch.ones(3)
    eager.step()
    eager_sched.step()
    assert eager.param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5 * (1 + math.cos(math.pi * 5 / 10)))
    assert torch.all(v < 1)


# --- on a GPU ---------------------------------------------------------------------------------------------------

@needs_gpu
def test_a_graphed_step_follows_its_inputs_and_returns_the_graphs_output():
    w = torch.randn(5, 5, device="cuda")
    step = GraphedStep(lambda x: x @ w, warmup=2)
    xs = [torch.randn(3, 5, device="cuda") for _ in range(5)]
    outs = [step(x).clone() for x in xs]
    assert step.captured and step.calls == 5
    for x, out in zip(xs, outs):
        torch.testing.assert_close(out, x @ w)
    assert step(xs[0]).data_ptr() == step(xs[1]).data_ptr(), "after capture: the graph's own output"


@needs_gpu
def test_a_capture_that_fails_raises_or_goes_on_eagerly():
    def reads_the_host(x):
        return x * float(x.sum())  # a device-to-host read: not allowed under capture

    strict = GraphedStep(reads_the_host, warmup=1)
    strict(torch.ones(2, device="cuda"))  # the warm-up runs eagerly
    with pytest.raises(RuntimeError):
        strict(torch.ones(2, device="cuda"))
    reasons = []
    step = GraphedStep(reads_the_host, warmup=1, on_failure=reasons.append)
    outs = [step(torch.full((2,), float(i), device="cuda")) for i in range(4)]
    assert not step.captured and len(reasons) == 1 and reasons[0] == step.failure
    for i, out in enumerate(outs):
        torch.testing.assert_close(out, torch.full((2,), 2.0 * i * i, device="cuda"))


@pytest.fixture
def images(tmp_path):
    return random_gray_pngs(tmp_path / "imgs", 3, (40, 36))


def gpu_config(images, out, graph, **kw):
    base = dict(preset="mdrn-tiny", overrides={"channels": 8, "blocks": 2}, train_set=str(images), val_images=0,
                patch=16, batch=4, steps=10, backend="torch", device="cuda", amp="off", graph=graph,
                out=str(out), ckpt_every=5, log_every=1, sigma="0-50")
    return TrainConfig(**(base | kw))


def _parameters(result):
    return [p.detach().clone() for p in result["model"].parameters()]


@needs_gpu
@pytest.mark.parametrize("backend", ["torch", "triton", "cuda"])
@pytest.mark.parametrize("amp", ["off", "bf16"])
def test_graphed_training_follows_eager_training(images, tmp_path, backend, amp):
    """10 steps, the cosine rate changing every step: the same losses and parameters with and without the
    graph (the same kernels run; only cuDNN's benchmark may pick other algorithms)."""
    require(backend)
    eager = run(gpu_config(images, tmp_path / "eager", "off", backend=backend, amp=amp))
    graphed = run(gpu_config(images, tmp_path / "graph", "on", backend=backend, amp=amp))
    tol = dict(rtol=1e-2, atol=1e-3) if amp == "bf16" else dict(rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(torch.tensor(graphed["losses"]), torch.tensor(eager["losses"]), **tol)
    for p, q in zip(_parameters(graphed), _parameters(eager)):
        torch.testing.assert_close(p, q, **tol)


@needs_gpu
def test_a_graphed_run_resumes_as_if_never_stopped(images, tmp_path):
    full = run(gpu_config(images, tmp_path / "full", "on"))
    run(gpu_config(images, tmp_path / "split", "on"), stop_after=5)
    second = run(gpu_config(images, tmp_path / "split", "on"), resume=str(tmp_path / "split" / "checkpoint.pt"))
    assert len(second["losses"]) == 5
    torch.testing.assert_close(torch.tensor(second["losses"]), torch.tensor(full["losses"][5:]),
                               rtol=1e-4, atol=1e-5)
    for p, q in zip(_parameters(second), _parameters(full)):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


@needs_gpu
def test_an_objective_that_cannot_be_captured_trains_eagerly_and_says_so(images, tmp_path, capsys):
    from mdrn_fast.train import Reconstruction, build_model

    class ReadsTheHost(Reconstruction):
        def forward(self, clean, noisy, sigma):
            loss, stats = super().forward(clean, noisy, sigma)
            return loss * (1.0 + 0.0 * float(loss)), stats  # a host read: the capture fails

    cfg = gpu_config(images, tmp_path / "host", "on")
    result = run(cfg, objective=ReadsTheHost(build_model(cfg)))
    eager = run(gpu_config(images, tmp_path / "eager", "off"))
    shown = capsys.readouterr()
    assert "could not be captured" in shown.out + shown.err
    for p, q in zip(_parameters(result), _parameters(eager)):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


# --- the trainer's side of a graphed step, emulated on the CPU ---------------------------------------------------

class ReplayOnTheCPU:
    """GraphedStep's contract without a GPU: inputs copied into static buffers, three eager warm-up calls, and
    from then on the same output tensors every call, overwritten by the next one (as a replay does)."""

    def __init__(self, fn, warmup: int = 3, on_failure=None):
        self.fn, self.warmup, self.calls, self.static, self.output = fn, warmup, 0, None, None

    def __call__(self, *inputs):
        if self.static is None:
            self.static = [x.clone() for x in inputs]
        for buffer, x in zip(self.static, inputs):
            buffer.copy_(x)
        self.calls += 1
        out = self.fn(*self.static)
        if self.calls <= self.warmup:
            return out
        if self.output is None:
            self.output = out.clone()
        return self.output.copy_(out)


@pytest.fixture
def cpu_graph(monkeypatch):
    """train.run taking its graphed path on the CPU: the step through ReplayOnTheCPU, the learning rate a tensor
    that the scheduler fills (capturable stays off: the CPU's Adam has no capturable kernel)."""
    import mdrn_fast.train as train

    def make_capturable(opt):
        _make_capturable(opt)
        for group in opt.param_groups:
            group["capturable"] = False

    monkeypatch.setattr(train, "graph_wanted", lambda cfg, device, world: cfg.graph == "on")
    monkeypatch.setattr(train, "GraphedStep", ReplayOnTheCPU)
    monkeypatch.setattr(train, "_make_capturable", make_capturable)


def cpu_config(images, out, graph, **kw):
    base = dict(preset="mdrn-tiny", overrides={"channels": 8, "blocks": 2}, train_set=str(images), val_images=0,
                patch=16, batch=2, steps=8, workers=0, backend="torch", device="cpu", graph=graph, out=str(out),
                ckpt_every=4, log_every=4, sigma="0-50")  # 4 losses held at once, read together
    return TrainConfig(**(base | kw))


def test_the_graphed_path_trains_as_eager_and_resumes_exactly(images, tmp_path, cpu_graph):
    """Every step's own loss (not the last one's, which a replay overwrites), the scheduled rate reaching the
    optimizer each step, and a checkpoint of the graphed path that resumes it exactly."""
    eager = run(cpu_config(images, tmp_path / "eager", "off"))
    graphed = run(cpu_config(images, tmp_path / "graph", "on"))
    assert len(set(graphed["losses"])) == len(graphed["losses"]) == 8
    torch.testing.assert_close(torch.tensor(graphed["losses"]), torch.tensor(eager["losses"]), rtol=1e-6, atol=0)
    for p, q in zip(_parameters(graphed), _parameters(eager)):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-7)
    run(cpu_config(images, tmp_path / "split", "on"), stop_after=4)
    second = run(cpu_config(images, tmp_path / "split", "on"), resume=str(tmp_path / "split" / "checkpoint.pt"))
    assert second["losses"] == graphed["losses"][4:]
    for p, q in zip(_parameters(second), _parameters(graphed)):
        assert torch.equal(p, q)
