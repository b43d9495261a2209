"""--dialogue-voice: quoted speech goes to the dialogue voice, narration to the narrator.

The table holds the hard cases of real fiction typography: straight and curly quotes, nested
quotes, speech running over paragraphs, British single quotes and the apostrophes that look
like them (don't, the '90s, rock 'n' roll, the boys' room), inch marks, dashes and brackets.
Each case goes through the real planner (no normalisation, so the text is as written) and is
compared segment by segment: who speaks, and what.
"""

from __future__ import annotations

import pytest

from llasa_cli.options import TextOptions
from llasa_cli.text.manuscript import Manuscript
from llasa_cli.text.planner import build_plan

D = "anna"  # the dialogue voice
N = None  # the narrator
OPTIONS = TextOptions(normalize=False, detect_chapters=False, max_segment_seconds=60.0, dialogue_voice="Anna")


def voiced(text: str, markdown: bool = False, options: TextOptions = OPTIONS) -> list[tuple[str | None, str]]:
    plan = build_plan(Manuscript("book.txt", text, markdown), options)
    return [(segment.voice, segment.text) for segment in plan.segments]


CASES = [
    # straight double quotes (American)
    ('"Hello," she said.', [(D, '"Hello,"'), (N, "she said.")]),
    ('She said, "Come here."', [(N, "She said,"), (D, '"Come here."')]),
    ('"Wait," he said, "I\'m coming."', [(D, '"Wait,"'), (N, "he said,"), (D, '"I\'m coming."')]),
    ('"All of it."', [(D, '"All of it."')]),
    ('"Yes." "No." "Maybe."', [(D, '"Yes." "No." "Maybe."')]),
    ('"Well..." she said.', [(D, '"Well..."'), (N, "she said.")]),
    ('"Hi". She left.', [(D, '"Hi".'), (N, "She left.")]),
    ('He said:"Go."', [(N, "He said:"), (D, '"Go."')]),
    ('Did she say "yes"?', [(N, "Did she say"), (D, '"yes"?')]),
    ('She read "The Raven" aloud.', [(N, "She read"), (D, '"The Raven"'), (N, "aloud.")]),
    # nested quotes
    (
        "\"He told me 'never again,' and left,\" she said.",
        [(D, "\"He told me 'never again,' and left,\""), (N, "she said.")],
    ),
    ("“She said ‘no’ to me,” he said.", [(D, "“She said ‘no’ to me,”"), (N, "he said.")]),
    ('"She said "no" to me," he said.', [(D, '"She said "no" to me,"'), (N, "he said.")]),
    # curly quotes, guillemets, mixed
    ("“Don’t go,” she whispered.", [(D, "“Don’t go,”"), (N, "she whispered.")]),
    (
        "“I can’t,” said the boys’ mother, “not today.”",
        [(D, "“I can’t,”"), (N, "said the boys’ mother,"), (D, "“not today.”")],
    ),
    ("«Bonjour,» dit-il.", [(D, "«Bonjour,»"), (N, "dit-il.")]),
    ('“Mixed quotes," he said.', [(D, '“Mixed quotes,"'), (N, "he said.")]),
    ("他说：“你好。”", [(N, "他说："), (D, "“你好。”")]),
    # dashes and brackets
    ('"I was just—" "Stop," she said.', [(D, '"I was just—" "Stop,"'), (N, "she said.")]),
    ('"Run!"—he pointed—"now!"', [(D, '"Run!"—'), (N, "he pointed—"), (D, '"now!"')]),
    ('He paused ("Really?") and left.', [(N, "He paused"), (D, '("Really?")'), (N, "and left.")]),
    # apostrophes in American text are never quotes
    (
        "The boys' room was quiet. \"Don't,\" said Sam.",
        [(N, "The boys' room was quiet."), (D, '"Don\'t,"'), (N, "said Sam.")],
    ),
    ("It's the '90s, \"man.\"", [(N, "It's the '90s,"), (D, '"man."')]),
    ("\"Y'all 'bout ready?\" asked Ma.", [(D, "\"Y'all 'bout ready?\""), (N, "asked Ma.")]),
    ("We played rock 'n' roll till two o'clock.", [(N, "We played rock 'n' roll till two o'clock.")]),
    # inch marks and stray quotes
    ('He bought a 6" nail and said, "Perfect."', [(N, 'He bought a 6" nail and said,'), (D, '"Perfect."')]),
    ("She was 5'11\" tall.", [(N, "She was 5'11\" tall.")]),
    ('He said no." Then he left.', [(N, 'He said no." Then he left.')]),
    # speech over paragraphs: each paragraph of it opens with a quote; a paragraph ends a quote
    (
        '"I went home. It was late.\n\n"Then I slept," he said.',
        [(D, '"I went home. It was late.'), (D, '"Then I slept,"'), (N, "he said.")],
    ),
    (
        '"One.\n\n"Two.\n\n"Three," she ended.',
        [(D, '"One.'), (D, '"Two.'), (D, '"Three,"'), (N, "she ended.")],
    ),
    ('"Help! she cried.\n\nNobody came.', [(D, '"Help! she cried.'), (N, "Nobody came.")]),
    # British: single quotes are the speech, double ones nested
    ("‘Don’t,’ she said. ‘It’s the ’90s.’", [(D, "‘Don’t,’"), (N, "she said."), (D, "‘It’s the ’90s.’")]),
    ("'I'm goin' home,' he said.", [(D, "'I'm goin' home,'"), (N, "he said.")]),
    ("‘He shouted “Fire!” and ran,’ she said.", [(D, "‘He shouted “Fire!” and ran,’"), (N, "she said.")]),
    ("‘The boys’ room is a mess,’ Mum said.", [(D, "‘The boys’ room is a mess,’"), (N, "Mum said.")]),
    ("‘I love rock ’n’ roll,’ he said.", [(D, "‘I love rock ’n’ roll,’"), (N, "he said.")]),
    ("'Give 'em hell,' he said.", [(D, "'Give 'em hell,'"), (N, "he said.")]),
    ("‘Back in the ’90s,’ he said.", [(D, "‘Back in the ’90s,’"), (N, "he said.")]),
    (
        "The Joneses’ dog barked. ‘Quiet!’ said Tom.",
        [(N, "The Joneses’ dog barked."), (D, "‘Quiet!’"), (N, "said Tom.")],
    ),
    ("‘I left.\n\n‘Then I came back,’ she said.", [(D, "‘I left."), (D, "‘Then I came back,’"), (N, "she said.")]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), CASES, ids=[str(n) for n in range(len(CASES))])
