"""Deterministic synthetic task data in the CS224N file format.

A fresh clone must run end to end with no downloads, and a test must be able to tell a model
that learned from one that did not. So every label here is a function of the words:
- sst: the sentiment level (0..4) of the adjectives in the sentence;
- cfimdb: whether a review's opinion sentences use positive or negative words;
- para: a paraphrase keeps the question's topic words and changes the phrasing, a
  non-paraphrase changes the topic words;
- sts: the second sentence keeps k of the first one's five content words, similarity ~ k.
Only common English words (all in the uncased BERT vocabulary) are used.
"""

from __future__ import annotations

import random
from pathlib import Path

from pipeline.data.cs224n import BUILTIN_FILES, write_cs224n_file

SENTIMENT_WORDS = [
    ["awful", "terrible", "horrible", "dreadful", "pathetic", "disgusting", "miserable", "worst"],
    ["dull", "boring", "weak", "bland", "tedious", "mediocre", "clumsy", "forgettable"],
    ["ordinary", "average", "typical", "standard", "plain", "modest", "routine", "normal"],
    ["good", "nice", "pleasant", "solid", "charming", "enjoyable", "likable", "decent"],
    ["brilliant", "superb", "outstanding", "wonderful", "magnificent", "perfect", "stunning",
     "best"],
]
SUBJECTS = ["film", "movie", "story", "plot", "script", "cast", "ending", "director", "show",
            "soundtrack", "acting", "dialogue", "picture", "sequel", "drama", "comedy"]
ADVERBS = ["really", "quite", "rather", "simply", "truly", "mostly", "just", "certainly"]
FILLERS = ["from start to finish", "in every scene", "for most of its length", "at times",
           "on the whole", "by any measure", "all things considered", "in the end"]
NEUTRAL_SENTENCES = ["i saw it last week with friends .", "it runs about two hours .",
                     "the theater was almost full .", "it came out last year .",
                     "we watched it on a sunday night .", "it is based on a novel ."]
VERBS = ["learn", "find", "buy", "cook", "fix", "choose", "sell", "clean", "build", "paint",
         "study", "rent", "grow", "repair", "play", "watch"]
OBJECTS = ["a car", "a house", "rice", "a bike", "a guitar", "a laptop", "a phone", "a garden",
           "a camera", "a boat", "a watch", "a piano", "pasta", "a computer", "chess", "coffee"]
PLACES = ["in london", "at home", "in india", "online", "in paris", "in school", "in tokyo",
          "in canada", "in summer", "at night", "in china", "in the city", "in texas", "abroad"]
TEMPLATES = [
    "how do i {v} {o} {p} ?",
    "what is the best way to {v} {o} {p} ?",
    "how can i {v} {o} {p} ?",
    "what should i do to {v} {o} {p} ?",
    "is it easy to {v} {o} {p} ?",
]
STS_NOUNS = ["man", "woman", "dog", "cat", "child", "horse", "bird", "car", "ball", "guitar",
             "table", "river", "street", "tree", "train", "house", "kitchen", "beach", "phone",
             "boy", "girl", "park", "book", "window"]
STS_VERBS = ["plays", "rides", "holds", "watches", "cleans", "carries", "paints", "finds",
             "throws", "opens", "kicks", "reads"]


def _hex_id(rng: random.Random) -> str:
    return f"{rng.getrandbits(100):025x}"


def _sst_sentence(rng: random.Random, level: int) -> str:
    words = SENTIMENT_WORDS[level]
    adj1, adj2 = rng.sample(words, 2)
    subject = rng.choice(SUBJECTS)
    if rng.random() < 0.5:
        return f" the {subject} is {rng.choice(ADVERBS)} {adj1} {rng.choice(FILLERS)} ."
    return f" a {adj1} and {adj2} {subject} , {rng.choice(FILLERS)} ."


def _cfimdb_review(rng: random.Random, positive: bool) -> str:
    levels = [3, 4] if positive else [0, 1]
    parts = [rng.choice(NEUTRAL_SENTENCES)]
    for _ in range(rng.randint(2, 4)):
        parts.append(_sst_sentence(rng, rng.choice(levels)).strip())
        if rng.random() < 0.5:
            parts.append(rng.choice(NEUTRAL_SENTENCES))
    return " " + " ".join(parts)


def _question(rng: random.Random, v: str, o: str, p: str) -> str:
    return rng.choice(TEMPLATES).format(v=v, o=o, p=p)


