"""Training on the GPU: optimizers and modules against the CPU (float32 and bfloat16), gradient
clipping, checkpoints of device tensors, layers that build their masks and states on the input's
device, training steps that never wait for the GPU, and the examples with --device cuda."""
from pathlib import Path

import numpy as np
import pytest

import tapegrad as tg
from helpers import BF16_ULP, assert_close, bf16_bits, bf16_pair

HAS_GPU = tg.cuda.is_available()
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU available")


@gpu
@pytest.mark.parametrize("max_norm", [0.1, 1e3])
def test_clip_grad_norm_on_the_gpu_matches_cpu(max_norm):
    rng = np.random.default_rng(16)
    grads = [rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal(5)]
    clipped = []
    for device in ("cpu", "cuda"):
        params = [tg.zeros(g.shape, dtype=tg.float32 if g.dtype == np.float32 else tg.float64, device=device,
                           requires_grad=True) for g in grads]
        for p, g in zip(params, grads):
            p.grad = tg.tensor(g, device=device)
        total = tg.nn.utils.clip_grad_norm_(params, max_norm)
        clipped.append((total.item(), [p.grad.cpu().numpy() for p in params]))
    np.testing.assert_allclose(clipped[1][0], clipped[0][0], rtol=1e-12)
    for a, b in zip(clipped[1][1], clipped[0][1]):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    if max_norm > 1:  # nothing to clip: the gradients are untouched
        for a, g in zip(clipped[1][1], grads):
            np.testing.assert_array_equal(a, g)


@gpu
def test_an_lstm_classifier_step_never_waits_for_the_gpu():
    """The sentiment example's kind of step: embedding, a two-layer LSTM, a sigmoid head, binary
    cross-entropy, backward, clipping and Adam, with sync debug mode 'error' on throughout."""
    tg.manual_seed(0)
    nn, F = tg.nn, tg.nn.functional
    emb, lstm, head = nn.Embedding(30, 8), nn.LSTM(8, 12, num_layers=2, dropout=0.1), nn.Linear(12, 1)
    modules = [m.to("cuda") for m in (emb, lstm, head)]
    params = [p for m in modules for p in m.parameters()]
    opt = tg.optim.Adam(params, lr=1e-2)
    ids = tg.randint(0, 30, (5, 7), device="cuda")
    labels = (tg.rand(5, device="cuda") < 0.5).float()
    losses = []
    for _ in range(3):
        tg.cuda.set_sync_debug_mode("error")
        try:
            out, _ = lstm(emb(ids))
            loss = F.binary_cross_entropy(tg.sigmoid(head(out[:, -1]).reshape(-1)), labels)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        finally:
            tg.cuda.set_sync_debug_mode("default")
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


