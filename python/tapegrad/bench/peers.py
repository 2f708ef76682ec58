"""The libraries tapegrad is compared with -- NumPy always, PyTorch when it is installed (it is
never a dependency) -- and the glue every case needs: the same data as each library's tensor,
any library's result as NumPy arrays, and the wait for a device to finish."""
import numpy as np

import tapegrad as tg

try:
    import torch
except ImportError:  # the suite then compares with NumPy only; the table drops torch's columns
    torch = None


def has_torch(device="cpu"):
    """Whether PyTorch can be a peer on `device` (installed, and with CUDA for "cuda")."""
    return torch is not None and (device == "cpu" or torch.cuda.is_available())


def as_tg(array, device="cpu", dtype=None, requires_grad=False):
    """A tapegrad tensor holding a copy of `array` (dtype: a tapegrad dtype name such as
    "bfloat16"; the default keeps the array's)."""
    t = tg.tensor(array, device=device)
    if dtype is not None:
        t = t.to(getattr(tg, dtype))
    return t.requires_grad_(True) if requires_grad else t


def as_torch(array, device="cpu", dtype=None, requires_grad=False):
    """A PyTorch tensor holding a copy of `array` (never sharing it: a peer's in-place update
    must not reach another peer's data)."""
    t = torch.tensor(array, device=device)
    if dtype is not None:
        t = t.to(getattr(torch, dtype))
    return t.requires_grad_(True) if requires_grad else t


def to_numpy(value):
    """A flat list of NumPy arrays (copies) from a result: a tensor of any library, a number, or
    a tuple / list of those. bfloat16 comes back as float32 (NumPy has no bfloat16)."""
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in to_numpy(v)]
    if isinstance(value, tg.Tensor):
        return [np.array(value.detach().cpu().numpy())]
    if torch is not None and isinstance(value, torch.Tensor):
        v = value.detach().cpu()
        return [(v.float() if v.dtype == torch.bfloat16 else v).numpy().copy()]
    return [np.array(value)]


def fwd_bwd_step(forward, inputs, grad_out=None):
    """A training-like call for either library: clear the inputs' gradients, y = forward(*inputs),
    backward (with grad_out, or from a scalar y); returns y and the inputs' gradients, so that
    the check compares both."""
    def step():
        for t in inputs:
            t.grad = None
        y = forward(*inputs)
        if grad_out is None:
            y.backward()
        else:
            y.backward(grad_out)
        return (y, *(t.grad for t in inputs))
    return step


def _no_sync():
    pass


def sync_for(peer, device):
    """What ends a timed run on `device`: the device's synchronize for a GPU, nothing on a CPU."""
    if device == "cpu":
        return _no_sync
    if peer == "tapegrad":
        return tg.cuda.synchronize
    if peer == "torch":
        return torch.cuda.synchronize
    raise ValueError(f"no way to synchronise peer {peer!r} on {device}")


def rng(seed=0):
    """Every case draws its inputs from a fixed seed: reruns time the same numbers."""
    return np.random.default_rng(seed)
