"""Host memory: large blocks are cached for reuse (kernels/cpu/memory.cpp), and the CPU thread
count is a setting (tg.set_num_threads)."""
import numpy as np
import pytest

import tapegrad as tg

LARGE = 1_000_000  # float32 elements: a 4 MB block, above the cached size


@pytest.fixture(autouse=True)
def empty_cache():
    tg._C._empty_host_cache()
    yield
    tg._C._empty_host_cache()


def test_a_freed_large_block_is_handed_out_again():
    x = tg.empty(LARGE)
    address = x.data_ptr()
    del x
    assert tg._C._host_cache_bytes() >= 4 * LARGE
    y = tg.empty(LARGE + 100)  # the same size class (classes are 1/16 of a power of two apart)
    assert y.data_ptr() == address
    assert tg._C._host_cache_bytes() == 0


def test_a_reused_block_holds_the_new_values():
    x = tg.full((LARGE,), 7.0)
    del x
    z = tg.zeros(LARGE)
    assert tg._C._host_cache_bytes() == 0  # z took the cached block
    np.testing.assert_array_equal(z.numpy(), np.zeros(LARGE, np.float32))
    np.testing.assert_array_equal((z + 1).numpy(), np.ones(LARGE, np.float32))


def test_small_blocks_are_not_cached():
    x = tg.empty(1000)
    del x
    assert tg._C._host_cache_bytes() == 0


def test_the_cache_keeps_at_most_one_gib():
    # Never written, so these blocks cost address space, not resident memory.
    blocks = [tg.empty(80 << 20) for _ in range(5)]  # 5 x 320 MiB
    del blocks
    assert 0 < tg._C._host_cache_bytes() <= 1 << 30


def test_empty_cache_gives_everything_back():
    tg.empty(LARGE)  # freed at once
    assert tg._C._host_cache_bytes() > 0
    tg._C._empty_host_cache()
    assert tg._C._host_cache_bytes() == 0


def test_set_num_threads_changes_the_team_and_not_the_result():
    before = tg.get_num_threads()
    x = tg.tensor(np.random.default_rng(0).standard_normal((512, 1024)).astype(np.float32))
    try:
        tg.set_num_threads(1)
        assert tg.get_num_threads() == 1
        one = (x @ x.T).sum(-1).numpy()
        tg.set_num_threads(2)
        assert tg.get_num_threads() == 2
        two = (x @ x.T).sum(-1).numpy()
    finally:
        tg.set_num_threads(before)
    np.testing.assert_allclose(one, two, rtol=1e-5, atol=1e-3)


def test_set_num_threads_rejects_a_count_below_one():
    with pytest.raises(ValueError, match="set_num_threads"):
        tg.set_num_threads(0)
