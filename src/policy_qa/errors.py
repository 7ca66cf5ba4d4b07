"""The exception tree, each error carrying a message a person can act on.

PolicyQAError                 base: the CLI, the web chat and its API show it as one message
├── ConfigError               a setting has a bad value (an empty login, an index "folder"
│                             that is a file)
├── QuestionError             a question, its history or an option of ``ask`` is not usable
│                             (empty, too long, not text)
├── IndexNotFoundError        nothing is indexed where we looked
│   └── DocumentNotFoundError no indexed document has that source
├── IndexDamagedError         the index's database cannot be read: rebuild it (the message
│                             says how); it is never replaced silently
├── StoreUnavailableError     the Chroma server cannot be reached, or the index is busy
├── DocumentError             a file cannot be read (reported and skipped while indexing)
└── LLMError                  the language model failed (we fall back to extractive answers)
"""

from __future__ import annotations


class PolicyQAError(Exception):
    """Base class: ``str(error)`` is a message fit to show a user as it is."""


class ConfigError(PolicyQAError):
    pass


class QuestionError(PolicyQAError):
    pass


class IndexNotFoundError(PolicyQAError):
    pass


class DocumentNotFoundError(IndexNotFoundError):
    pass


class IndexDamagedError(PolicyQAError):
    pass


class StoreUnavailableError(PolicyQAError):
    pass


class DocumentError(PolicyQAError):
    pass


class LLMError(PolicyQAError):
    pass
