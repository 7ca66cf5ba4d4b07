"""The answerability check: the packaged Qwen decides borderline refusals (real model)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from policy_qa import Assistant, Settings
from policy_qa.answer import (
    Evidence,
    ExtractiveAnswerer,
    _unknown_names,
    answer_type,
    kind_ask,
    precise_ask,
    quoted_names,
)
from policy_qa.errors import ConfigError, LLMError
from policy_qa.judge import (
    BAND,
    TARGET,
    WEIGHT,
    AnswerabilityJudge,
    judge_available,
    make_judge,
)
from policy_qa.lexical import LexicalIndex, Tokenizer
from policy_qa.types import Chunk, Passage

needs_judge = pytest.mark.skipif(
    not judge_available(), reason="needs policy-qa[llm] (llama-cpp-python and the Qwen parts)"
)

PASSAGE = (
    "Daedeok Research Complex was established in 1973 in a bid to develop science technology "
    "that would support the growth of the heavy chemicals industry. In 2005 it was "
    "re-established as Daedeok Special Zone for Research and Development."
)


@pytest.fixture(scope="module")
def judged(corpus_index: Path) -> Iterator[Assistant]:
    qa = Assistant(index_dir=corpus_index, settings=Settings.from_env(judge="on"))
    yield qa
    qa.close()


@needs_judge
def test_judge_reads_the_passage() -> None:
    judge = make_judge(Settings(judge="on"))
    assert isinstance(judge, AnswerabilityJudge)
    stated = judge("When was the Daedeok Research Complex established?", PASSAGE, 0.5)
    missing = judge("How many people live in Daejeon?", PASSAGE, 0.5)
    assert stated.answerable and not missing.answerable
    assert missing.p_yes < 0.5 < stated.p_yes
    assert "p=" in missing.note


@needs_judge
def test_borderline_question_about_the_topic_is_refused(judged: Assistant) -> None:
    # The evidence is about presidents, so the scores alone answer (confidence ~0.57 >= 0.48);
    # the check sees that no sentence names the current one.
    question = "Who is the current President of South Korea?"
    without = Assistant(index_dir=judged.index_dir, settings=Settings.from_env(judge="off"))
    plain = without.ask(question)
    assert not plain.abstained and BAND[0] <= plain.confidence < BAND[1]
    checked = judged.ask(question)
    assert checked.abstained
    assert any(n.startswith("answerability check") for n in checked.notes)
    without.close()


@needs_judge
def test_borderline_answerable_question_is_answered(judged: Assistant) -> None:
    answer = judged.ask("What was Daedeok Valley meant to do?")
    assert BAND[0] <= answer.confidence < BAND[1]
    assert not answer.abstained and answer.citations
    assert any("passage answers it" in n for n in answer.notes)


@needs_judge
def test_a_clear_yes_overturns_a_leaning_refusal(judged: Assistant) -> None:
    # Below the refusal threshold the scores refuse; a confident yes from the check answers.
    question = "What two things is the National Innovation Cluster expected to achieve?"
    plain = Assistant(index_dir=judged.index_dir, settings=Settings.from_env(judge="off"))
    refused = plain.ask(question)
    assert refused.abstained and BAND[0] <= refused.confidence < plain.settings.refusal_threshold
    answer = judged.ask(question)
    assert not answer.abstained and answer.citations
    verdict = next(n for n in answer.notes if n.startswith("answerability check"))
    assert answer.confidence + WEIGHT * float(verdict.rsplit("p=", 1)[1]) >= TARGET
    plain.close()


@needs_judge
def test_a_korean_question_is_checked_on_the_passage_it_is_answered_from(
    judged: Assistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Read in Korean, as when the question cannot be translated (decision 075's fallback):
    # the English passage holding "14 cities" ranks below the article's opening for this
    # Korean question; asked about the opening, the check said no (p=0.33) and refused it.
    monkeypatch.setattr(judged, "_in_english", lambda *args: None)
    answer = judged.ask("국가혁신클러스터는 몇 개의 시·도에 지정되나요?")
    assert BAND[0] <= answer.confidence < BAND[1]
    assert not answer.abstained
    assert "14 cities" in answer.citations[0].quote
    assert any("passage answers it" in n for n in answer.notes)


@needs_judge
def test_confident_answers_skip_the_check(judged: Assistant) -> None:
    answer = judged.ask("When was the Daedeok Research Complex established?")
    assert answer.confidence >= BAND[1] and not answer.abstained
    assert not any(n.startswith("answerability check") for n in answer.notes)


@needs_judge
def test_a_broken_model_falls_back_to_the_threshold(judged: Assistant, tmp_path: Path) -> None:
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"not a model")
    broken = AnswerabilityJudge(bad)
    with pytest.raises(LLMError, match="could not load"):
        broken("Who chairs the council?", PASSAGE, 0.5)
    qa = Assistant(index_dir=judged.index_dir, settings=Settings.from_env(judge="off"))
    qa._judge = broken
    answer = qa.ask("Who is the current President of South Korea?")
    assert not answer.abstained  # the threshold's decision, as without the check
    assert any("answerability check failed" in n for n in answer.notes)
    qa.close()


@needs_judge
def test_the_quote_comes_from_the_passage() -> None:
    judge = make_judge(Settings(judge="on"))
    assert isinstance(judge, AnswerabilityJudge)
    question = "When was the Daedeok Research Complex established?"
    assert judge(question, PASSAGE, 0.5).answerable
    quote = judge.quote(question, PASSAGE)
    assert "1973" in quote and quote.rstrip(".") in PASSAGE


@needs_judge
@pytest.mark.parametrize(
    ("question", "refusal"),
    [
        # The passage says the zone "doubled its number of residing companies": on the topic,
        # and the yes/no check says yes, but no count of companies in 2005 is there to quote.
        (
            "How many companies resided in Daedeok Special Zone in 2005?",
            "quote check: the words Qwen quotes as the answer hold no count",
        ),
        # The article assigns each cluster an industry "as seen on the map", a map it does not
        # carry. Over the paragraph on Daejeon Qwen says yes and quotes "the heavy chemicals
        # industry", from the sentence on why the research complex was founded in 1973.
        (
            "Which industry is assigned to the cluster in Daejeon?",
            "quote check: the sentence Qwen quotes the industry from says nothing else",
        ),
    ],
)
def test_a_yes_whose_quote_fails_the_quote_check_is_refused(
    judged: Assistant, question: str, refusal: str
) -> None:
    answer = judged.ask(question)
    assert answer.abstained and BAND[0] <= answer.confidence < BAND[1]
    said, refused = answer.notes
    assert "the passage answers it" in said
    assert refused.startswith(refusal)


@needs_judge
def test_the_check_cannot_answer_a_question_about_what_no_text_mentions(judged: Assistant) -> None:
    # The article names the Ministry of Trade, Industry and Energy, never a Minister. Asked,
    # Qwen says yes (p=0.79) over the Ministry's announcement; it is not asked.
    question = (
        "Who was the Minister of Trade, Industry and Energy when the follow-up was announced?"
    )
    answer = judged.ask(question)
    assert answer.abstained and BAND[0] <= answer.confidence < BAND[1]
    assert answer.notes == (
        "no indexed text mentions “Minister”: check the spelling, or add a document",
    )
    # Unknown names are listed as the question writes them, in its order.
    assert judged.ask("Who is Kim Dong-yeon?").notes == (
        "no indexed text mentions “Kim”, “Dong”: check the spelling, or add a document",
    )
    # In title case every word is capitalised, "Meant" too: no names to tell, the check decides.
    answer = judged.ask("How Many Businesses Is Each Cluster Meant To Attract?")
    assert not answer.abstained and "150 businesses" in answer.answer
    # A people's adjective is known by its country's name: the check is asked as usual.
    answer = judged.ask("What prompted the South Korean government to focus more on innovation?")
    assert not answer.abstained and "Fourth Industrial Revolution" in answer.answer
    assert not any(n.startswith("no indexed text") for n in answer.notes)


@pytest.mark.parametrize(
    ("question", "unknown"),
    [
        ("What did the Japanese government fund?", []),  # Japan
        ("Which British firms moved in?", []),  # Britain: by name, not by its ending
        ("Is the Canadian model copied?", []),  # Canada
        ("How many Iraqi students enrolled?", []),  # Iraq
        ("What did the Peruvian minister say?", ["Peruvian"]),  # no text mentions Peru
        ("What do Italian firms make?", ["Italian"]),
    ],
)
def test_a_peoples_adjective_is_known_by_its_countrys_name(
    question: str, unknown: list[str]
) -> None:
    text = "Firms from Japan, Britain, Canada and Iraq trade with Korea."
    lexical = LexicalIndex.build([("c1", "a.txt", text)], Tokenizer())
    assert _unknown_names(question, lexical) == unknown


def test_a_quote_is_read_in_its_sentence_under_its_headings(qa: Assistant) -> None:
    retriever = qa.retriever()
    answerer = ExtractiveAnswerer(retriever.scorer, retriever.lexical)
    evidence = Evidence(confidence=0.6, best_similarity=0.5, coverage=0.5)

    def verdict(
        question: str, quote: str, text: str, section: str = "", query: str | None = None
    ) -> str | None:
        chunk = Chunk("doc.txt", "A title", section, 0, len(text), text)
        return answerer.quote_verdict(question, evidence, quote, Passage(chunk, 1.0), query)

    text = (
        "In the northern part of Daejeon is the famous Daedeok Research Complex. "
        "Daedeok Research Complex was established in 1973 to support the growth of the heavy "
        "chemicals industry. Many research institutes started to form a cluster in Daejeon."
    )
    industry = "Which industry is assigned to the cluster in Daejeon?"
    assert verdict(industry, "The heavy chemicals industry", text) is not None
    # The same sentence answers a question about what it speaks of.
    supported = "Which industry was the research complex meant to support?"
    assert verdict(supported, "The heavy chemicals industry", text) is None
    # A follow-up is read with the turn before it, which says what "it" is.
    follow_up = "Which industry was it for?"
    assert verdict(follow_up, "The heavy chemicals industry", text) is not None
    joined = f"When was Daedeok Research Complex established? {follow_up}"
    assert verdict(follow_up, "The heavy chemicals industry", text, query=joined) is None
    # A quote that is not the passage's words gives nothing to test.
    assert verdict(industry, "Shipbuilding and steel", text) is None
    # The heading a sentence sits under speaks for it: "the park" is Joshua Tree.
    park = "Joshua Tree National Park\n\nThe park's oldest rocks, Pinto gneiss among them, are old."
    rock = "which rock is found in joshua tree"
    assert verdict(rock, "Pinto gneiss", park) is None
    assert verdict(rock, "Pinto gneiss", park.split("\n\n")[1]) is not None
    assert verdict(rock, "Pinto gneiss", park.split("\n\n")[1], "Joshua Tree geology") is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Which industry is assigned to the cluster in Daejeon?", "industry"),
        ("Which international event did Daejeon host in 2015?", "event"),
        ("which country won the most medals in 2016", "country"),
        ("In which year was it founded?", "year"),
        # "What <noun>" asks for a description in policies ("For what purpose ..."): not checked.
        ("For what purpose do you use my data?", None),
        ("what kind of rock is in joshua tree", None),
        ("Which is the largest city?", None),
        ("Which of these cities is the oldest?", "cities"),
        ("Which of these is the oldest?", None),  # "these" is no kind
        ("Which one of the clusters is in Daejeon?", None),
        ("Who chairs the Regional Innovation Council?", None),
        ("어느 산업이 대전 클러스터에 배정되었나요?", None),
    ],
)
def test_kind_asks(question: str, kind: str | None) -> None:
    assert kind_ask(question) == kind


@needs_judge
@pytest.mark.parametrize(
    ("question", "said"),
    [
        # "How many specialists ..." is answered by "20 specialists".
        ("How many specialists will make up the Regional Innovation Council?", "20 specialists"),
        # A kind asked about what its sentence does speak of (Daejeon, hosting, 2015).
        ("Which international event did Daejeon host in 2015?", "OECD Science Summit"),
    ],
)
def test_a_quote_that_passes_the_quote_check_keeps_the_answer(
    judged: Assistant, question: str, said: str
) -> None:
    answer = judged.ask(question)
    assert not answer.abstained and said in answer.answer
    assert not any(n.startswith("quote check") for n in answer.notes)


def test_precise_asks() -> None:
    assert precise_ask("In what year was the Special Act enacted?") == "year"
    assert precise_ask("What was the revenue in won?") == "money"
    assert precise_ask("What percentage of tax exemption will businesses receive?") == "percent"
    assert precise_ask("How many companies resided there in 2005?") == "number"
    assert precise_ask("Who chairs the Regional Innovation Council?") == "who"
    # Answers of these kinds take too many shapes for a quote to be checked.
    assert precise_ask("Who was Glumdalclitch?") is None
    assert precise_ask("Who can access the user's data?") is None
    assert precise_ask("With whom do you share my data?") is None
    assert precise_ask("When does Alison come back for good?") is None
    assert precise_ask("What is the size of the cluster?") is None
    assert precise_ask("지역혁신협의회의 의장은 누구인가요?") is None
    # Korean questions are not checked: Qwen quotes the wrong English sentence for them.
    assert precise_ask("대덕특구에 2005년 입주한 기업은 몇 개입니까?") is None


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When was the Daedeok Research Complex established?", "when"),
        ("where did harvey originate and when did it become a hurricane", "when"),
        ("대덕연구단지는 언제 설립되었나요?", "when"),
        # "when" opening a clause places the asked thing in time; the rest says what is asked.
        ("Who was the Minister of Trade when the follow-up was announced?", "who"),
        ("price of ps3 when it first came out", "money"),
        ("Is my IP address collected when I go to your website?", "other"),
    ],
)
def test_a_when_clause_does_not_ask_for_a_time(question: str, kind: str) -> None:
    assert answer_type(question) == kind


def test_quoted_names_leave_out_what_the_question_names() -> None:
    assert quoted_names("Frank wrote Capitalism and Underdevelopment", "who wrote capitalism") == [
        "Frank"
    ]
    minister = "Who was the Minister of Trade, Industry and Energy?"
    assert quoted_names("South Korea's Ministry of Trade, Industry and Energy", minister) == []
    council = "Who chairs the Regional Innovation Council?"
    assert (
        quoted_names("The Regional Innovation Council, comprised of 20 specialists", council) == []
    )
    assert quoted_names("It is chaired by Kim Dong-yeon.", council) == ["Kim Dong-yeon"]


def test_settings_name_the_modes() -> None:
    with pytest.raises(ConfigError, match="judge must be"):
        Settings(judge="sometimes")
    assert make_judge(Settings(judge="off")) is None
    assert Settings.from_env({"POLICY_QA_JUDGE": "on"}).judge == "on"
