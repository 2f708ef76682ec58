"""Function transforms with torch.func's signatures: grad, value_and_grad, vjp, jvp, jacrev,
jacfwd and hessian, built on the tape (tg.autograd.grad with create_graph=True).

Each transform runs the function on its inputs marked as variables, and differentiates the
recorded graph. Because every backward formula is itself recorded (create_graph), a transform's
result can be differentiated again, which is how they compose: hessian(f) is
jacfwd(jacrev(f)).

Forward mode (jvp) is the double-vjp construction: for out = f(x), the vjp u -> J^T u is linear in
u, so differentiating <J^T u, t> with respect to u gives J t. It costs two reverse passes instead
of one forward pass, and needs every op's backward to be differentiable (tapegrad's are).
"""
from . import _C
from .autograd import grad as _autograd_grad

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacrev", "jacfwd", "hessian"]


def _tuple(x):
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _variables(primals):
    """The primals as tensors the tape records through, and whether an outer transform (or the
    caller) already tracks them (then the results keep their graph, so they can be differentiated
    again)."""
    outer = any(p.requires_grad for p in primals)
    xs = tuple(p if p.requires_grad else p.detach().requires_grad_(True) for p in primals)
    return xs, outer


def _grads(outputs, inputs, cotangents):
    """d<outputs, cotangents>/d(inputs), zeros for inputs the outputs do not depend on (also when
    no output depends on anything: the derivative of a constant)."""
    pairs = [(o, c) for o, c in zip(outputs, cotangents) if o.requires_grad]
    gs = [None] * len(inputs)
    if pairs:
        with _enable():
            gs = _autograd_grad([o for o, _ in pairs], list(inputs), [c for _, c in pairs], create_graph=True,
                                allow_unused=True)
    return tuple(g if g is not None else _C.zeros(*x.shape, dtype=x.dtype, device=x.device) for g, x in zip(gs, inputs))


class _enable:
    def __enter__(self):
        self.prev = _C.is_grad_enabled()
        _C._set_grad_enabled(True)

    def __exit__(self, *exc):
        _C._set_grad_enabled(self.prev)


def _finish(values, outer):
    """Results leave the transform detached unless something outside tracks the inputs."""
    if outer:
        return values
    return tuple(v.detach() if v is not None else None for v in values)


def _argnums_of(argnums, n):
    nums = _tuple(argnums)
    for a in nums:
        if not isinstance(a, int) or not -n <= a < n:
            raise ValueError(f"argnums {argnums!r} out of range for {n} positional arguments")
    return tuple(a % n for a in nums)


def _call_with(func, args, nums, xs):
    args = list(args)
    for a, x in zip(nums, xs):
        args[a] = x
    with _enable():
        return func(*args)


def vjp(func, *primals, has_aux=False):
    """(func(*primals), vjp_fn): vjp_fn(cotangents) gives the cotangents pulled back to each primal
    (a tuple, one per primal)."""
    xs, outer = _variables(primals)
    result = _call_with(func, xs, range(len(xs)), xs)
    out, aux = (result if has_aux else (result, None))
    outs = _tuple(out)

    def vjp_fn(cotangents):
        cts = _tuple(cotangents)
        if len(cts) != len(outs):
            raise ValueError(f"vjp: {len(cts)} cotangents for {len(outs)} outputs")
        for c, o in zip(cts, outs):
            if tuple(c.shape) != tuple(o.shape):
                raise ValueError(f"vjp: a cotangent of shape {tuple(c.shape)} for an output of shape {tuple(o.shape)}")
        return _finish(_grads(outs, xs, cts), outer or any(c.requires_grad for c in cts))

    out = out if outer else (tuple(o.detach() for o in outs) if isinstance(out, tuple) else out.detach())
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def grad(func, argnums=0, has_aux=False):
    """The gradient of a function returning a one-element tensor, with respect to the positional
    arguments argnums (a tuple of gradients when argnums is a tuple)."""
    def grad_fn(*args):
        return value_and_grad(func, argnums, has_aux)(*args)[1]
    return grad_fn


