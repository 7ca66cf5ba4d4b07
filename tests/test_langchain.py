"""policy-qa inside LangChain and LangChain inside policy-qa: ``PolicyRetriever`` in a user's
chain, and a user's chat model writing ``Assistant``'s answers. A real index (in memory) with
toy embeddings; the chat models are LangChain's own fakes, so no LLM runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    ParrotFakeChatModel,
)
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnableLambda, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from pydantic import ValidationError

from policy_qa import Assistant, ConfigError, QuestionError, Settings, USEEmbeddings
from policy_qa.assistant import CHAT_MODEL
from policy_qa.langchain import PolicyRetriever
from policy_qa.memory_store import InMemoryStore

from .tiny import hash_models, write_corpus

QUESTION = "How many members does the Water Board have?"


def tiny_assistant(folder: Path, **options: Any) -> Assistant:
    write_corpus(folder / "docs")
    settings = Settings(data_dir=folder / "data", judge="off")
    assistant = Assistant(
        settings=settings, embeddings=hash_models(), store=InMemoryStore(), **options
    )
    assistant.index([folder / "docs"])
    return assistant


@pytest.fixture(scope="module")
def qa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Assistant]:
    assistant = tiny_assistant(tmp_path_factory.mktemp("lc"))
    yield assistant
    assistant.close()


def test_documents_carry_source_offsets_and_score(qa: Assistant) -> None:
    docs = PolicyRetriever(assistant=qa, k=2).invoke(QUESTION)
    passages = qa.retrieve(QUESTION, k=2)
    assert len(docs) == len(passages) == 2
    assert all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert top.metadata["source"] == "water.txt"
    assert "nine members" in top.page_content
    text = qa.document_text(top.metadata["source"])
    assert text[top.metadata["start"] : top.metadata["end"]] == top.page_content
    for doc, passage in zip(docs, passages, strict=True):
        expected = passage.to_dict()
        assert doc.page_content == expected.pop("text")
        assert doc.metadata == expected  # source, title, section, start, end, score, focus
        assert doc.id == passage.chunk.id


def test_within_and_k_reach_retrieval(qa: Assistant) -> None:
    docs = PolicyRetriever(assistant=qa, within="parks").invoke("When do parks open?")
    assert docs and {d.metadata["source"] for d in docs} == {"parks.md"}
    assert len(PolicyRetriever(assistant=qa, k=1).invoke(QUESTION)) == 1
    with pytest.raises(ValidationError, match="k"):
        PolicyRetriever(assistant=qa, k=0)
    with pytest.raises(QuestionError):
        PolicyRetriever(assistant=qa).invoke("  ")


def test_retriever_in_an_lcel_chain(qa: Assistant) -> None:
    """The usual RAG chain shape: retriever | format -> prompt -> chat model -> parser."""

    def cite(docs: list[Document]) -> str:
        return "\n".join(
            f"[{d.metadata['source']}:{d.metadata['start']}-{d.metadata['end']}] {d.page_content}"
            for d in docs
        )

    prompt = ChatPromptTemplate.from_messages(
        [("human", "Answer from these passages:\n{context}\n\nQuestion: {question}")]
    )
    chain = (
        {
            "context": PolicyRetriever(assistant=qa, k=1) | RunnableLambda(cite),
            "question": RunnablePassthrough(),
        }
        | prompt
        | ParrotFakeChatModel()  # repeats its prompt: the chain's data, with no LLM
        | StrOutputParser()
    )
    out = chain.invoke(QUESTION)
    top = qa.retrieve(QUESTION, k=1)[0].chunk
    assert f"[water.txt:{top.start}-{top.end}] {top.text}" in out
    assert out.endswith(f"Question: {QUESTION}")
    assert chain.batch([QUESTION, "When do parks open?"])[1].count("[parks.md:") == 1


def test_the_packaged_embeddings_serve_a_langchain_vector_store() -> None:
    store = InMemoryVectorStore(embedding=USEEmbeddings())
    store.add_texts(["The Water Board has nine members.", "City parks open at six."])
    (hit,) = store.similarity_search("How many people sit on the water board?", k=1)
    assert hit.page_content == "The Water Board has nine members."


def test_a_users_chat_model_writes_the_answer(qa: Assistant, tmp_path: Path) -> None:
    reply = "The Water Board has nine members, and each member serves four years [1]."
    model = FakeListChatModel(responses=[reply])
    with tiny_assistant(tmp_path, chat_model=model) as assistant:
        assert assistant.backends == ["none", CHAT_MODEL]
        answer = assistant.ask(QUESTION)
        assert answer.backend == "fake-list-chat-model" and not answer.abstained
        assert answer.answer == reply
        (cite,) = answer.citations
        assert cite.source == "water.txt"
        assert assistant.document_text("water.txt")[cite.start : cite.end] == cite.quote
        # Extractive on request; and the model's words are checked, not trusted.
        assert assistant.ask(QUESTION, llm="none").answer == qa.ask(QUESTION).answer
        model.responses = ["The Water Board has twelve members [1]."]
        model.i = 0
        checked = assistant.ask(QUESTION)
        assert checked.backend == "extractive" and "twelve" not in checked.answer
        assert checked.notes == ("the generated answer had no claim its passages support",)
    with pytest.raises(ConfigError, match="not both"):
        Assistant(settings=Settings(llm="openai"), chat_model=model)
