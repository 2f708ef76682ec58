"""Multi-head attention and the Transformer encoder layer, batch-first, with PyTorch's
parameter names (in_proj_weight, out_proj, linear1, norm1, ...)."""
import math

from .. import _C
from . import functional as F
from . import init
from .layers import Dropout, LayerNorm, Linear
from .module import Module, Parameter


class MultiHeadAttention(Module):
    """Attention(Q W_q, K W_k, V W_v) per head, heads concatenated, then W_o.

    query (B, L, E), key/value (B, S, E) (default: query, i.e. self-attention).
    attn_mask (L, S) or (B*H, L, S): bool True = NOT allowed to attend (PyTorch's MHA
    convention), or float added to the scores. key_padding_mask (B, S): True = padding.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, dtype=None):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"MultiHeadAttention: embed_dim {embed_dim} is not divisible by num_heads {num_heads}")
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.in_proj_weight = Parameter(_C.empty(3 * embed_dim, embed_dim, dtype=dtype))
        self.in_proj_bias = Parameter(_C.zeros(3 * embed_dim, dtype=dtype)) if bias else None
        if not bias:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        init.xavier_uniform_(self.in_proj_weight)
        if bias:
            init.zeros_(self.out_proj.bias)

    def _project(self, x, i):
        E = self.embed_dim
        w = self.in_proj_weight[i * E:(i + 1) * E]
        b = self.in_proj_bias[i * E:(i + 1) * E] if self.in_proj_bias is not None else None
        B, T = x.shape[0], x.shape[1]
        return F.linear(x, w, b).reshape(B, T, self.num_heads, self.head_dim).transpose(1, 2)

    def forward(self, query, key=None, value=None, attn_mask=None, key_padding_mask=None, need_weights=False):
        key = query if key is None else key
        value = key if value is None else value
        if query.ndim != 3:
            raise ValueError(f"MultiHeadAttention: expected batch-first (B, L, E) inputs, got shape {tuple(query.shape)}")
        B, L, S, H = query.shape[0], query.shape[1], key.shape[1], self.num_heads
        q, k, v = self._project(query, 0), self._project(key, 1), self._project(value, 2)  # (B, H, T, Dh)
        mask = self._merge_masks(attn_mask, key_padding_mask, B, L, S, q.dtype)
        p = self.dropout if self.training else 0.0
        if need_weights:  # the weights returned are those applied: after dropout, as PyTorch's
            weights = F.dropout(F.attention_weights(q, k, mask), p, self.training)
            out = weights @ v
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        out = self.out_proj(out.transpose(1, 2).reshape(B, L, self.embed_dim))
        return (out, weights.mean(1)) if need_weights else out

    def _merge_masks(self, attn_mask, key_padding_mask, B, L, S, dtype):
        """One additive mask (B or 1, H or 1, L, S): 0 where allowed, -inf where not."""
        mask = None
        if attn_mask is not None:
            if attn_mask.dtype == _C.dtype.bool:
                attn_mask = _C.zeros(*attn_mask.shape, dtype=dtype, device=attn_mask.device).masked_fill(
                    attn_mask, float("-inf"))
            if attn_mask.ndim == 3:
                attn_mask = attn_mask.reshape(B, self.num_heads, L, S)
            mask = attn_mask.to(dtype=dtype)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (B, S):
                raise ValueError(f"MultiHeadAttention: key_padding_mask must have shape {(B, S)}, "
                                 f"got {tuple(key_padding_mask.shape)}")
            if key_padding_mask.dtype == _C.dtype.bool:
                pad = _C.zeros(B, S, dtype=dtype, device=key_padding_mask.device).masked_fill(key_padding_mask, float("-inf"))
            else:
                pad = key_padding_mask.to(dtype=dtype)
            pad = pad.reshape(B, 1, 1, S)
            mask = pad if mask is None else mask + pad
        return mask


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward block, each wrapped in dropout + residual + LayerNorm.
    norm_first=False (post-norm, the original Transformer and BERT) or True (pre-norm)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="gelu",
                 layer_norm_eps=1e-5, norm_first=False, batch_first=True, dtype=None):
        super().__init__()
        if not batch_first:
            raise ValueError("TransformerEncoderLayer: tapegrad layers are batch-first")
        self.self_attn = MultiHeadAttention(d_model, nhead, dropout=dropout, dtype=dtype)
        self.linear1 = Linear(d_model, dim_feedforward, dtype=dtype)
        self.linear2 = Linear(dim_feedforward, d_model, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.norm_first = norm_first
        self.activation = activation if callable(activation) else {"gelu": _C.gelu, "relu": _C.relu}[activation]

    def _sa_block(self, x, attn_mask, key_padding_mask):
        return self.dropout1(self.self_attn(x, attn_mask=attn_mask, key_padding_mask=key_padding_mask))

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))

    def forward(self, src, src_mask=None, src_key_padding_mask=None):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask)
            x = x + self._ff_block(self.norm2(x))
        else:
            x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask))
            x = self.norm2(x + self._ff_block(x))
        return x
