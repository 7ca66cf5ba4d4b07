"""LangChain integration: policy-qa's retrieval as a LangChain retriever, for a user's chain.

Owns the translation of ``Passage`` into LangChain's ``Document`` and nothing else: retrieval
(fusion, rerank, windows) stays in ``Assistant.retrieve``, so a chain gets exactly the passages
``Assistant.ask`` answers from. It must not answer, index or read settings.

>>> from policy_qa import Assistant
>>> from policy_qa.langchain import PolicyRetriever
>>> retriever = PolicyRetriever(assistant=Assistant(index_dir=".policy-qa/index"), k=4)
>>> doc = retriever.invoke("When was the Daedeok Research Complex established?")[0]
>>> doc.metadata["source"], doc.metadata["start"], doc.metadata["end"], doc.metadata["score"]
"""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import Field

from .assistant import Assistant
from .types import Passage

__all__ = ["PolicyRetriever", "to_document"]


def to_document(passage: Passage) -> Document:
    """``passage`` as a LangChain ``Document``: its text, with ``Passage.to_dict()`` (less the
    text) as metadata.

    ``metadata["start"]`` and ``["end"]`` are offsets in ``Assistant.document_text(source)``, so
    ``document_text(source)[start:end] == page_content``; ``focus`` is the ranked chunk's span
    inside that window and ``score`` its rank score. A field ``to_dict`` gains (a page number,
    say) reaches the metadata with no change here.
    """
    metadata = passage.to_dict()
    text = metadata.pop("text")
    return Document(page_content=text, metadata=metadata, id=passage.chunk.id)


class PolicyRetriever(BaseRetriever):
    """``Assistant.retrieve`` as a LangChain ``BaseRetriever``: ``invoke(question)`` returns
    ``Document``s whose metadata carry their source, offsets and score (see ``to_document``).

    ``k``: passages per question (None: ``settings.top_k``); ``within``: only sources under
    this prefix; ``rerank``: the sentence rerank (off is faster and ranks by fusion alone).
    """

    assistant: Assistant
    k: int | None = Field(default=None, ge=1)
    within: str | None = None
    rerank: bool = True

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        passages = self.assistant.retrieve(query, within=self.within, k=self.k, rerank=self.rerank)
        return [to_document(p) for p in passages]