def test_quotes_split_speech_from_narration(text: str, expected: list[tuple[str | None, str]]) -> None:
    assert voiced(text) == expected


def test_the_table_is_long_enough() -> None:
    assert len(CASES) >= 30


def test_a_voice_span_is_not_split_at_its_quotes() -> None:
    text = '[voice=ben]"Mine," I said.[/voice] "Yours," she said.'
    assert voiced(text) == [("ben", '"Mine," I said.'), (D, '"Yours,"'), (N, "she said.")]


def test_a_markdown_heading_is_its_own_paragraph_for_quotes() -> None:
    text = '# "Quoted" title\n"Speech," she said.'
    options = TextOptions(normalize=False, max_segment_seconds=60.0, dialogue_voice="anna")
    plan = build_plan(Manuscript("book.md", text, True), options)
    assert [(s.voice, s.text) for s in plan.segments] == [(N, '"Quoted" title'), (D, '"Speech,"'), (N, "she said.")]
    assert plan.chapters[0].title == '"Quoted" title'


def test_normalised_speech_keeps_its_voice() -> None:
    options = TextOptions(max_segment_seconds=60.0, dialogue_voice="anna")
    assert voiced("“It cost $5,” said Dr. Jones.", options=options) == [
        (D, '"It cost five dollars,"'),
        (N, "said Doctor Jones."),
    ]


def test_without_a_dialogue_voice_the_narrator_says_everything() -> None:
    options = TextOptions(normalize=False, max_segment_seconds=60.0)
    assert voiced('"Hello," she said.', options=options) == [(N, '"Hello," she said.')]
