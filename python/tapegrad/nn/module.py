"""Module and Parameter: the bookkeeping of layers (PyTorch's layout, so state_dict keys and
habits carry over). Modules hold parameters, buffers and child modules; nothing here computes."""
from collections import OrderedDict

from .. import _C
from .._tensor import tensor as _tensor
from ..autograd import no_grad


class Parameter(_C.Tensor):
    """A tensor that a Module registers as trainable (requires_grad=True by default)."""

    def __init__(self, data=None, requires_grad=True):
        if data is None:
            data = _C.zeros(0)
        elif not isinstance(data, _C.Tensor):
            data = _tensor(data)
        super().__init__(data.detach(), requires_grad)

    def __reduce_ex__(self, proto):
        return (Parameter, (_tensor(self.detach().numpy()), self.requires_grad))


class _ModuleHookHandle:
    """What the register_forward_*hook methods return: .remove() unregisters the hook."""

    def __init__(self, table, key):
        self._table, self._key = table, key

    def remove(self):
        self._table.pop(self._key, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class Module:
    """Base class of layers. Subclasses assign Parameters, Modules and buffers as attributes in
    __init__ and define forward(); calling the module calls forward."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ----
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError("Module.__init__() must be called before assigning attributes")
        for table in (self._parameters, self._buffers, self._modules):
            table.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        else:
            object.__setattr__(self, name, value)
            return
        self.__dict__.pop(name, None)

    def __getattr__(self, name):
        d = self.__dict__
        for table in ("_parameters", "_buffers", "_modules"):
            if table in d and name in d[table]:
                return d[table][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name):
        for table in (self._parameters, self._buffers, self._modules):
            if name in table:
                del table[name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name, param):
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            self.__setattr__(name, param)

    def register_buffer(self, name, value):
        """A tensor that is part of the state (saved, moved by to()) but not trained."""
        self._buffers[name] = value

    def add_module(self, name, module):
        self._modules[name] = module

    # ---- traversal ----
    def named_modules(self, prefix=""):
        yield prefix, self
        for name, child in self._modules.items():
            if child is not None:
                yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        for _, m in self.named_modules():
            yield m

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self, prefix="", recurse=True):
        seen = set()
        mods = self.named_modules(prefix) if recurse else [(prefix, self)]
        for mod_prefix, mod in mods:
            for name, p in mod._parameters.items():
                if p is None or id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), p

    def parameters(self, recurse=True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    @property
    def trainable_variables(self):
        """The parameters that require grad, as a list (Keras' name, used by the documents)."""
        return [p for p in self.parameters() if p.requires_grad]

    def named_buffers(self, prefix=""):
        for mod_prefix, mod in self.named_modules(prefix):
            for name, b in mod._buffers.items():
                if b is not None:
                    yield (f"{mod_prefix}.{name}" if mod_prefix else name), b

    # ---- modes ----
    def train(self, mode=True):
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self):
        return self.train(False)

    def zero_grad(self, set_to_none=True):
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def requires_grad_(self, requires_grad=True):
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    # ---- state ----
    def state_dict(self):
        """Parameters and buffers by dotted name, as detached tensors sharing memory."""
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = p.detach()
        for name, b in self.named_buffers():
            out[name] = b.detach()
        return out

    def load_state_dict(self, state_dict, strict=True):
        """Copies values into the existing parameters. strict: the keys must match exactly.
        Shapes must always match. Returns (missing_keys, unexpected_keys)."""
        own = dict(self.named_parameters())
        own.update(dict(self.named_buffers()))
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict: missing keys {missing}, unexpected keys {unexpected}")
        for k, target in own.items():
            if k not in state_dict:
                continue
            value = state_dict[k]
            value = value if isinstance(value, _C.Tensor) else _tensor(value)
            if tuple(value.shape) != tuple(target.shape):
                raise ValueError(f"load_state_dict: '{k}' has shape {tuple(value.shape)} in the checkpoint "
                                 f"but {tuple(target.shape)} in the model")
            with no_grad():
                target.copy_(value)
        return missing, unexpected

    def to(self, device=None, dtype=None):
        """Moves (or casts) every parameter and buffer, in place of the old ones."""
        for m in self.modules():
            for name, p in list(m._parameters.items()):
                if p is None:
                    continue
                moved = p.detach().to(device, dtype) if device is not None else p.detach().to(None, dtype)
                if moved.data_ptr() != p.data_ptr() or moved.dtype != p.dtype:
                    m._parameters[name] = Parameter(moved, p.requires_grad)
            for name, b in list(m._buffers.items()):
                if b is not None:  # a dtype casts floating buffers only (a step counter stays int64), as PyTorch
                    m._buffers[name] = b.to(device, dtype if b.dtype.is_floating_point else None)
        return self

    def cuda(self, device=None):
        """Moves every parameter and buffer to the GPU ("cuda" or "cuda:N")."""
        return self.to("cuda" if device is None else (f"cuda:{device}" if isinstance(device, int) else device))

    def cpu(self):
        return self.to("cpu")

    def float(self):
        return self.to(dtype=_C.dtype.float32)

    def double(self):
        return self.to(dtype=_C.dtype.float64)

    def apply(self, fn):
        for m in self.modules():
            fn(m)
        return self

    # ---- calling ----
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        hooks = self.__dict__.get("_forward_hooks")
        if not hooks:
            return self.forward(*args, **kwargs)
        for hook in list(hooks["pre"].values()):  # hook(module, args) -> None or new args
            result = hook(self, args)
            if result is not None:
                args = result if isinstance(result, tuple) else (result,)
        output = self.forward(*args, **kwargs)
        for hook in list(hooks["post"].values()):  # hook(module, args, output) -> None or a new output
            result = hook(self, args, output)
            if result is not None:
                output = result
        return output

    def _add_forward_hook(self, kind, hook):
        hooks = self.__dict__.setdefault("_forward_hooks", {"pre": OrderedDict(), "post": OrderedDict()})
        key = object()
        hooks[kind][key] = hook
        return _ModuleHookHandle(hooks[kind], key)

    def register_forward_pre_hook(self, hook):
        """hook(module, args) runs before forward; a non-None result replaces the positional args
        (a tuple, or one value). Returns a handle with .remove()."""
        return self._add_forward_hook("pre", hook)

    def register_forward_hook(self, hook):
        """hook(module, args, output) runs after forward; a non-None result replaces the output.
        Returns a handle with .remove()."""
        return self._add_forward_hook("post", hook)

    def extra_repr(self):
        return ""

    def __repr__(self):
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return lines[0] + ")" if len(lines) == 1 else "\n".join(lines) + "\n)"


class ModuleList(Module):
    """Holds modules in order (registered as "0", "1", ...); indexable and iterable."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, i):
        return list(self._modules.values())[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Calls its modules in order. Accepts modules as arguments or one list (Keras style)."""

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], (list, tuple)):
            modules = modules[0]
        super().__init__(modules)

    def add(self, module):
        """Keras' name for append."""
        self.append(module)

    def forward(self, x):
        for m in self:
            x = m(x)
        return x
