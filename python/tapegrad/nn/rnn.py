"""LSTM, batch-first, with PyTorch's parameter names (weight_ih_l0, weight_hh_l0, bias_ih_l0,
bias_hh_l0, ...) and gate order (i, f, g, o). Each step is two matmuls and one fused C++ cell;
the input projection of a whole sequence is one matmul up front."""
import math

from .. import _C
from . import functional as F
from . import init
from .module import Module, Parameter


class LSTM(Module):
    """input (B, T, input_size) -> output (B, T, hidden_size), (h_n, c_n) each (num_layers, B, H).

    dropout: applied to the outputs of every layer but the last (as PyTorch).
    return_sequences / Keras-style use: output[:, -1] is the last hidden state."""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=True, dropout=0.0, dtype=None):
        super().__init__()
        if not batch_first:
            raise ValueError("LSTM: tapegrad layers are batch-first (batch_first=True)")
        self.input_size, self.hidden_size, self.num_layers, self.dropout = input_size, hidden_size, num_layers, dropout
        self.bias = bias
        H = hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else H
            setattr(self, f"weight_ih_l{layer}", Parameter(_C.empty(4 * H, in_size, dtype=dtype)))
            setattr(self, f"weight_hh_l{layer}", Parameter(_C.empty(4 * H, H, dtype=dtype)))
            if bias:
                setattr(self, f"bias_ih_l{layer}", Parameter(_C.empty(4 * H, dtype=dtype)))
                setattr(self, f"bias_hh_l{layer}", Parameter(_C.empty(4 * H, dtype=dtype)))
        bound = 1.0 / math.sqrt(H) if H > 0 else 0.0
        for p in self.parameters():
            init.uniform_(p, -bound, bound)

    def forward(self, x, state=None):
        if x.ndim != 3:
            raise ValueError(f"LSTM: expected input of shape (batch, seq, features), got {tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"LSTM: input has {x.shape[2]} features, the layer expects {self.input_size}")
        B, T, H = x.shape[0], x.shape[1], self.hidden_size
        if state is None:
            h0 = c0 = None
        else:
            h0, c0 = state
        h_n, c_n = [], []
        layer_in = x
        for layer in range(self.num_layers):
            w_ih = getattr(self, f"weight_ih_l{layer}")
            w_hh = getattr(self, f"weight_hh_l{layer}")
            b = None
            if self.bias:
                b = getattr(self, f"bias_ih_l{layer}") + getattr(self, f"bias_hh_l{layer}")
            # (B, T, 4H): every step's input projection in one product.
            x_proj = F.linear(layer_in, w_ih, b)
            h = h0[layer] if h0 is not None else _C.zeros(B, H, dtype=x.dtype, device=x.device)
            c = c0[layer] if c0 is not None else _C.zeros(B, H, dtype=x.dtype, device=x.device)
            w_hh_t = w_hh.mT
            outputs = []
            for t in range(T):
                gates = x_proj[:, t] + h @ w_hh_t
                h, c = _C._lstm_cell(gates, c)
                outputs.append(h)
            layer_out = _C.stack(outputs, 1) if outputs else _C.zeros(B, 0, H, dtype=x.dtype, device=x.device)
            h_n.append(h)
            c_n.append(c)
            if self.dropout > 0 and layer < self.num_layers - 1:
                layer_out = F.dropout(layer_out, self.dropout, self.training)
            layer_in = layer_out
        return layer_in, (_C.stack(h_n, 0), _C.stack(c_n, 0))

    def extra_repr(self):
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, batch_first=True"