def value_and_grad(func, argnums=0, has_aux=False):
    """(func(*args), its gradient) as grad computes it; with has_aux, ((value, aux), gradient)."""
    def wrapper(*args):
        nums = _argnums_of(argnums, len(args))
        xs, outer = _variables([args[a] for a in nums])
        result = _call_with(func, args, nums, xs)
        value, aux = (result if has_aux else (result, None))
        if value.numel() != 1:
            raise ValueError(f"grad: the function must return a one-element tensor, got shape {tuple(value.shape)}")
        gs = _finish(_grads([value], xs, [_C.ones(*value.shape, dtype=value.dtype, device=value.device)]), outer)
        g = gs if isinstance(argnums, tuple) else gs[0]
        value = value if outer else value.detach()
        return ((value, aux), g) if has_aux else (value, g)
    return wrapper


def jvp(func, primals, tangents, has_aux=False):
    """(func(*primals), J t): the output and its directional derivative along the tangents (one per
    primal), by the double-vjp construction (see the module's docstring)."""
    primals, tangents = _tuple(primals), _tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(tangents)} tangents for {len(primals)} primals")
    for p, t in zip(primals, tangents):
        if tuple(p.shape) != tuple(t.shape):
            raise ValueError(f"jvp: a tangent of shape {tuple(t.shape)} for a primal of shape {tuple(p.shape)}")
    xs, outer = _variables(primals)
    result = _call_with(func, xs, range(len(xs)), xs)
    out, aux = (result if has_aux else (result, None))
    outs = _tuple(out)
    # u -> J^T u is linear in u: its derivative along the tangents, taken with respect to u, is J t
    us = tuple(_C.zeros(*o.shape, dtype=o.dtype, device=o.device).requires_grad_(True) for o in outs)
    pulled = _grads(outs, xs, us)
    jt = _grads(pulled, us, tangents)
    outer = outer or any(t.requires_grad for t in tangents)
    out_values = _finish(outs, outer)
    jt = _finish(jt, outer)
    if not isinstance(out, tuple):
        out_values, jt = out_values[0], jt[0]
    return (out_values, jt, aux) if has_aux else (out_values, jt)


def _onehot(n, i, like):
    """e_i of length n in like's dtype and device."""
    return (_C.arange(n, device=like.device) == i).to(like.dtype)


def _stack_rows(rows, lead_shape, tail_shape):
    return _C.stack(rows, 0).reshape(*lead_shape, *tail_shape) if rows else _C.zeros(*lead_shape, *tail_shape)


def jacrev(func, argnums=0):
    """The Jacobian d func(*args) / d args[argnums], of shape out.shape + arg.shape, one reverse
    pass per output element (a tuple over argnums when argnums is a tuple)."""
    def jacobian(*args):
        nums = _argnums_of(argnums, len(args))
        xs, outer = _variables([args[a] for a in nums])
        out = _call_with(func, args, nums, xs)
        flat = out.reshape(-1)
        per_input = [[] for _ in xs]
        for i in range(flat.numel()):
            for k, g in enumerate(_grads([flat], xs, [_onehot(flat.numel(), i, out)])):
                per_input[k].append(g)
        jacs = _finish(tuple(_stack_rows(rows, tuple(out.shape), tuple(x.shape)) for rows, x in zip(per_input, xs)), outer)
        return jacs if isinstance(argnums, tuple) else jacs[0]
    return jacobian


def jacfwd(func, argnums=0):
    """The Jacobian as jacrev gives it, one jvp per input element (the columns)."""
    def jacobian(*args):
        nums = _argnums_of(argnums, len(args))
        jacs = []
        for a in nums:
            x = args[a]
            cols = []
            for j in range(x.numel()):
                t = _onehot(x.numel(), j, x)
                rest = list(args)

                def along(v, a=a, rest=rest):
                    rest[a] = v
                    return func(*rest)
                out, col = jvp(along, (x,), (t.reshape(*x.shape),))
                cols.append(col.reshape(-1))
            out_shape = tuple(out.shape) if x.numel() else tuple(func(*args).shape)
            n_out = 1
            for s in out_shape:
                n_out *= s
            jac = _C.stack(cols, 1) if cols else _C.zeros(n_out, 0, dtype=x.dtype, device=x.device)
            jacs.append(jac.reshape(*out_shape, *x.shape))
        return tuple(jacs) if isinstance(argnums, tuple) else jacs[0]
    return jacobian


def hessian(func, argnums=0):
    """The matrix of second derivatives of a function with a one-element output, as
    jacfwd(jacrev(func)): shape arg.shape + arg.shape."""
    return jacfwd(jacrev(func, argnums), argnums)
