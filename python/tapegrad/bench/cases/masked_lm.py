"""The masked-LM training step (masked_lm.py's model and batch) in tapegrad and in PyTorch
eager: its time as tokens per second, and each framework's peak memory in a process of its own.

The check: PyTorch's model gets tapegrad's weights (tapegrad's state_dict keys are PyTorch's;
the check fails if they are not) and both compute the loss with dropout off; the two losses
agree to 1e-4 relative or the case fails.
"""
import tapegrad as tg

from .. import masked_lm as mlm
from ..case import Case, Peer
from ..peak_rss import peak_rss
from ..peers import has_torch, torch


def _load_tapegrad_weights(torch_model, tg_model):
    """Copies tapegrad's parameters into the PyTorch model, key by key."""
    mine = tg_model.state_dict()
    theirs = torch_model.state_dict()
    if set(mine) != set(theirs):
        raise KeyError(f"state_dict keys differ: tapegrad only {sorted(set(mine) - set(theirs))}, "
                       f"torch only {sorted(set(theirs) - set(mine))}")
    torch_model.load_state_dict({k: torch.tensor(v.detach().cpu().numpy()) for k, v in mine.items()})


def masked_lm_step(quick, device="cpu"):
    shape = mlm.QUICK if quick else mlm.FULL

    def setup():
        batch = mlm.masked_batch(shape)
        tg_model, tg_step, tg_eval = mlm.build(tg, shape, batch, device)
        peers = {"tapegrad": Peer(tg_step, lambda _: tg_eval())}
        if has_torch(device):
            torch_model, torch_step, torch_eval = mlm.build(torch, shape, batch, device)

            def torch_loss_at_tapegrads_weights(_):
                _load_tapegrad_weights(torch_model, tg_model)
                return torch_eval()
            peers["torch"] = Peer(torch_step, torch_loss_at_tapegrads_weights)
        return peers

    def memory():
        frameworks = ["tapegrad"] + (["torch"] if has_torch() else [])
        rss = {fw: peak_rss(fw, quick, tg.get_num_threads()) for fw in frameworks}
        return {"peak RSS (MB, own process)": {fw: r["peak_MB"] for fw, r in rss.items()},
                "RSS after import (MB)": {fw: r["after_import_MB"] for fw, r in rss.items()}}

    return Case(f"masked-LM step {shape.label()}", "training", setup, work=shape.batch * shape.tokens, unit="token",
                rtol=1e-4, atol=0, min_time=None if quick else 3.0, device=device,
                extra=memory if device == "cpu" else None)
