"""Keras-style data helpers for the documents' text pipeline.

The seed documents were written against ``keras.preprocessing``; these helpers reproduce
that behaviour (same indices, same padding) so their examples run unchanged on tapegrad:

    tok = tg.data.Tokenizer(num_words=1000, oov_token="<OOV>")
    tok.fit_on_texts(sentences)
    x = tg.data.pad_sequences(tok.texts_to_sequences(sentences), maxlen=20)
    x_train, x_test, y_train, y_test = tg.data.train_test_split(x, y, test_size=0.2)
    for xb, yb in tg.data.batches(x_train, y_train, batch_size=32):
        ...
"""
from .text import Tokenizer, text_to_word_sequence
from .sequences import pad_sequences
from .split import train_test_split
from .loader import BatchIterator, batches

__all__ = ["Tokenizer", "text_to_word_sequence", "pad_sequences", "train_test_split",
           "BatchIterator", "batches"]
