"""Choose the follow-up margin (``conversation.FOLLOW_UP_MARGIN``) on the tune dialogues.

Two kinds of case, both from the bundled (tune) Daedeok set only:
- a dialogue's later turns, read after the turn before them (real follow-ups);
- every single question, read after an unrelated question from another item (standalone
  questions asked mid-conversation, which must get the answer they get alone).

For each case the extractive answer is composed both ways (no check, refusal threshold off),
and scored against the gold answers. A margin m picks the joined reading when its confidence is
at least m above the alone one; the table shows how many cases each margin gets right.

    python research/followups.py --workdir /tmp/followups
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from policy_qa import Assistant, Settings
from policy_qa.answer import ExtractiveAnswerer
from policy_qa.config import quiet_third_parties
from policy_qa.conversation import joined
from policy_qa.evaluation.datasets import load_set
from policy_qa.evaluation.metrics import Gold, answer_present

REPO = Path(__file__).resolve().parents[1]
MARGINS = (-0.1, -0.05, 0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3, 1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()
    quiet_third_parties()
    evalset = load_set(REPO / "eval" / "daedeok.jsonl")
    qa = Assistant(settings=Settings(index_dir=args.workdir / "index", judge="off"))
    if qa.documents() == []:
        qa.index([evalset.corpus])
    retriever = qa.retriever()
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical, threshold=0.0)

    def reading(question: str, previous: str) -> tuple[float, str]:
        query = joined(previous, question)
        passages = retriever.search(query, qa.settings.top_k, None)
        answer = answerer.answer(question, passages, query)
        return answer.confidence, answer.answer

    cases: list[tuple[str, str, str, tuple[Gold, ...]]] = []  # kind, question, previous, golds
    singles = [item for item in evalset.items if len(item.turns) == 1]
    rng = random.Random(args.seed)
    for item in evalset.items:
        for i, turn in enumerate(item.turns):
            if not turn.answerable:
                continue
            if i > 0:
                cases.append(("follow-up", turn.question, item.turns[i - 1].question, turn.answers))
            elif len(item.turns) == 1:
                other = rng.choice([s for s in singles if s is not item])
                previous = other.turns[0].question
                cases.append(("standalone", turn.question, previous, turn.answers))
    rows = []
    for kind, question, previous, golds in cases:
        alone_conf, alone_text = reading(question, "")
        joined_conf, joined_text = reading(question, previous)
        rows.append(
            (
                kind,
                joined_conf - alone_conf,
                answer_present(alone_text, golds),
                answer_present(joined_text, golds),
            )
        )
    kinds = sorted({r[0] for r in rows})
    print("| margin | " + " | ".join(f"{k} correct" for k in kinds) + " | all |")
    print("|---:|" + "---:|" * (len(kinds) + 1))
    for m in MARGINS:
        got = {k: [(j if d >= m else a) for kk, d, a, j in rows if kk == k] for k in kinds}
        cells = [f"{sum(v)}/{len(v)}" for v in got.values()]
        total = sum(sum(v) for v in got.values())
        print(f"| {m:+.2f} | " + " | ".join(cells) + f" | {total}/{len(rows)} |")
    print("\nalone-only correct:", {k: sum(a for kk, _, a, _ in rows if kk == k) for k in kinds})
    print("joined-only correct:", {k: sum(j for kk, _, _, j in rows if kk == k) for k in kinds})


if __name__ == "__main__":
    main()
