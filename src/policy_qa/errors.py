"""The exception tree, each error carrying a message a person can act on.

PolicyQAError                 base: the CLI and UI turn it into a clean message
├── ConfigError               a setting has a bad value
├── QuestionError             the question is empty or too long
├── IndexNotFoundError        nothing is indexed where we looked
├── StoreUnavailableError     the Chroma server cannot be reached
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


class StoreUnavailableError(PolicyQAError):
    pass


class DocumentError(PolicyQAError):
    pass


class LLMError(PolicyQAError):
    pass
