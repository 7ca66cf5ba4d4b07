"""policy-qa: ask questions of policy documents and get answers you can check.

>>> from policy_qa import Assistant
>>> qa = Assistant(index_dir=".policy-qa/index")
>>> qa.index(["corpus/"])
>>> answer = qa.ask("When was the Daedeok Research Complex established?")
>>> answer.to_dict()["citations"][0]["quote"]
"""

from importlib import metadata as _metadata

from .assistant import Assistant
from .config import Settings
from .embeddings import MiniLMEmbeddings, USEEmbeddings
from .errors import (
    ConfigError,
    DocumentError,
    DocumentNotFoundError,
    IndexDamagedError,
    IndexNotFoundError,
    LLMError,
    PolicyQAError,
    QuestionError,
    StoreUnavailableError,
)
from .refusals import REFUSAL
from .types import Answer, Citation, DocumentInfo, IndexReport, Passage

__all__ = [
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
try:
    __version__ = _metadata.version("policy-qa")  # one version, pyproject's
except _metadata.PackageNotFoundError:  # a source tree on sys.path, never installed
    __version__ = "0+unknown"