def _para_pair(rng: random.Random) -> tuple[str, str, float]:
    v, o, p = rng.choice(VERBS), rng.choice(OBJECTS), rng.choice(PLACES)
    first = _question(rng, v, o, p)
    if rng.random() < 0.4:
        return first, _question(rng, v, o, p), 1.0
    o2 = rng.choice([x for x in OBJECTS if x != o])
    p2 = rng.choice([x for x in PLACES if x != p])
    v2 = v if rng.random() < 0.5 else rng.choice([x for x in VERBS if x != v])
    return first, _question(rng, v2, o2, p2), 0.0


def _sts_pair(rng: random.Random) -> tuple[str, str, float]:
    a = rng.sample(STS_NOUNS, 4) + [rng.choice(STS_VERBS)]
    keep = rng.randint(0, 5)
    kept = set(rng.sample(range(5), keep))
    b = list(a)
    for i in range(5):
        if i not in kept:
            pool = STS_VERBS if i == 4 else STS_NOUNS
            b[i] = rng.choice([w for w in pool if w not in a])
    s1 = f"a {a[0]} {a[4]} the {a[1]} near a {a[2]} and a {a[3]} ."
    s2 = f"a {b[0]} {b[4]} the {b[1]} near a {b[2]} and a {b[3]} ."
    score = min(5.0, max(0.0, keep + rng.uniform(-0.3, 0.3)))
    return s1, s2, round(score, 1)


def generate_rows(task: str, split_size: int, rng: random.Random) -> list[dict[str, object]]:
    """``split_size`` rows of one built-in task: dicts with id, text_a, text_b, label."""
    rows: list[dict[str, object]] = []
    for _ in range(split_size):
        if task == "sst":
            label = rng.randrange(5)
            rows.append({"id": _hex_id(rng), "text_a": _sst_sentence(rng, label), "label": label})
        elif task == "cfimdb":
            label = rng.randrange(2)
            rows.append({"id": _hex_id(rng), "text_a": _cfimdb_review(rng, bool(label)),
                         "label": label})
        elif task == "para":
            a, b, y = _para_pair(rng)
            rows.append({"id": _hex_id(rng), "text_a": a, "text_b": b, "label": y})
        elif task == "sts":
            a, b, y = _sts_pair(rng)
            rows.append({"id": _hex_id(rng), "text_a": a, "text_b": b, "label": y})
        else:
            raise ValueError(f"no synthetic generator for task '{task}'")
    return rows


SYNTHETIC_TASKS = ("sst", "para", "sts", "cfimdb")


def check_synthetic_tasks(tasks: list[str]) -> None:
    """A user task's data is its own files, which the synthetic source cannot invent: fail in
    one line that says what to set (rather than training on made-up labels)."""
    unknown = [t for t in tasks if t not in SYNTHETIC_TASKS]
    if unknown:
        from pipeline.errors import UserError

        first = unknown[0]
        raise UserError(
            f"data.source=synthetic only generates the built-in tasks "
            f"({', '.join(SYNTHETIC_TASKS)}); for task(s) {', '.join(unknown)} set "
            f"data.source=cs224n and data.dir to the folder holding tasks.{first}.files "
            "(built-in tasks read their CS224N files from the same folder)"
        )


def write_synthetic_dataset(
    out_dir: Path, tasks: list[str], sizes: dict[str, int], seed: int
) -> dict[str, dict[str, list[str]]]:
    """Write CS224N-format files for ``tasks`` into ``out_dir``; return task -> split -> files.

    Each (task, split) has its own RNG stream derived from ``seed``, so adding a task or
    changing one split's size never changes another split's data.
    """
    check_synthetic_tasks(tasks)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, dict[str, list[str]]] = {}
    for task in tasks:
        written[task] = {}
        for split, size in sizes.items():
            rng = random.Random(f"{seed}/{task}/{split}")
            rows = generate_rows(task, size, rng)
            name = BUILTIN_FILES[task][split][0]
            write_cs224n_file(out_dir / name, rows, task_pair=task in ("para", "sts"),
                              label_column=BUILTIN_LABEL_COLUMNS[task], with_labels=split != "test",
                              test_student_layout=split == "test" and task in ("sst", "cfimdb"))
            written[task][split] = [name]
    return written


BUILTIN_LABEL_COLUMNS = {"sst": "sentiment", "cfimdb": "sentiment", "para": "is_duplicate",
                         "sts": "similarity"}