def _masked_lm_example(monkeypatch):
    """examples/masked_lm.py as a module (its model and batches)."""
    import importlib.util
    path = Path(__file__).resolve().parents[2] / "examples" / "masked_lm.py"
    monkeypatch.syspath_prepend(str(path.parent))  # its `common` helpers
    spec = importlib.util.spec_from_file_location("masked_lm_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@gpu
@pytest.mark.parametrize("arch", ["doc", "encoder"])
@pytest.mark.parametrize("optimizer", ["SGD", "Adam", "AdamW", "RMSprop"])
def test_a_masked_lm_training_step_never_waits_for_the_gpu(arch, optimizer, monkeypatch):
    """The example's step on device-resident batches: embeddings, attention with a padding mask,
    dropout, the masked positions gathered, cross_entropy, backward, gradient clipping and the
    optimizer. In sync debug mode 'error' any wait of the host raises."""
    example = _masked_lm_example(monkeypatch)
    tg.manual_seed(0)
    rng = np.random.default_rng(0)
    vocab, seq_len = 40, 12
    model = example.MaskedLMModel(vocab, 16, 1, 2, seq_len, dropout=0.1, arch=arch).to("cuda")
    params = list(model.parameters())
    opt = {"SGD": lambda: tg.optim.SGD(params, lr=0.1, momentum=0.9), "Adam": lambda: tg.optim.Adam(params, lr=1e-2),
           "AdamW": lambda: tg.optim.AdamW(params, lr=1e-2), "RMSprop": lambda: tg.optim.RMSprop(params, lr=1e-3)}[optimizer]()
    rows = rng.integers(len(example.SPECIALS), vocab, size=(4, seq_len))
    rows[:, -3:] = example.PAD
    batch = example.masked_batch(rows, vocab, rng, device="cuda")
    losses = []
    for _ in range(3):
        tg.cuda.set_sync_debug_mode("error")
        try:
            ids, positions, targets = batch
            loss = tg.nn.functional.cross_entropy(model(ids, positions), targets)
            opt.zero_grad()
            loss.backward()
            tg.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            with pytest.raises(RuntimeError, match="sync debug mode"):
                loss.item()
        finally:
            tg.cuda.set_sync_debug_mode("default")
        losses.append(loss.item())
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


# ---- optimizers and modules ------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("make", [
    lambda ps: tg.optim.SGD(ps, lr=0.1),
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01),
    lambda ps: tg.optim.Adam(ps, lr=0.01, weight_decay=0.01),
    lambda ps: tg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
])
def test_optimizers_on_cuda_match_cpu(make):
    rng = np.random.default_rng(0)
    # The big one spans two chunks of the multi-tensor kernel and ends in a partial vector; the
    # last starts 8 bytes into its block, so it takes the unaligned (one element at a time) path.
    shapes = [(3, 4), (70001,), (1,), (6,)]
    init = [rng.standard_normal(s) for s in shapes]
    final = {}
    for device in ("cpu", "cuda"):
        ps = [tg.tensor(a, device=device, requires_grad=True) for a in init[:-1]]
        ps.append(tg.tensor(np.concatenate([[0.0], init[-1]]), device=device)[1:].requires_grad_())
        opt = make(ps)
        for step in range(3):
            opt.zero_grad()
            sum(((p * p) * (i + 1.0)).sum() for i, p in enumerate(ps)).backward()
            opt.step()
        final[device] = [p.detach().cpu().numpy() for p in ps]
        assert all(p.is_cuda == (device == "cuda") for p in ps)
    for a, b in zip(final["cuda"], final["cpu"]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@gpu
def test_module_cuda_trains_and_saves(tmp_path):
    tg.manual_seed(0)
    model = tg.nn.Sequential(tg.nn.Linear(4, 8), tg.nn.ReLU(), tg.nn.Linear(8, 1)).cuda()
    assert all(p.is_cuda for p in model.parameters())
    x = tg.randn(16, 4, device="cuda")
    y = tg.randn(16, 1, device="cuda")
    opt = tg.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    path = tmp_path / "m.safetensors"
    tg.save(model.state_dict(), str(path))
    loaded = tg.load(str(path))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(loaded[k].numpy(), v.cpu().numpy())
    model.cpu()
    assert not any(p.is_cuda for p in model.parameters())


BF16 = tg.bfloat16


@gpu
@pytest.mark.parametrize("make", [
    lambda ps: tg.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda ps: tg.optim.Adam(ps, lr=0.01),
    lambda ps: tg.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
    lambda ps: tg.optim.RMSprop(ps, lr=0.01, momentum=0.5),
])
def test_bfloat16_optimizers_on_cuda_match_cpu(make):
    init = [np.random.default_rng(0).standard_normal(s).astype(np.float32) for s in [(3, 4), (70000,)]]
    final, states = {}, {}
    for device in ("cpu", "cuda"):
        ps = [tg.tensor(a, device=device).to(BF16).requires_grad_() for a in init]
        opt = make(ps)
        for _ in range(3):
            opt.zero_grad()
            sum(((p.float() ** 2) * (i + 1.0)).sum() for i, p in enumerate(ps)).backward()
            opt.step()
        assert all(p.dtype == BF16 for p in ps)
        final[device] = [p.detach().cpu().float().numpy() for p in ps]
        states[device] = [v.dtype for s in opt.state_dict()["state"].values() for v in s.values() if isinstance(v, tg.Tensor)]
    assert set(states["cuda"]) == {tg.float32} == set(states["cpu"])
    for a, b in zip(final["cuda"], final["cpu"]):  # float32 math in another order: at most one rounding apart
        np.testing.assert_allclose(a, b, rtol=BF16_ULP, atol=1e-30)


@gpu
def test_bfloat16_checkpoint_of_cuda_tensors(tmp_path):
    c, g = bf16_pair((5, 3))
    tg.save({"w": g}, tmp_path / "b.safetensors")
    back = tg.load(tmp_path / "b.safetensors")["w"]
    assert back.dtype == BF16 and not back.is_cuda
    np.testing.assert_array_equal(bf16_bits(back), bf16_bits(c))


@gpu
def test_layers_build_their_masks_and_states_on_the_inputs_device():
    # MHA's merged masks, the causal mask of attention_weights and LSTM's zero states are made
    # inside the layers: they must be made on the device of the inputs
    tg.manual_seed(0)
    mha, lstm = tg.nn.MultiHeadAttention(8, 2), tg.nn.LSTM(8, 4, num_layers=2)
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32))
    kpm = tg.tensor(np.array([[False] * 5, [False, False, False, True, True]]))
    causal = tg.tensor(np.triu(np.ones((5, 5), bool), 1))
    F = tg.nn.functional
    cpu = [mha(x, attn_mask=causal, key_padding_mask=kpm, need_weights=True), lstm(x)[0],
           F.attention_weights(x, x, is_causal=True)]
    mha.cuda(), lstm.cuda()
    xg = x.cuda()
    gpu = [mha(xg, attn_mask=causal.cuda(), key_padding_mask=kpm.cuda(), need_weights=True), lstm(xg)[0],
           F.attention_weights(xg, xg, is_causal=True)]
    flat = lambda outs: [t for o in outs for t in (o if isinstance(o, tuple) else (o,))]
    for g, c in zip(flat(gpu), flat(cpu)):
        assert g.is_cuda
        assert_close(g.cpu(), c, rtol=1e-4, atol=1e-5)


@gpu
@pytest.mark.parametrize("example", [("matmul_sgd.py", "--steps", "20"), ("linear_regression.py", "--epochs", "20"),
                                     ("sigmoid_neuron.py", "--epochs", "20"),
                                     ("masked_lm.py", "--steps", "2", "--vocab", "256", "--dim", "16", "--heads", "2",
                                      "--layers", "1", "--batch-size", "4", "--seq-len", "16")])
def test_examples_run_with_device_cuda(example, tmp_path):
    from test_examples import run_example  # runs examples/NAME as a user does, with this tapegrad
    out = run_example(*example, "--device", "cuda", "--out", str(tmp_path), timeout=600)
    assert "saved" in out
