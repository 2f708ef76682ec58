"""Keras' word tokenizer (``keras.preprocessing.text.Tokenizer``), rule for rule.

Why a faithful copy rather than a "better" tokenizer: the documents' examples print word
indices and padded sequences, and readers compare them with Keras output. So the quirks are
kept on purpose: indices start at 1 (0 is padding), the most frequent word comes first and
ties keep first-appearance order, ``num_words`` only filters at ``texts_to_sequences`` time
(``word_index`` always holds the whole vocabulary), and an ``oov_token`` takes index 1.
"""
from collections import OrderedDict, defaultdict

#: Keras' default ``filters``: ASCII punctuation (except the apostrophe) plus tab and newline.
DEFAULT_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def text_to_word_sequence(text, filters=DEFAULT_FILTERS, lower=True, split=" "):
    """Split ``text`` into words the way Keras does: lower-case, turn every filtered
    character into the separator, split on it, and drop empty pieces."""
    if lower:
        text = text.lower()
    text = text.translate(str.maketrans({c: split for c in filters}))
    return [word for word in text.split(split) if word]


class Tokenizer:
    """Maps words to integer indices, fitted on a corpus.

    Attributes after ``fit_on_texts``: ``word_counts`` (OrderedDict, first-appearance order),
    ``word_docs`` (number of texts containing each word), ``word_index`` (word -> index, 1-based,
    most frequent first), ``index_word`` (the inverse) and ``document_count``.
    A text may also be given as a list of already split tokens (then only lower-casing applies).
    """

    def __init__(self, num_words=None, filters=DEFAULT_FILTERS, lower=True, split=" ",
                 char_level=False, oov_token=None):
        self.num_words = num_words
        self.filters = filters
        self.lower = lower
        self.split = split
        self.char_level = char_level
        self.oov_token = oov_token
        self.document_count = 0
        self.word_counts = OrderedDict()
        self.word_docs = defaultdict(int)
        self.word_index = {}
        self.index_word = {}

    def _words_of(self, text):
        """The token list of one text, as Keras' fit and transform both see it."""
        if self.char_level or isinstance(text, list):
            if self.lower:
                text = [t.lower() for t in text] if isinstance(text, list) else text.lower()
            return list(text)
        return text_to_word_sequence(text, self.filters, self.lower, self.split)

    def fit_on_texts(self, texts):
        """Count words in ``texts`` (adding to earlier fits) and rebuild the indices."""
        if isinstance(texts, str):
            raise TypeError("fit_on_texts expects a list of texts, got a single str "
                            "(wrap it in a list)")
        for text in texts:
            self.document_count += 1
            words = self._words_of(text)
            for word in words:
                self.word_counts[word] = self.word_counts.get(word, 0) + 1
            for word in set(words):
                self.word_docs[word] += 1
        # sorted() is stable, so equal counts keep first-appearance order, as in Keras.
        by_frequency = sorted(self.word_counts.items(), key=lambda wc: wc[1], reverse=True)
        vocabulary = ([] if self.oov_token is None else [self.oov_token]) + [w for w, _ in by_frequency]
        # Built with dict(zip(...)) exactly as Keras does, so that even the corner case of an
        # oov_token that also occurs in the texts gives Keras' indices.
        self.word_index = dict(zip(vocabulary, range(1, len(vocabulary) + 1)))
        self.index_word = {i: w for w, i in self.word_index.items()}

    def _kept(self, index):
        """Whether ``index`` survives the ``num_words`` cut (Keras treats 0/None as no cut)."""
        return not self.num_words or index < self.num_words

    def texts_to_sequences(self, texts):
        """Each text as a list of word indices. Unknown words, and words cut by ``num_words``,
        become the OOV index when ``oov_token`` is set and are dropped otherwise."""
        if isinstance(texts, str):
            raise TypeError("texts_to_sequences expects a list of texts, got a single str "
                            "(wrap it in a list)")
        oov_index = self.word_index.get(self.oov_token)
        sequences = []
        for text in texts:
            sequence = []
            for word in self._words_of(text):
                index = self.word_index.get(word)
                if index is not None and self._kept(index):
                    sequence.append(index)
                elif oov_index is not None:
                    sequence.append(oov_index)
            sequences.append(sequence)
        return sequences

    def sequences_to_texts(self, sequences):
        """The inverse of ``texts_to_sequences``: space-joined words. As in Keras, an index with
        no word (padding 0 included) becomes the OOV word when ``oov_token`` is set, else is skipped."""
        oov_index = self.word_index.get(self.oov_token)
        texts = []
        for sequence in sequences:
            words = []
            for index in sequence:
                index = int(index)
                word = self.index_word.get(index)
                if word is not None and self._kept(index):
                    words.append(word)
                elif oov_index is not None:
                    words.append(self.index_word[oov_index])
            texts.append(" ".join(words))
        return texts
