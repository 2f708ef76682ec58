"""tapegrad.data: Keras-compatible text helpers, train/test split and mini-batches.

Tokenizer and pad_sequences expectations are worked out by hand from Keras' documented rules
(1-based indices by descending frequency, ties in first-appearance order, OOV at index 1,
default punctuation filter, num_words cut at transform time), not copied from our output.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import tapegrad as tg
from tapegrad.data import (BatchIterator, Tokenizer, batches, pad_sequences, text_to_word_sequence,
                           train_test_split)

PETS = ["I love my dog", "I love my cat", "You love my dog!"]
# counts: love 3, my 3, i 2, dog 2, cat 1, you 1 -> ties broken by first appearance


# --- Tokenizer ---------------------------------------------------------------------------

def test_word_index_is_by_frequency_then_first_appearance():
    tok = Tokenizer()
    tok.fit_on_texts(PETS)
    assert tok.word_index == {"love": 1, "my": 2, "i": 3, "dog": 4, "cat": 5, "you": 6}
    assert tok.index_word == {1: "love", 2: "my", 3: "i", 4: "dog", 5: "cat", 6: "you"}
    assert list(tok.word_counts.items()) == [("i", 2), ("love", 3), ("my", 3), ("dog", 2), ("cat", 1), ("you", 1)]
    assert tok.document_count == 3
    assert tok.word_docs["love"] == 3 and tok.word_docs["dog"] == 2


def test_oov_token_takes_index_one_and_replaces_unknown_words():
    tok = Tokenizer(oov_token="<OOV>")
    tok.fit_on_texts(PETS)
    assert tok.word_index == {"<OOV>": 1, "love": 2, "my": 3, "i": 4, "dog": 5, "cat": 6, "you": 7}
    assert tok.texts_to_sequences(["i really love my dog", "my dog loves my manatee"]) == [
        [4, 1, 2, 3, 5], [3, 5, 1, 3, 1]]


def test_unknown_words_are_dropped_without_oov_token():
    tok = Tokenizer()
    tok.fit_on_texts(PETS)
    assert tok.texts_to_sequences(["i really love my dog", "zebra"]) == [[3, 1, 2, 4], []]


def test_num_words_cuts_only_at_transform_time():
    tok = Tokenizer(num_words=3)
    tok.fit_on_texts(PETS)
    assert len(tok.word_index) == 6  # the whole vocabulary is still indexed
    # only indices < 3 survive: love (1), my (2)
    assert tok.texts_to_sequences(["i love my dog"]) == [[1, 2]]


def test_num_words_with_oov_maps_cut_words_to_oov():
    tok = Tokenizer(num_words=3, oov_token="<OOV>")
    tok.fit_on_texts(PETS)
    # <OOV> 1, love 2, my 3 (cut: 3 >= 3), i 4 (cut), dog 5 (cut)
    assert tok.texts_to_sequences(["i love my dog"]) == [[1, 2, 1, 1]]


def test_default_filters_strip_punctuation_but_keep_apostrophes():
    assert text_to_word_sequence("Hello, world!  Hello-there\tDon't\n") == [
        "hello", "world", "hello", "there", "don't"]


def test_lower_false_keeps_case_distinct():
    tok = Tokenizer(lower=False)
    tok.fit_on_texts(["Dog dog dog"])
    assert tok.word_index == {"dog": 1, "Dog": 2}


def test_custom_split_and_filters():
    tok = Tokenizer(filters="", split=",")
    tok.fit_on_texts(["a,b,,c", "b"])
    assert tok.word_index == {"b": 1, "a": 2, "c": 3}


def test_fitting_twice_accumulates_counts():
    tok = Tokenizer()
    tok.fit_on_texts(["cat dog"])
    tok.fit_on_texts(["dog"])
    assert tok.word_index == {"dog": 1, "cat": 2}
    assert tok.document_count == 2


def test_pre_split_token_lists_are_accepted():
    tok = Tokenizer()
    tok.fit_on_texts([["Hello", "world!"], ["hello"]])  # lists: lower-cased, not filtered
    assert tok.word_index == {"hello": 1, "world!": 2}


def test_oov_token_also_in_texts_follows_keras_dict_zip():
    # Keras builds word_index with dict(zip([oov] + by_frequency, 1..)); a repeated key keeps
    # its last position, so "cat" ends at 2 and index 1 disappears.
    tok = Tokenizer(oov_token="cat")
    tok.fit_on_texts(["cat cat dog"])
    assert tok.word_index == {"cat": 2, "dog": 3}


def test_sequences_to_texts_inverts_known_words():
    tok = Tokenizer(oov_token="<OOV>")
    tok.fit_on_texts(PETS)
    assert tok.sequences_to_texts([[4, 2, 3, 5], [4, 99]]) == ["i love my dog", "i <OOV>"]


def test_a_single_string_is_rejected():
    with pytest.raises(TypeError):
        Tokenizer().fit_on_texts("one text, not a list")


# --- pad_sequences -----------------------------------------------------------------------

RAGGED = [[1, 2, 3], [4, 5], [6]]


@pytest.mark.parametrize("padding, expected", [
    ("pre", [[1, 2, 3], [0, 4, 5], [0, 0, 6]]),
    ("post", [[1, 2, 3], [4, 5, 0], [6, 0, 0]]),
])
def test_padding_to_the_longest(padding, expected):
    out = pad_sequences(RAGGED, padding=padding)
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("padding, truncating, expected", [
    ("pre", "pre", [[2, 3], [4, 5], [0, 6]]),
    ("pre", "post", [[1, 2], [4, 5], [0, 6]]),
    ("post", "pre", [[2, 3], [4, 5], [6, 0]]),
    ("post", "post", [[1, 2], [4, 5], [6, 0]]),
])
def test_truncation_both_ways(padding, truncating, expected):
    np.testing.assert_array_equal(pad_sequences(RAGGED, maxlen=2, padding=padding, truncating=truncating), expected)


def test_value_empty_rows_and_longer_maxlen():
    out = pad_sequences([[7], []], maxlen=3, value=-1)
    np.testing.assert_array_equal(out, [[-1, -1, 7], [-1, -1, -1]])


def test_empty_input_and_zero_maxlen():
    assert pad_sequences([]).shape == (0, 0)
    assert pad_sequences(RAGGED, maxlen=0).shape == (3, 0)


@pytest.mark.parametrize("kwargs", [{"padding": "middle"}, {"truncating": "both"}, {"maxlen": -1}])
def test_bad_arguments_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        pad_sequences(RAGGED, **kwargs)


def test_non_iterable_item_raises_value_error():
    with pytest.raises(ValueError):
        pad_sequences([[1, 2], 3])


@settings(deadline=None, max_examples=100)
@given(st.lists(st.lists(st.integers(1, 99), max_size=8), min_size=1, max_size=6),
       st.integers(0, 10), st.sampled_from(["pre", "post"]), st.sampled_from(["pre", "post"]))
def test_each_row_holds_the_kept_slice_and_padding(seqs, maxlen, padding, truncating):
    out = pad_sequences(seqs, maxlen=maxlen, padding=padding, truncating=truncating)
    assert out.shape == (len(seqs), maxlen)
    for row, seq in zip(out, seqs):
        kept = seq[len(seq) - maxlen:] if truncating == "pre" and len(seq) > maxlen else seq[:maxlen]
        pad = [0] * (maxlen - len(kept))
        assert list(row) == (pad + kept if padding == "pre" else kept + pad)


# --- train_test_split --------------------------------------------------------------------

def test_split_sizes_follow_sklearn():
    x = np.arange(10)
    x_train, x_test = train_test_split(x, test_size=0.25)  # test = ceil(2.5) = 3
    assert (len(x_train), len(x_test)) == (7, 3)
    x_train, x_test = train_test_split(x, test_size=4)
    assert (len(x_train), len(x_test)) == (6, 4)


def test_split_keeps_rows_aligned_across_kinds():
    x = np.arange(20).reshape(10, 2)
    y = [f"label{i}" for i in range(10)]
    z = tg.tensor(np.arange(10) * 10)
    x_tr, x_te, y_tr, y_te, z_tr, z_te = train_test_split(x, y, z, test_size=0.3, seed=5)
    assert isinstance(x_tr, np.ndarray) and isinstance(y_tr, list) and isinstance(z_tr, tg.Tensor)
    rows_tr, rows_te = x_tr[:, 0] // 2, x_te[:, 0] // 2
    assert sorted(np.concatenate([rows_tr, rows_te]).tolist()) == list(range(10))
    assert y_tr == [f"label{i}" for i in rows_tr] and y_te == [f"label{i}" for i in rows_te]
    np.testing.assert_array_equal(z_tr.numpy(), rows_tr * 10)
    np.testing.assert_array_equal(z_te.numpy(), rows_te * 10)


def test_split_is_deterministic_per_seed():
    x = np.arange(100)
    a = train_test_split(x, seed=3)
    b = train_test_split(x, seed=3)
    c = train_test_split(x, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_split_without_shuffle_keeps_order():
    x_train, x_test = train_test_split(list(range(5)), test_size=2, shuffle=False)
    assert x_train == [0, 1, 2] and x_test == [3, 4]


def test_split_of_a_tensor_stays_differentiable():
    x = tg.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
    x_train, _ = train_test_split(x, test_size=0.5, seed=1)
    x_train.sum().backward()
    assert sorted(x.grad.numpy().tolist()) == [0.0, 0.0, 1.0, 1.0]


@pytest.mark.parametrize("test_size", [0.0, 1.0, 1.5, -0.1, 0, 10, 11])
def test_bad_test_size_raises(test_size):
    with pytest.raises(ValueError):
        train_test_split(np.arange(10), test_size=test_size)


def test_different_lengths_raise():
    with pytest.raises(ValueError, match="same length"):
        train_test_split(np.arange(10), np.arange(9))


@settings(deadline=None, max_examples=50)
@given(st.integers(2, 200), st.floats(0.01, 0.99), st.integers(0, 2**31))
def test_split_partitions_the_rows(n, test_size, seed):
    n_test = int(np.ceil(test_size * n))
    if n_test >= n:
        with pytest.raises(ValueError):
            train_test_split(np.arange(n), test_size=test_size, seed=seed)
        return
    train, test = train_test_split(np.arange(n), test_size=test_size, seed=seed)
    assert len(test) == n_test
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(n))


# --- batches / BatchIterator -------------------------------------------------------------

def test_batches_cover_every_row_once_and_stay_aligned():
    x = np.arange(10, dtype=np.float32)
    y = np.arange(10) * 2
    seen = []
    sizes = []
    for xb, yb in batches(x, y, batch_size=4, seed=0):
        assert isinstance(xb, tg.Tensor) and xb.dtype == tg.float32 and yb.dtype == tg.int64
        np.testing.assert_array_equal(yb.numpy(), xb.numpy().astype(np.int64) * 2)
        seen += xb.numpy().tolist()
        sizes.append(xb.shape[0])
    assert sizes == [4, 4, 2]
    assert sorted(seen) == list(range(10))


def test_drop_last_and_no_shuffle():
    out = [b.numpy().tolist() for b in batches(np.arange(7), batch_size=3, shuffle=False, drop_last=True)]
    assert out == [[0, 1, 2], [3, 4, 5]]


def test_global_seed_fixes_the_order():
    def order():
        return np.concatenate([b.numpy() for b in batches(np.arange(50), batch_size=8)])
    tg.manual_seed(123)
    first = order()
    tg.manual_seed(123)
    assert np.array_equal(first, order())
    assert not np.array_equal(first, np.arange(50))


def test_int_seed_is_reproducible():
    a = [b.numpy() for b in batches(np.arange(30), batch_size=7, seed=9)]
    b = [b.numpy() for b in batches(np.arange(30), batch_size=7, seed=9)]
    assert all(np.array_equal(p, q) for p, q in zip(a, b))


def test_batch_iterator_len_and_epochs():
    it = BatchIterator(np.arange(10), batch_size=4, seed=2)
    assert len(it) == 3 and len(BatchIterator(np.arange(10), batch_size=4, drop_last=True)) == 2
    epoch1 = np.concatenate([b.numpy() for b in it])
    epoch2 = np.concatenate([b.numpy() for b in it])
    assert sorted(epoch1.tolist()) == sorted(epoch2.tolist()) == list(range(10))
    assert not np.array_equal(epoch1, epoch2)  # a new shuffle each epoch
    again = BatchIterator(np.arange(10), batch_size=4, seed=2)
    assert np.array_equal(epoch1, np.concatenate([b.numpy() for b in again]))


def test_tensors_and_string_lists_pass_through():
    x = tg.tensor(np.arange(6.0).reshape(3, 2))
    words = ["a", "b", "c"]
    for xb, wb in batches(x, words, batch_size=2, shuffle=False):
        assert isinstance(xb, tg.Tensor) and isinstance(wb, list)
        assert [int(r[0]) // 2 for r in xb.numpy()] == ["abc".index(w) for w in wb]


@pytest.mark.parametrize("batch_size", [0, -1, 2.5])
def test_bad_batch_size_raises(batch_size):
    with pytest.raises(ValueError):
        BatchIterator(np.arange(4), batch_size=batch_size)
    with pytest.raises(ValueError):
        next(batches(np.arange(4), batch_size=batch_size))


@settings(deadline=None, max_examples=50)
@given(st.integers(0, 60), st.integers(1, 16), st.booleans())
def test_batch_count_matches_len(n, batch_size, drop_last):
    it = BatchIterator(np.arange(n), batch_size=batch_size, drop_last=drop_last, seed=0)
    got = list(it)
    assert len(got) == len(it)
    assert sum(b.shape[0] for b in got) == (n - n % batch_size if drop_last else n)


def test_rank_shards_are_disjoint_cover_everything_and_equal_in_length():
    x = np.arange(10)
    per_rank = [np.concatenate([b.numpy() for b in tg.data.batches(x, batch_size=2, seed=3, rank=r, world_size=3)])
                for r in range(3)]
    assert {len(s) for s in per_rank} == {4}  # 10 samples padded to 12, 4 per rank
    everything = np.concatenate(per_rank)
    assert sorted(set(everything.tolist())) == list(range(10))  # all covered; 2 padding repeats
    assert len(everything) - len(set(everything.tolist())) == 2
    one = np.concatenate([b.numpy() for b in tg.data.batches(x, batch_size=2, seed=3)])
    np.testing.assert_array_equal(np.stack(per_rank, 1).reshape(-1)[:10], one)  # the same order, dealt out
    it = tg.data.BatchIterator(x, batch_size=3, seed=1, rank=1, world_size=3)
    assert len(it) == len(list(it)) == 2


def test_bad_rank_raises():
    with pytest.raises(ValueError, match="batches: rank must be in"):
        list(tg.data.batches(np.arange(4), batch_size=2, rank=2, world_size=2))
