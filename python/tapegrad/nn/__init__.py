"""tapegrad.nn: layers (batch-first, PyTorch's parameter names), functional ops and init."""
from . import functional, init, parallel, utils  # noqa: F401
from .attention import MultiHeadAttention, TransformerEncoderLayer  # noqa: F401
from .layers import (  # noqa: F401
    CELU, ELU, GELU, SELU, Dense, Dropout, Embedding, Hardsigmoid, Hardswish, Hardtanh, LayerNorm, LeakyReLU, Linear,
    LogSigmoid, Mish, ReLU, ReLU6, Sigmoid, SiLU, Softsign, Tanh,
)
from .conv import (  # noqa: F401
    AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d, Flatten, Identity, MaxPool1d, MaxPool2d,
    Unflatten,
)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm  # noqa: F401
from .module import Module, ModuleList, Parameter, Sequential  # noqa: F401
from .rnn import LSTM  # noqa: F401


class MSELoss(Module):
    """Keras/PyTorch-style loss object: loss_fn(prediction, target) -> mean squared error.
    (Keras' MeanSquaredError takes (y_true, y_pred); the squared difference is symmetric.)"""

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return functional.mse_loss(input, target, self.reduction)


MeanSquaredError = MSELoss


class CrossEntropyLoss(Module):
    def __init__(self, ignore_index=-100, reduction="mean"):
        super().__init__()
        self.ignore_index, self.reduction = ignore_index, reduction

    def forward(self, input, target):
        return functional.cross_entropy(input, target, self.ignore_index, self.reduction)


class BCELoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return functional.binary_cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = reduction

    def forward(self, input, target):
        return functional.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)
