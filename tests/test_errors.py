"""Bad input raises a clear Python exception of the right type, naming the op and the shapes.
Nothing here may crash the interpreter: each case also runs in a subprocess once (see the end)."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tapegrad as tg


def f32(*shape):
    return tg.zeros(*shape)


CASES = [
    # (id, callable, exception, regex the message must match)
    ("add_shapes", lambda: f32(2, 3) + f32(4, 3), ValueError, r"add.*\(2, 3\).*\(4, 3\)"),
    ("mul_shapes", lambda: tg.mul(f32(2), f32(3)), ValueError, r"mul.*\(2,\).*\(3,\)"),
    ("matmul_shapes", lambda: f32(2, 3) @ f32(4, 5), ValueError, r"matmul.*\(2, 3\).*\(4, 5\)"),
    ("matmul_vec_shapes", lambda: f32(3) @ f32(4), ValueError, r"matmul.*\(3,\).*\(4,\)"),
    ("matmul_batch_shapes", lambda: f32(2, 2, 3) @ f32(3, 3, 4), ValueError, r"matmul"),
    ("matmul_0d", lambda: tg.matmul(tg.tensor(1.0), f32(2)), ValueError, r"matmul"),
    ("mean_int", lambda: tg.tensor([1, 2]).mean(), TypeError, r"mean.*int64"),
    ("batch_norm_one_value", lambda: tg.nn.functional.batch_norm(f32(1, 3), None, None, training=True), ValueError,
     r"batch_norm.*more than 1 value.*\(1, 3\)"),
    ("batch_norm_weight_shape", lambda: tg.nn.functional.batch_norm(f32(2, 3), None, None, f32(4), training=True),
     ValueError, r"batch_norm: weight of shape \(4,\).*\(2, 3\)"),
    ("group_norm_groups", lambda: tg.nn.functional.group_norm(f32(2, 6, 4), 4), ValueError, r"group_norm.*6 channels.*4 groups"),
    ("conv2d_channels", lambda: tg.nn.functional.conv2d(f32(1, 3, 5, 5), f32(4, 2, 3, 3)), ValueError,
     r"conv2d.*\(1, 3, 5, 5\).*\(4, 2, 3, 3\)"),
    ("conv2d_window_too_big", lambda: tg.nn.functional.conv2d(f32(1, 1, 2, 2), f32(1, 1, 3, 3)), ValueError,
     r"conv2d.*larger than the padded input.*\(1, 1, 2, 2\)"),
    ("conv2d_same_stride", lambda: tg.nn.functional.conv2d(f32(1, 1, 5, 5), f32(1, 1, 3, 3), stride=2, padding="same"),
     ValueError, r"conv2d.*same.*stride"),
    ("conv2d_input_dims", lambda: tg.nn.functional.conv2d(f32(5, 5), f32(1, 1, 3, 3)), ValueError, r"conv2d.*\(5, 5\)"),
    ("conv2d_bias_shape", lambda: tg.nn.functional.conv2d(f32(1, 1, 5, 5), f32(2, 1, 3, 3), f32(3)), ValueError,
     r"conv2d.*bias.*\(3,\)"),
    ("max_pool2d_int", lambda: tg.nn.functional.max_pool2d(tg.zeros(1, 1, 4, 4, dtype=tg.int64), 2), TypeError,
     r"max_pool2d.*int64"),
    ("max_pool2d_padding", lambda: tg.nn.functional.max_pool2d(f32(1, 1, 4, 4), 2, padding=2), ValueError,
     r"max_pool2d.*padding"),
    ("fold_positions", lambda: tg.nn.functional.fold(f32(1, 9, 5), (4, 4), 3), ValueError, r"fold.*5 positions"),
    ("conv_transpose_output_padding", lambda: tg.nn.functional.conv_transpose2d(f32(1, 2, 3, 3), f32(2, 1, 3, 3),
                                                                               output_padding=1), ValueError,
     r"conv_transpose2d.*output_padding"),
    ("celu_alpha_zero", lambda: tg.nn.functional.celu(f32(2), 0.0), ValueError, r"celu.*alpha.*\(2,\)"),
    ("leaky_relu_int", lambda: tg.nn.functional.leaky_relu(tg.tensor([1, 2])), TypeError, r"leaky_relu.*int64.*\(2,\)"),
    ("hardtanh_bounds", lambda: tg.nn.functional.hardtanh(f32(2), 1.0, -1.0), ValueError, r"hardtanh.*min_val"),
    # integer division by zero would trap the CPU (SIGFPE): checked first, on either side of the op
    ("floordiv_int_zero", lambda: tg.tensor([1, 2]) // tg.tensor([1, 0]), ZeroDivisionError,
     r"floor_divide.*zero.*\(2,\).*\(2,\)"),
    ("floordiv_int_zero_scalar", lambda: tg.tensor([[1, 2]]) // 0, ZeroDivisionError, r"floor_divide.*\(1, 2\)"),
    ("rfloordiv_int_zero", lambda: 5 // tg.tensor([3, 0]), ZeroDivisionError, r"floor_divide"),
    ("mod_int_zero", lambda: tg.tensor([1, 2]) % 0, ZeroDivisionError, r"remainder.*zero"),
    ("fmod_bool_zero", lambda: tg.fmod(tg.tensor([True]), tg.tensor([False])), ZeroDivisionError, r"fmod.*zero"),
    ("var_int", lambda: tg.tensor([1, 2]).var(), TypeError, r"var.*int64"),
    ("softmax_int", lambda: tg.softmax(tg.tensor([1, 2]), 0), TypeError, r"softmax.*int64"),
    ("requires_grad_int", lambda: tg.tensor([1, 2]).requires_grad_(), RuntimeError, r"floating"),
    ("requires_grad_int_kw", lambda: tg.tensor([1, 2], requires_grad=True), RuntimeError, r"floating"),
    ("index_out_of_range", lambda: f32(3)[10], IndexError, r"10.*size 3"),
    ("index_negative_out_of_range", lambda: f32(3, 2)[:, -3], IndexError, r"-3"),
    ("too_many_indices", lambda: f32(3)[0, 0], IndexError, r"too many"),
    ("int_tensor_index_out_of_range", lambda: f32(3)[tg.tensor([0, 5])], IndexError, r"5"),
    ("bool_mask_shape", lambda: f32(3)[tg.tensor([True, False])], IndexError, r"mask"),
    ("index_select_range", lambda: tg.index_select(f32(3, 2), 0, tg.tensor([0, 3])), IndexError,
     r"index_select.*3.*size 3"),
    ("index_select_dtype", lambda: tg.index_select(f32(3, 2), 0, tg.tensor([0.0])), TypeError, r"index_select.*integer tensor.*float32"),
    ("gather_range", lambda: f32(2, 3).gather(1, tg.tensor([[0], [3]])), IndexError, r"gather.*3.*size 3"),
    ("gather_ndim", lambda: f32(2, 3).gather(1, tg.tensor([0, 1])), ValueError, r"gather"),
    ("cross_entropy_target", lambda: tg.nn.functional.cross_entropy(f32(2, 3), tg.tensor([0, 3])), IndexError,
     r"cross_entropy.*3.*3 classes"),
    ("cross_entropy_negative_target", lambda: tg.nn.functional.cross_entropy(f32(2, 3), tg.tensor([-1, 0])),
     IndexError, r"cross_entropy"),
    ("cross_entropy_shape", lambda: tg.nn.functional.cross_entropy(f32(2, 3), tg.tensor([0, 1, 2])), ValueError,
     r"cross_entropy.*\(3,\).*\(2, 3\)"),
    ("backward_non_scalar", lambda: (tg.ones(3, requires_grad=True) * 2).backward(), RuntimeError,
     r"scalar.*\(3,\)"),
    ("backward_no_grad", lambda: tg.ones(2).sum().backward(), RuntimeError, r"does not require grad"),
    ("backward_grad_shape", lambda: (tg.ones(3, requires_grad=True) * 2).backward(tg.ones(2)), ValueError,
     r"\(2,\).*\(3,\)"),
    ("reshape", lambda: f32(2, 3).reshape(4, 2), ValueError, r"reshape.*\(2, 3\).*\(4, 2\)"),
    ("reshape_two_minus_one", lambda: f32(2, 3).reshape(-1, -1), ValueError, r"reshape"),
    ("view_non_contiguous", lambda: f32(2, 3).T.view(6), RuntimeError, r"view"),
    ("expand", lambda: f32(2, 3).expand(4, 3), ValueError, r"expand.*\(2, 3\).*\(4, 3\)"),
    ("permute_dims", lambda: f32(2, 3).permute(0, 0), ValueError, r"permute"),
    ("transpose_dim", lambda: f32(2, 3).transpose(0, 2), IndexError, r"transpose.*dim 2"),
    ("sum_dim", lambda: f32(2, 3).sum(dim=3), IndexError, r"sum.*dim 3"),
    ("cat_shapes", lambda: tg.cat([f32(2, 3), f32(2, 4)], dim=0), ValueError, r"cat.*\(2, 3\).*\(2, 4\)"),
    ("cat_empty_list", lambda: tg.cat([]), ValueError, r"cat"),
    ("stack_shapes", lambda: tg.stack([f32(2), f32(3)]), ValueError, r"stack.*\(2,\).*\(3,\)"),
    ("split_sizes", lambda: f32(5).split([2, 2]), ValueError, r"split.*5"),
    ("max_empty", lambda: f32(0).max(), (IndexError, RuntimeError, ValueError), r"max|amax"),
    ("where_cond_dtype", lambda: tg.where(f32(2), f32(2), f32(2)), TypeError, r"where.*bool"),
    ("masked_fill_mask_dtype", lambda: f32(2).masked_fill(f32(2), 1.0), TypeError, r"masked_fill.*bool"),
    ("sub_bool", lambda: tg.tensor([True]) - tg.tensor([False]), TypeError, r"sub.*bool"),
    ("negative_size", lambda: tg.zeros(-1, 2), ValueError, r"negative"),
    ("bad_operand", lambda: f32(2) + "a", TypeError, None),
    ("ragged_list", lambda: tg.tensor([[1, 2], [3]]), (TypeError, ValueError), None),
    ("in_place_leaf", lambda: tg.ones(2, requires_grad=True).add_(1), RuntimeError, r"leaf"),
    ("item_many", lambda: f32(2).item(), (ValueError, RuntimeError), r"item.*\(2,\)"),
    ("randint_range", lambda: tg.randint(5, 5, (2,)), ValueError, r"randint"),
    # PyTorch's exception types: shape errors are tg.ShapeError, a ValueError and a RuntimeError
    ("matmul_shapes_runtime", lambda: f32(2, 3) @ f32(4, 5), RuntimeError, r"matmul.*\(2, 3\).*\(4, 5\)"),
    ("permute_runtime", lambda: f32(2, 3).permute(0, 0), RuntimeError, r"permute"),
    ("permute_count_runtime", lambda: f32(2, 3).permute(0), RuntimeError, r"permute.*\(2, 3\)"),
    ("reshape_two_minus_one_runtime", lambda: f32(2, 3).reshape(-1, -1), RuntimeError, r"reshape"),
    ("cat_0d_runtime", lambda: tg.cat([tg.tensor(1.0), tg.tensor(2.0)]), RuntimeError, r"cat"),
    ("cross_entropy_shape_runtime", lambda: tg.nn.functional.cross_entropy(f32(2, 3), tg.tensor([0, 1, 2])),
     RuntimeError, r"cross_entropy.*\(3,\).*\(2, 3\)"),
    ("sdpa_mask_and_causal_runtime", lambda: tg.nn.functional.scaled_dot_product_attention(
        f32(1, 2, 4), f32(1, 2, 4), f32(1, 2, 4), attn_mask=tg.ones(2, 2, dtype=tg.bool), is_causal=True),
     RuntimeError, r"attn_mask.*is_causal"),
    ("shape_error_type", lambda: f32(2) + f32(3), tg.ShapeError, r"add.*\(2,\).*\(3,\)"),
    ("float_index_tensor", lambda: f32(3)[tg.tensor([0.0])], IndexError, r"index.*float32"),
    # integer pow and the bitwise ops, as PyTorch
    ("int_pow_negative_scalar", lambda: tg.tensor([1, 2]) ** -2, RuntimeError, r"pow.*negative.*int64.*\(2,\)"),
    ("bool_pow_negative_scalar", lambda: tg.tensor([True]) ** -1, RuntimeError, r"pow.*negative"),
    ("bitwise_and_float", lambda: f32(2) & f32(2), NotImplementedError, r"bitwise_and.*float32.*\(2,\)"),
    ("bitwise_xor_float_int", lambda: f32(2) ^ tg.tensor([1, 2]), NotImplementedError, r"bitwise_xor.*float32"),
    ("invert_float", lambda: ~f32(2), TypeError, r"bitwise_not.*float32.*\(2,\)"),
    # ordering and running reductions
    ("topk_k_too_large", lambda: f32(2, 3).topk(4), IndexError, r"topk: k = 4.*dim 1.*\(2, 3\)"),
    ("kthvalue_k_zero", lambda: f32(2, 3).kthvalue(0, 0), IndexError, r"kthvalue: k = 0.*\(2, 3\)"),
    ("median_empty_dim", lambda: f32(2, 0).median(1), IndexError, r"median.*empty dim.*\(2, 0\)"),
    ("mode_empty_dim", lambda: f32(0, 3).mode(0), IndexError, r"mode.*empty dim.*\(0, 3\)"),
    ("unique_dim", lambda: tg.unique(f32(2, 2), dim=2), IndexError, r"unique.*dim"),
    ("logcumsumexp_int", lambda: tg.tensor([1, 2]).logcumsumexp(0), TypeError, r"logcumsumexp.*int64"),
    ("cumprod_dim", lambda: f32(2, 3).cumprod(2), IndexError, r"cumprod.*dim"),
    ("sort_dim", lambda: f32(2, 3).sort(-3), IndexError, r"sort.*dim"),
    ("einsum_terms", lambda: tg.einsum("ij,jk->ik", f32(2, 3)), ValueError, r"einsum.*2 terms for 1 operands"),
    ("einsum_subscripts", lambda: tg.einsum("ij->i", f32(2, 3, 4)), ValueError, r"einsum.*'ij'.*2 subscripts.*3 dims"),
    ("einsum_output_label", lambda: tg.einsum("ij->k", f32(2, 3)), ValueError, r"einsum.*output.*no operand"),
    ("einsum_sizes", lambda: tg.einsum("ij,jk->ik", f32(2, 3), f32(4, 5)), ValueError, r"einsum.*sizes 3 and 4"),
    ("masked_scatter_short_source", lambda: f32(2, 2).masked_scatter(tg.ones(2, 2, dtype=tg.bool), f32(3)), ValueError,
     r"masked_scatter.*4 elements.*\(3,\)"),
    ("scatter_reduce_mode", lambda: f32(3).scatter_reduce(0, tg.tensor([0]), f32(1), "max"), ValueError,
     r"scatter_reduce: reduce must be.*'max'.*\(3,\)"),
    ("scatter_index_dims", lambda: f32(3, 2).scatter(0, tg.tensor([0]), f32(1)), ValueError, r"scatter: index of shape \(1,\)"),
    ("scatter_index_range", lambda: f32(3).scatter(0, tg.tensor([5]), f32(1)), IndexError, r"scatter.*index 5.*size 3"),
    ("repeat_interleave_negative", lambda: tg.repeat_interleave(f32(3), tg.tensor([1, -1, 2])), ValueError,
     r"repeat_interleave.*non-negative"),
    ("repeat_interleave_length", lambda: tg.repeat_interleave(f32(3), tg.tensor([1, 2]), 0), ValueError,
     r"repeat_interleave: repeats of shape \(2,\).*size 3"),
    ("interpolate_mode", lambda: tg.nn.functional.interpolate(f32(1, 1, 4, 4), size=2, mode="bicubic"), ValueError,
     r"interpolate: mode.*'bicubic'"),
    ("interpolate_both", lambda: tg.nn.functional.interpolate(f32(1, 1, 4), size=2, scale_factor=2.0), ValueError,
     r"interpolate.*exactly one"),
    ("meshgrid_2d", lambda: tg.meshgrid(f32(2, 2), f32(3)), ValueError, r"meshgrid.*\(2, 2\)"),
    ("norm_nuclear", lambda: f32(2, 2).norm("nuc"), ValueError, r"norm: p='nuc'.*\(2, 2\)"),
    ("gather_index_larger", lambda: f32(2, 3).gather(1, tg.zeros(3, 1, dtype=tg.int64)), ValueError,
     r"gather.*\(3, 1\).*\(2, 3\)"),
    # 0-d tensors where the op needs a dim (found by tests/fuzz: these read past the shape)
    ("split_0d", lambda: tg.tensor(1.0).split(()), ValueError, r"split: expected a tensor with at least 1 dim"),
    ("split_size_0d", lambda: tg.tensor(1.0).split(1), ValueError, r"split: expected a tensor with at least 1 dim"),
    ("chunk_0d", lambda: tg.tensor(1.0).chunk(2), ValueError, r"chunk: expected a tensor with at least 1 dim"),
    ("index_add_0d", lambda: tg.index_add(tg.tensor(1.0), 0, tg.tensor([0]), tg.tensor(1.0)), ValueError,
     r"index_add: expected a tensor with at least 1 dim"),
    ("unflatten_0d", lambda: tg.tensor(1.0).unflatten(0, (1,)), ValueError, r"unflatten: expected a tensor with at least 1 dim"),
    ("movedim_0d_range", lambda: tg.tensor(1.0).movedim(1, 0), IndexError, r"movedim: dim 1 is out of range"),
    ("embedding_0d_weight", lambda: tg.nn.functional.embedding(tg.tensor([0]), tg.tensor(1.0)), ValueError,
     r"embedding: weight must be 2-d"),
    ("size_of_0d", lambda: tg.tensor(1.0).size(0), IndexError, r"size: dim 0 of a 0-d tensor"),
    # an expanded view: 2**40 elements at one address (this used to loop over all of them)
    ("write_into_expanded", lambda: tg.zeros(1).expand(2 ** 40).zero_(), RuntimeError,
     r"zero_|copy_|fill_.*several elements at one memory location"),
    ("add_into_expanded", lambda: tg.zeros(1, 3).expand(4, 3).add_(1.0), RuntimeError, r"add_.*\(4, 3\).*expanded view"),
]


@pytest.mark.parametrize("fn, exc, pattern", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises(fn, exc, pattern):
    with pytest.raises(exc, match=pattern):
        fn()


def test_0d_tensors_where_dim_0_names_the_only_position():
    x = tg.tensor(3.0, requires_grad=True)
    assert x.movedim(0, -1).shape == () and x.movedim(0, -1).item() == 3.0
    y = tg.take_along_dim(x, tg.tensor(0), 0)
    assert y.shape == () and y.item() == 3.0
    y.backward()
    assert x.grad.item() == 1.0


def test_error_after_error_leaves_library_usable():
    for _, fn, exc, _ in CASES:
        with pytest.raises(exc):
            fn()
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])
    assert tg.is_grad_enabled()


def test_modified_saved_tensor_message_names_in_place():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 1.0
    z = (y * y).sum()
    with tg.no_grad():
        y.mul_(3)
    with pytest.raises(RuntimeError, match="in-place"):
        z.backward()


def test_no_case_crashes_the_interpreter():
    """Every bad input above, in a fresh interpreter: it must exit normally (no segfault/abort)."""
    ids = [c[0] for c in CASES]
    code = textwrap.dedent(f"""
        import test_errors
        ok = 0
        for name, fn, exc, _ in test_errors.CASES:
            try:
                fn()
            except exc:
                ok += 1
        print("OK", ok)
    """)
    import os
    env = dict(os.environ)
    here = os.path.dirname(os.path.abspath(__file__))
    # The tapegrad this process tests: installed, or the source tree in the development loop.
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(tg.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([here, package_parent, env.get("PYTHONPATH", "")])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"interpreter died ({r.returncode}):\n{r.stderr[-2000:]}"
    assert f"OK {len(ids)}" in r.stdout
