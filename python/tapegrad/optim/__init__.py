"""tapegrad.optim: SGD, Adam, AdamW, RMSprop; each step is one fused C++ call."""
from .optimizer import SGD, Adam, AdamW, Optimizer, RMSprop  # noqa: F401
