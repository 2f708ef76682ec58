"""Every case of the suite, by op family (one module each). A new case: a function returning a
Case in the family's module, listed in that module's cases()."""
from . import attention, conv, cuda, elementwise, gemm, masked_lm, reduce, rows, training

CPU_FAMILIES = (rows, reduce, elementwise, gemm, attention, conv, training)


def all_cases(device, quick):
    """The cases of `device` ("cpu" or "cuda"), in the order the table lists them."""
    if device == "cuda":
        return cuda.cases(quick)
    return [case for family in CPU_FAMILIES for case in family.cases(quick)] + [masked_lm.masked_lm_step(quick)]
