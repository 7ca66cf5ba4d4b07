"""BM25: the tokenizer's languages, persistence, and term presence."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from policy_qa.lexical import LexicalIndex, Tokenizer, latin_anchors
from policy_qa.text import HANGUL_LETTER

DOCS = [
    ("c1", "a.txt", "Daedeok Research Complex was established in 1973."),
    ("c2", "a.txt", "Each cluster should attract 150 businesses."),
    ("c3", "b.txt", "대덕연구단지는 1973년에 설립되었다."),
]


def test_english_terms_are_stemmed_and_stop_words_dropped() -> None:
    tok = Tokenizer()
    assert tok("The clusters were established") == ["cluster", "establish"]
    assert tok("How many businesses?") == ["busi"]  # question words carry no topic
    assert "150" in tok("attract 150 businesses")


def test_korean_uses_character_bigrams() -> None:
    tok = Tokenizer()
    assert tok("대덕연구단지") == ["대덕", "덕연", "연구", "구단", "단지"]


def test_kiwi_terms_of_a_word_are_read_once_and_do_not_depend_on_its_neighbours() -> None:
    # Kiwi reads one Hangul run at a time, so a run's terms are remembered (decision 105).
    text = "대덕연구단지는 1973년에 설립되었다. 연구단지는 대전에 있다."
    fresh = Tokenizer(korean="kiwi")
    first = fresh(text)
    assert first and fresh(text) == first
    assert fresh._kiwi_terms.cache_info().hits > 0
    other = Tokenizer(korean="kiwi")  # its own memory: every run analysed anew
    assert other("연구단지는 대전에 있다.") + other("대덕연구단지는 1973년에 설립되었다.") == (
        fresh("연구단지는 대전에 있다.") + fresh("대덕연구단지는 1973년에 설립되었다.")
    )


def test_kiwi_memo_keeps_only_word_sized_runs() -> None:
    # Text written without spaces is one long run that never recurs: analysed, not remembered,
    # so the memo's size stays bounded by its entry count (decision 105).
    long_run = "대덕연구단지는대전에있고" * 3
    tok = Tokenizer(korean="kiwi")
    assert tok(long_run)
    assert tok._kiwi_terms.cache_info().currsize == 0
    assert tok("연구단지는") and tok._kiwi_terms.cache_info().currsize == 1


def test_search_ranks_and_filters_by_source() -> None:
    index = LexicalIndex.build(DOCS, Tokenizer())
    assert index.search("When was the research complex established?", 2)[0][0] == "c1"
    assert index.search("대덕연구단지 설립", 3)[0][0] == "c3"
    assert [cid for cid, _ in index.search("1973", 3, sources=["b.txt"])] == ["c3"]
    assert index.search("zebra", 3) == []


def test_search_takes_the_terms_a_caller_has_read_already() -> None:
    index = LexicalIndex.build(DOCS, Tokenizer())
    for query in ("When was the research complex established?", "대덕 설립"):
        read = index.tokens(query), latin_anchors(query, index.doc_freq)
        assert index.search(query, 3, terms=read[0], anchors=read[1]) == index.search(query, 3)


def test_sources_under_a_prefix() -> None:
    index = LexicalIndex.build(DOCS, Tokenizer())
    assert index.sources_under("") == ["a.txt", "b.txt"]
    assert index.sources_under("b") == ["b.txt"]
    assert index.sources_under("c") == []


SPANS = [(0, 50), (52, 95), (0, 20)]


def test_neighbours_are_the_chunks_around_one_in_its_document() -> None:
    index = LexicalIndex.build(
        [DOCS[1], DOCS[2], DOCS[0]], Tokenizer(), spans=[SPANS[1], SPANS[2], SPANS[0]]
    )
    assert index.neighbours("c1") == (None, "c2")
    assert index.neighbours("c2") == ("c1", None)
    assert index.neighbours("c3") == (None, None)  # alone in b.txt
    assert index.neighbours("gone") == (None, None)
    assert LexicalIndex.build(DOCS, Tokenizer()).neighbours("c1") == (None, None)


def test_saved_index_loads_only_for_the_same_fingerprint(tmp_path: Path) -> None:
    index = LexicalIndex.build(DOCS, Tokenizer(), fingerprint="v1", spans=SPANS)
    index.save(tmp_path)
    loaded = LexicalIndex.load(tmp_path, Tokenizer(), "v1")
    assert loaded is not None and loaded.ids == index.ids
    assert loaded.search("businesses", 1)[0][0] == "c2"
    assert loaded.neighbours("c1") == (None, "c2")
    assert LexicalIndex.load(tmp_path, Tokenizer(), "v2") is None
    assert LexicalIndex.load(tmp_path, Tokenizer(korean="kiwi"), "v1") is None


def test_term_presence_from_the_index_matches_tokenizing() -> None:
    tok = Tokenizer()
    index = LexicalIndex.build(DOCS, tok)
    terms = ["establish", "busi", "1973", "대덕", "설립", "zebra"]
    present = index.contains(["c3", "missing", "c1"], terms)
    assert present[1] is None  # not in this index: the caller tokenizes the text itself
    for row, (_, _, text) in zip((present[0], present[2]), (DOCS[2], DOCS[0]), strict=True):
        assert row == [t in set(tok(text)) for t in terms]
    assert present[2] == [True, False, True, False, False, False]


def test_cached_tokens_are_the_tokenizers_and_safe_to_change() -> None:
    index = LexicalIndex.build(DOCS, Tokenizer())
    first = index.tokens("How many businesses were established?")
    assert first == Tokenizer()("How many businesses were established?")
    first.append("mutated")
    assert index.tokens("How many businesses were established?") == ["busi", "establish"]


def test_without_hangul_only_the_hangul_runs_terms_are_left_out_and_kiwi_is_not_asked() -> None:
    # What a caller that meets the terms only with a text without Hangul may read (decision 109).
    text = "Daedeok Research Complex: 대덕연구단지는 1973년에 설립되었다."
    tok = Tokenizer(korean="kiwi")
    assert tok(text, hangul=False) == ["1973", "daedeok", "research", "complex"]
    assert tok._kiwi_terms.cache_info().misses == 0
    assert [t for t in tok(text) if not HANGUL_LETTER.search(t)] == tok(text, hangul=False)
    index = LexicalIndex.build(DOCS, tok)
    assert index.tokens(text, hangul=False) == tok(text, hangul=False)
    assert index.tokens(text) == tok(text)  # its own memo entry, not the one without Hangul
    english = "How many businesses were established?"
    assert index.tokens(english, hangul=False) == index.tokens(english) == ["busi", "establish"]
    assert len(index._tokens) == 3  # an English text's two readings are one entry


class CountingTokenizer(Tokenizer):
    """The real tokenizer, remembering which texts it was given."""

    def __init__(self, korean: str = "bigram") -> None:
        super().__init__(korean)
        self.seen: list[str] = []

    def __call__(self, text: str, hangul: bool = True) -> list[str]:
        self.seen.append(text)
        return super().__call__(text, hangul)


def test_a_rebuild_tokenizes_only_new_or_changed_chunks(tmp_path: Path) -> None:
    old = LexicalIndex.build(DOCS[:2], Tokenizer(), fingerprint="v1")
    tok = CountingTokenizer()
    new = LexicalIndex.build(DOCS, tok, "v2", previous=old)
    assert tok.seen == [DOCS[2][2]]
    scratch = LexicalIndex.build(DOCS, Tokenizer(), "v2")
    assert new.doc_freq == scratch.doc_freq
    for question in ("research complex established", "대덕연구단지 설립", "150 businesses"):
        assert new.search(question, 3) == scratch.search(question, 3)

    # A saved index lends its terms after a restart, even though its documents are stale.
    new.save(tmp_path)
    stale = LexicalIndex.load(tmp_path, Tokenizer(), None)
    assert stale is not None and LexicalIndex.load(tmp_path, Tokenizer(), "v3") is None
    changed = ("c2", "a.txt", "Each cluster should attract 200 businesses.")
    tok = CountingTokenizer()
    again = LexicalIndex.build([DOCS[0], changed, DOCS[2]], tok, "v3", previous=stale)
    assert tok.seen == [changed[2]]  # same id, new text: tokenized again
    assert again.search("200 businesses", 1)[0][0] == "c2"

    # Terms made by another tokenizer are not reused.
    tok = CountingTokenizer(korean="kiwi")
    LexicalIndex.build(DOCS, tok, "v2", previous=stale)
    assert len(tok.seen) == len(DOCS)


def test_the_bm25_matrix_is_the_one_bm25s_computes() -> None:
    # The matrix is computed in numpy from term ids (decision 101); bm25s's own indexing
    # is the reference, score for score.
    import bm25s

    from policy_qa.lexical import ChunkTerms, _scored

    words = [f"w{i}" for i in range(200)]
    corpus = [[words[(i * 7 + j * j) % (20 + i % 180)] for j in range(i % 60)] for i in range(300)]
    reference = bm25s.BM25()
    reference.index(corpus, show_progress=False)
    _, ours, doc_freq = _scored(ChunkTerms.of(corpus, [0] * len(corpus)))
    assert ours is not None
    for word in words:
        if word in doc_freq:
            assert np.array_equal(ours.get_scores([word]), reference.get_scores([word])), word
            assert doc_freq[word] == sum(word in set(terms) for terms in corpus)
