"""Optimizer base: parameter groups, per-parameter state, PyTorch's state_dict layout.

Each subclass's `_update(group, params, state)` makes ONE call into C++ that updates every
parameter of the list (the loop over parameters is in C++, not here)."""
from .. import _C


class Optimizer:
    defaults = {}

    def __init__(self, params, defaults):
        if isinstance(params, _C.Tensor):
            raise TypeError("optimizer: params must be an iterable of tensors or of dicts, got a single tensor")
        params = list(params)
        if not params:
            raise ValueError("optimizer: got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            group = dict(defaults)
            group.update(g)
            group["params"] = list(group["params"])
            for p in group["params"]:
                if not isinstance(p, _C.Tensor) or not p.is_leaf:
                    raise ValueError("optimizer: can only optimize leaf tensors")
            self.param_groups.append(group)
        # state[name][i] for the i-th parameter over all groups, in order.
        self._state = {}
        self._validate()

    def _validate(self):
        """PyTorch's argument checks, for every group (a group may override the defaults)."""
        name = type(self).__name__
        for g in self.param_groups:
            if g.get("lr", 0) < 0:
                raise ValueError(f"{name}: invalid learning rate {g['lr']}")
            for key in ("momentum", "dampening", "weight_decay", "eps", "alpha"):
                if key in g and g[key] < 0:
                    raise ValueError(f"{name}: invalid {key} {g[key]} (must be >= 0)")
            if "betas" in g and not (0 <= g["betas"][0] < 1 and 0 <= g["betas"][1] < 1):
                raise ValueError(f"{name}: betas must be in [0, 1), got {g['betas']}")

    def _all_params(self):
        return [p for g in self.param_groups for p in g["params"]]

    def zero_grad(self, set_to_none=True):
        for p in self._all_params():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _state_lists(self, names, start, count):
        out = []
        for name in names:
            full = self._state.setdefault(name, [None] * len(self._all_params()))
            out.append(full[start:start + count])
        return out

    def _store(self, names, start, values):
        for name, vals in zip(names, values):
            self._state[name][start:start + len(vals)] = vals

    def step(self, closure=None):
        loss = closure() if closure is not None else None
        start = 0
        for g in self.param_groups:
            n = len(g["params"])
            self._update(g, g["params"], start)
            start += n
        return loss

    def apply_gradients(self, grads_and_vars):
        """Keras style: set each variable's gradient, then take one step over those variables."""
        pairs = list(grads_and_vars)
        chosen = {id(v) for _, v in pairs}
        saved = {}
        for p in self._all_params():
            if id(p) not in chosen:
                saved[id(p)] = p.grad
                p.grad = None
        for g, v in pairs:
            v.grad = None if g is None else g.detach()
        self.step()
        for p in self._all_params():
            if id(p) in saved:
                p.grad = saved[id(p)]

    # ---- state ----
    def state_dict(self):
        params = self._all_params()
        state = {}
        for name, values in self._state.items():
            for i, v in enumerate(values):
                if v is not None:
                    state.setdefault(i, {})[name] = v
        groups, idx = [], 0
        for g in self.param_groups:
            entry = {k: v for k, v in g.items() if k != "params"}
            entry["params"] = list(range(idx, idx + len(g["params"])))
            idx += len(g["params"])
            groups.append(entry)
        assert idx == len(params)
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
                len(a["params"]) != len(b["params"]) for a, b in zip(groups, self.param_groups)):
            raise ValueError("load_state_dict: the saved parameter groups do not match this optimizer's")
        for saved, group in zip(groups, self.param_groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        n = len(self._all_params())
        self._state = {}
        for i, entry in state_dict["state"].items():
            for name, v in entry.items():
                self._state.setdefault(name, [None] * n)[int(i)] = v


class SGD(Optimizer):
    """p -= lr * (momentum buffer of (g + weight_decay p)); nesterov looks one step ahead."""

    def __init__(self, params, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0, learning_rate=None):
        lr = learning_rate if learning_rate is not None else lr
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _update(self, g, params, start):
        (bufs,) = self._state_lists(["momentum_buffer"], start, len(params))
        bufs = _C._sgd_step(params, bufs, g["lr"], g["momentum"], g["dampening"], g["weight_decay"], g["nesterov"])
        self._store(["momentum_buffer"], start, [bufs])


class Adam(Optimizer):
    decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, learning_rate=None):
        lr = learning_rate if learning_rate is not None else lr
        if not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay))

    def _update(self, g, params, start):
        m, v, steps = self._state_lists(["exp_avg", "exp_avg_sq", "step"], start, len(params))
        steps = [0 if s is None else int(s) for s in steps]
        m, v, steps = _C._adam_step(params, m, v, steps, g["lr"], g["betas"][0], g["betas"][1], g["eps"],
                                    g["weight_decay"], self.decoupled)
        # A parameter that has never had a gradient has no state (as in PyTorch), not step 0.
        steps = [s if s else None for s in steps]
        self._store(["exp_avg", "exp_avg_sq", "step"], start, [m, v, steps])


class AdamW(Adam):
    """Adam with decoupled weight decay: p *= 1 - lr * weight_decay before the Adam step."""
    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, learning_rate=None):
        super().__init__(params, lr, betas, eps, weight_decay, learning_rate)


class RMSprop(Optimizer):
    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, learning_rate=None):
        lr = learning_rate if learning_rate is not None else lr
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay, momentum=momentum))

    def _update(self, g, params, start):
        sq, mom = self._state_lists(["square_avg", "momentum_buffer"], start, len(params))
        sq, mom = _C._rmsprop_step(params, sq, mom, g["lr"], g["alpha"], g["eps"], g["weight_decay"], g["momentum"])
        self._store(["square_avg", "momentum_buffer"], start, [sq, mom])
