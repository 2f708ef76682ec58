"""Threads. What is safe: separate graphs in separate threads (the GIL is released while kernels
and backward run, so they overlap), and backward passes in several threads into one shared leaf
(its .grad takes the gradients one at a time). Grad mode is per thread. Not safe: writing in
place to a tensor another thread is reading, or reading a leaf's .grad while a backward into it
runs. Run under ThreadSanitizer with:  TAPEGRAD_SANITIZE=thread bash tests/sanitize.sh tests/test_threads.py
"""
import threading

import numpy as np

import tapegrad as tg

THREADS = 4


def run_in_threads(fn, count=THREADS):
    """fn(i) in `count` threads started together; their results, and any exception re-raised."""
    results, errors = [None] * count, []
    start = threading.Barrier(count)

    def worker(i):
        try:
            start.wait()
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 (reported to the test below)
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def make_model_and_data(seed):
    """A two-layer MLP in float64 with 64 x 512 activations (past the size at which ops release
    the GIL), and its data; built from NumPy's generator so no thread touches tapegrad's."""
    rng = np.random.default_rng(seed)
    model = tg.nn.Sequential(tg.nn.Linear(32, 512), tg.nn.Tanh(), tg.nn.Linear(512, 1)).double()
    with tg.no_grad():
        for p in model.parameters():
            p.copy_(tg.tensor(rng.standard_normal(tuple(p.shape)) * 0.1))
    x = tg.tensor(rng.standard_normal((64, 32)))
    y = tg.tensor(rng.standard_normal((64, 1)))
    return model, x, y


def train(model, x, y, steps=200):
    opt = tg.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        opt.zero_grad()
        loss = tg.nn.functional.mse_loss(model(x), y)
        loss.backward()
        opt.step()
    return [p.detach().numpy().copy() for p in model.parameters()], loss.item()


def test_separate_models_in_threads_train_as_in_one_thread():
    alone = [train(*make_model_and_data(seed)) for seed in range(THREADS)]
    setups = [make_model_and_data(seed) for seed in range(THREADS)]
    together = run_in_threads(lambda i: train(*setups[i]))
    for (params_a, loss_a), (params_t, loss_t) in zip(alone, together):
        assert loss_a == loss_t
        for a, t in zip(params_a, params_t):
            np.testing.assert_array_equal(a, t)


def test_concurrent_backward_into_a_shared_leaf_accumulates_every_gradient():
    rng = np.random.default_rng(7)
    w = tg.tensor(rng.standard_normal((256, 256)), requires_grad=True)
    inputs = [tg.tensor(rng.standard_normal((128, 256))) for _ in range(THREADS)]
    rounds = 25

    def backward_many(i):
        for _ in range(rounds):
            ((inputs[i] @ w).tanh() ** 2).sum().backward()

    run_in_threads(backward_many)
    expected = np.zeros((256, 256))
    for x in inputs:  # d/dw sum(tanh(x w)^2) = x^T (2 tanh(z) (1 - tanh(z)^2))
        t = np.tanh(x.numpy() @ w.detach().numpy())
        expected += rounds * x.numpy().T @ (2 * t * (1 - t * t))
    np.testing.assert_allclose(w.grad.numpy(), expected, rtol=1e-10, atol=1e-9)


def test_grad_mode_is_per_thread():
    x = tg.ones(3, requires_grad=True)
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def without_grad():
        with tg.no_grad():
            seen["no_grad"] = (x * 2).requires_grad
            inside.set()
            release.wait(10)

    t = threading.Thread(target=without_grad)
    t.start()
    inside.wait(10)
    seen["main"] = (x * 2).requires_grad  # recorded here while the other thread is in no_grad
    release.set()
    t.join()
    assert seen == {"no_grad": False, "main": True}


def test_threads_recording_on_one_leaf_share_its_accumulator():
    w = tg.zeros(1000, requires_grad=True)

    def record_and_backward(i):
        for _ in range(50):
            (w * float(i + 1)).sum().backward()

    run_in_threads(record_and_backward)
    assert np.all(w.grad.numpy() == 50 * sum(range(1, THREADS + 1)))
