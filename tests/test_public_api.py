"""The public contract: what ``policy_qa`` exports and the shape of ``Answer.to_dict()``."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import policy_qa
from policy_qa import Answer, Citation, Passage, Settings
from policy_qa.errors import PolicyQAError
from policy_qa.types import Chunk, content_id


def test_all_is_pinned() -> None:
    assert sorted(policy_qa.__all__) == sorted(
        [
            "REFUSAL",
            "Answer",
            "Assistant",
            "Citation",
            "ConfigError",
            "DocumentError",
            "DocumentInfo",
            "DocumentNotFoundError",
            "IndexDamagedError",
            "IndexNotFoundError",
            "IndexReport",
            "LLMError",
            "MiniLMEmbeddings",
            "Passage",
            "PolicyQAError",
            "QuestionError",
            "Settings",
            "StoreUnavailableError",
            "USEEmbeddings",
        ]
    )
    for name in policy_qa.__all__:
        assert hasattr(policy_qa, name)


MODULES = sorted(m.name for m in pkgutil.walk_packages(policy_qa.__path__, "policy_qa."))


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    for exported in getattr(module, "__all__", []):
        assert hasattr(module, exported), f"{name}.__all__ names {exported!r}, which is missing"


@pytest.mark.parametrize(
    ("name", "exported"),
    [
        (
            "policy_qa.store",
            [
                "COMPLETE",
                "PENDING",
                "DocumentItem",
                "SentenceVectors",
                "Store",
                "document_info",
                "document_record",
                "is_complete",
                "pending_record",
            ],
        ),
        (
            "policy_qa.inputs",
            [
                "History",
                "Messages",
                "check_history",
                "check_k",
                "check_question",
                "check_source",
                "check_within",
                "message_pairs",
            ],
        ),
        ("policy_qa.faults", ["BOUNDARIES", "Checkpoint", "checkpoint_for"]),
        (
            "policy_qa.login",
            [
                "FIRST_LOCKOUT_SECONDS",
                "FREE_FAILURES",
                "MAX_LOCKOUT_SECONDS",
                "LoginThrottle",
                "ThrottledLogin",
            ],
        ),
        ("policy_qa.folder_lock", ["LOCK_NAME", "LOCK_TIMEOUT_SECONDS", "OPEN_LOCK", "FolderLock"]),
        ("policy_qa.chroma_store", ["ChromaStore", "ServerAuth"]),
        ("policy_qa.memory_store", ["InMemoryStore"]),
        (
            "policy_qa.indexing",
            [
                "EMBED_BATCH",
                "SENTENCE_LANGUAGES",
                "Progress",
                "embed_sentences",
                "embedding_text",
                "index_paths",
            ],
        ),
        ("policy_qa.lexical_cache", ["STALE_CHECK_SECONDS", "LexicalCache", "lexical_text"]),
        (
            "policy_qa.similarity",
            ["SENTENCE_LANGUAGES", "SentenceScorer", "coverage", "weighted_share"],
        ),
        ("policy_qa.query", ["Query"]),
        (
            "policy_qa.asks",
            [
                "PRECISE_ASKS",
                "Computation",
                "answer_type",
                "computation",
                "count_focus",
                "facets",
                "kind_ask",
                "precise_ask",
            ],
        ),
        ("policy_qa.refusals", ["REFUSAL", "REFUSAL_KO", "is_refusal", "refusal_for", "refused"]),
        ("policy_qa.langchain", ["PolicyRetriever", "to_document"]),
        (
            "policy_qa.types",
            [
                "Answer",
                "Chunk",
                "Citation",
                "Document",
                "DocumentInfo",
                "IndexReport",
                "Pages",
                "Passage",
                "Progress",
                "Section",
                "Skipped",
                "content_id",
                "page_label",
                "page_span",
            ],
        ),
        (
            "policy_qa.supervisor",
            [
                "STARTUP_TIMEOUT",
                "WORKER_NICENESS",
                "ModelWorker",
                "WorkerPool",
                "close_all",
                "default_threads",
                "worker_pool",
            ],
        ),
        (
            "policy_qa.worker",
            ["NO_WORDS", "YES_WORDS", "build_features", "exit_with_parent", "main"],
        ),
        ("policy_qa.minilm", ["MiniLMNumpy"]),
        (
            "policy_qa.evaluation",
            [
                "EvalSet",
                "Item",
                "RunOptions",
                "SetSpec",
                "Turn",
                "load_clapnq",
                "load_korquad",
                "load_policyqa",
                "load_set",
                "make_baseline",
                "regressions",
                "run",
            ],
        ),
        (
            "policy_qa.evaluation.datasets",
            [
                "DATASET_NAMES",
                "DATASET_PATHS",
                "QUESTION_TYPES",
                "EvalSet",
                "Item",
                "Turn",
                "answer_sentence",
                "describe",
                "dump_item",
                "load_clapnq",
                "load_korquad",
                "load_named",
                "load_policyqa",
                "load_set",
                "load_squad",
                "questions",
            ],
        ),
        ("policy_qa.evaluation.journal", ["Journal", "check", "fingerprint", "journal_path"]),
        (
            "policy_qa.evaluation.metrics",
            [
                "HEADLINE_METRICS",
                "LOWER_IS_BETTER",
                "Gold",
                "Span",
                "answer_present",
                "citation_correct",
                "citation_scores",
                "coverage",
                "first_hit_rank",
                "has_hangul",
                "locate",
                "mean",
                "mrr_at_k",
                "ndcg_at_k",
                "normalize_answer",
                "overlaps",
                "percentile",
                "rate",
                "recall_at_k",
                "refusal_curve",
                "throughput",
                "token_f1",
                "token_recall",
                "wilson",
            ],
        ),
        (
            "policy_qa.evaluation.runner",
            [
                "ANSWERING",
                "DEFAULT_GATED",
                "K",
                "LOWER_IS_BETTER",
                "REPO_ROOT",
                "SYSTEM_NAMES",
                "EvidenceLocator",
                "RunOptions",
                "SetSpec",
                "TextSource",
                "aggregate",
                "build_systems",
                "by_type",
                "default_set_path",
                "make_baseline",
                "refusal_curve",
                "regressions",
                "resolve_set",
                "run",
                "run_set",
                "score_turn",
            ],
        ),
    ],
)
def test_the_split_modules_exports_are_pinned(name: str, exported: list[str]) -> None:
    assert sorted(importlib.import_module(name).__all__) == sorted(exported)


def test_chromadb_is_imported_by_one_module_only() -> None:
    root = Path(policy_qa.__file__).parent
    importers = sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*.py")
        if "import chromadb" in p.read_text(encoding="utf-8")
        or "from chromadb" in p.read_text(encoding="utf-8")
    )
    assert importers == ["chroma_store.py"]


def test_errors_share_one_base() -> None:
    for name in policy_qa.__all__:
        obj = getattr(policy_qa, name)
        if isinstance(obj, type) and name.endswith("Error"):
            assert issubclass(obj, PolicyQAError)


def test_domain_objects_are_frozen() -> None:
    chunk = Chunk("a.txt", "T", "S", 0, 5, "Hello")
    with pytest.raises(dataclasses.FrozenInstanceError):
        chunk.text = "x"  # type: ignore[misc]


def test_answer_to_dict_shape() -> None:
    chunk = Chunk("a.txt", "Title", "Sec", 10, 20, "0123456789")
    answer = Answer(
        question="q",
        answer="0123 [1]",
        abstained=False,
        citations=(Citation(1, "a.txt", "Title", "Sec", 10, 14, "0123"),),
        passages=(Passage(chunk, 0.5),),
    )
    data = answer.to_dict()
    assert data["question"] == "q" and data["abstained"] is False
    assert data["citations"] == [
        {
            "n": 1,
            "source": "a.txt",
            "title": "Title",
            "section": "Sec",
            "start": 10,
            "end": 14,
            "quote": "0123",
            "page": None,
            "page_end": None,
        }
    ]
    assert data["passages"] == [
        {
            "source": "a.txt",
            "title": "Title",
            "section": "Sec",
            "start": 10,
            "end": 20,
            "text": "0123456789",
            "score": 0.5,
            "focus": [10, 20],
            "page": None,
            "page_end": None,
        }
    ]
    # A window: the ranked chunk (12-16) shown with its neighbours (10-20).
    window = Passage(chunk, 0.5, focus=(12, 16))
    assert window.to_dict()["focus"] == [12, 16]
    assert window.focus_text == "2345"
    ranked = window.narrowed().chunk
    assert (ranked.start, ranked.end, ranked.text, window.narrowed().focus) == (
        12,
        16,
        "2345",
        None,
    )


def test_ids_derive_from_content() -> None:
    a = Chunk("a.txt", "T", "S", 0, 5, "Hello")
    assert a.id == Chunk("a.txt", "T", "S", 0, 5, "Hello").id
    assert a.id != Chunk("a.txt", "T", "S", 0, 5, "Hellp").id
    assert content_id("x") == content_id("x") != content_id("y")


def test_settings_from_env_and_validation(tmp_path: Path) -> None:
    env = {
        "POLICY_QA_DATA_DIR": str(tmp_path),
        "POLICY_QA_TOP_K": "4",
        "POLICY_QA_DENSE_MODELS": "minilm",
        "POLICY_QA_CHROMA_URL": "http://127.0.0.1:8123",
    }
    s = Settings.from_env(env)
    assert s.data_dir == tmp_path and s.top_k == 4 and s.dense_models == ("minilm",)
    assert s.resolved_index_dir == tmp_path / "index"
    assert Settings.from_env(env, top_k=2).top_k == 2
    with pytest.raises(policy_qa.ConfigError, match="top_k"):
        Settings(top_k=0)
    with pytest.raises(policy_qa.ConfigError, match="chroma_url"):
        Settings(chroma_url="127.0.0.1:8000")
    with pytest.raises(policy_qa.ConfigError, match="POLICY_QA_TOP_K"):
        Settings.from_env({"POLICY_QA_TOP_K": "many"})
    assert Settings.from_env({"POLICY_QA_COMPUTED_ANSWERS": "off"}).computed_answers is False
    assert Settings.from_env({"POLICY_QA_COMPUTED_ANSWERS": "True"}).computed_answers is True
    with pytest.raises(policy_qa.ConfigError, match="POLICY_QA_COMPUTED_ANSWERS"):
        Settings.from_env({"POLICY_QA_COMPUTED_ANSWERS": "maybe"})
    with pytest.raises(policy_qa.ConfigError, match="llm"):
        Settings(llm="gpt")


def test_the_store_protocol_is_pinned() -> None:
    """A third-party ``Store`` implements these; adding one breaks it, so it is a decision
    (``chunks_of``: docs/decisions/101-incremental-bm25.md)."""
    from policy_qa.store import Store

    assert sorted(n for n in vars(Store) if not n.startswith("_")) == [
        "chunk_ids",
        "chunks_of",
        "count",
        "delete_document",
        "document_meta",
        "document_text",
        "document_texts",
        "documents",
        "fingerprint",
        "get_chunks",
        "iter_chunks",
        "purge_incomplete",
        "search",
        "sentence_vectors",
        "write_documents",
    ]
