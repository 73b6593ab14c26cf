"""Reading by meaning with the bundled MiniLM model (tools/ask_matcher.py): paraphrases that
no rule covers land on the right capability; sentences that ask for nothing land nowhere."""

from __future__ import annotations

import pytest

from catalog.reading import ReadingAids, read_goal
from schemas.goal import GoalStatement
from tools.ask_matcher import build_reading_aids


@pytest.fixture(scope="module")
def aids() -> ReadingAids:
    return build_reading_aids()


def names(text: str, aids: ReadingAids) -> set[str]:
    g = GoalStatement.model_validate(
        {"schema_version": "0.1", "title": "t", "description": text, "cloud": "aws",
         "region": "eu-west-1", "budget": {"monthly_usd": 500}}
    )  # fmt: skip
    return {a.name for a in read_goal(g, aids).asks}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("It should keep running even if one data center burns down.", "availability.multi_az"),
        ("Customers log in with their email and a password.", "identity.user_auth"),
        ("A place to keep customer records and orders.", "store.relational"),
        ("Users can look up products by typing keywords.", "search.full_text"),
    ],
)
def test_paraphrases_no_rule_covers(text: str, expected: str, aids: ReadingAids) -> None:
    assert expected in names(text, aids)


def test_small_talk_reads_as_nothing(aids: ReadingAids) -> None:
    assert names("We are four people and we like coffee. Thanks a lot!", aids) == {
        "region",
        "budget",
    }


def test_the_lexicon_keeps_real_words(aids: ReadingAids) -> None:
    assert aids.known_word is not None
    assert aids.known_word("backed")
    assert not aids.known_word("postgress")
