#!/usr/bin/env python3
"""Generate the small sample datasets in ``examples/data/``.

The tasks are deliberately tiny and highly regular (reverse a word, spell it in
capitals, add two small numbers, fixed colour / capital-city / animal-sound
facts) so that a small randomly initialised model visibly lowers its loss within
a few dozen CPU steps.  Everything is drawn from a seeded RNG: running the
script again rewrites byte-identical files (the parquet file is identical for
the same pandas/pyarrow versions).

Usage::

    python examples/make_datasets.py [--out examples/data] [--seed 7]

Outputs (see examples/data/README.md):
    chat.jsonl, chat.json, valid_chat.jsonl, alpaca.jsonl,
    prompt_completion.csv, prompt_completion.parquet, preference.jsonl,
    pretrain.jsonl, and broken files under bad/ for validator tests.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data"

WORDS = ["cat", "dog", "sun", "map", "cup", "hat", "pen", "box", "car", "bus",
         "fish", "bird", "tree", "lamp", "door", "milk", "book", "frog", "star",
         "moon", "rain", "ship", "cake", "desk", "ring", "rose", "wolf", "bell",
         "apple", "house", "water", "bread", "chair", "plant", "green", "stone",
         "cloud", "river", "light", "table"]
COLOURS = [("the sky on a clear day", "blue"), ("grass", "green"), ("snow", "white"),
           ("coal", "black"), ("a ripe banana", "yellow"), ("a ripe tomato", "red"),
           ("an orange", "orange"), ("a lemon", "yellow"), ("milk", "white"),
           ("a strawberry", "red"), ("a crow", "black"), ("a carrot", "orange"),
           ("chocolate", "brown"), ("a lime", "green"), ("an eggplant", "purple")]
CAPITALS = [("France", "Paris"), ("Germany", "Berlin"), ("Italy", "Rome"),
            ("Spain", "Madrid"), ("Japan", "Tokyo"), ("Egypt", "Cairo"),
            ("Canada", "Ottawa"), ("Norway", "Oslo"), ("Peru", "Lima"),
            ("Greece", "Athens"), ("Ireland", "Dublin"), ("Austria", "Vienna")]
SOUNDS = [("cat", "meow"), ("dog", "woof"), ("cow", "moo"), ("duck", "quack"),
          ("sheep", "baa"), ("owl", "hoot"), ("pig", "oink"), ("lion", "roar"),
          ("frog", "croak"), ("horse", "neigh")]
SYSTEMS = ["You are a helpful assistant.", "Answer with one word or number.",
           "You are a concise assistant.", "Reply as briefly as possible."]

def art(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


# ---------------------------------------------------------------- tasks
# Each task returns (prompt, answer, instruction, input) so the same item can be
# rendered as chat, alpaca or prompt/completion.


def t_reverse(rng):
    w = rng.choice(WORDS)
    q = rng.choice(["Reverse the word '{w}'.", "Spell '{w}' backwards.",
                    "Write '{w}' in reverse."]).format(w=w)
    return q, w[::-1], rng.choice(["Reverse the word.", "Write the word backwards."]), w


def t_upper(rng):
    w = rng.choice(WORDS)
    q = rng.choice(["Spell '{w}' in capitals.", "Write '{w}' in upper case.",
                    "Make '{w}' uppercase."]).format(w=w)
    return q, w.upper(), rng.choice(["Spell the word in capitals.",
                                     "Convert the word to upper case."]), w


def t_add(rng):
    a, b = rng.randint(0, 9), rng.randint(0, 9)
    q = rng.choice(["What is {a} plus {b}?", "Add {a} and {b}.", "What is {a} + {b}?"]
                   ).format(a=a, b=b)
    return q, str(a + b), "Add the two numbers.", f"{a} {b}"


def t_colour(rng):
    thing, col = rng.choice(COLOURS)
    q = rng.choice(["What colour is {t}?", "Which colour is {t}?"]).format(t=thing)
    return q, col, q, ""


def t_capital(rng):
    c, cap = rng.choice(CAPITALS)
    q = rng.choice(["What is the capital of {c}?", "Name the capital of {c}."]).format(c=c)
    return q, cap, "Name the capital city of the country.", c


def t_sound(rng):
    a, s = rng.choice(SOUNDS)
    q = rng.choice(["What sound does {a} make?", "What does {a} say?"]).format(a=art(a))
    return q, s, q, ""


TASKS = [t_reverse, t_upper, t_add, t_colour, t_capital, t_sound]


def item(rng):
    return rng.choice(TASKS)(rng)


# ---------------------------------------------------------------- formats

def chat_row(rng, exclude=frozenset()):
    while True:
        turns = [item(rng) for _ in range(2 if rng.random() < 0.1 else 1)]
        if turns[0][0] not in exclude:
            break
    msgs = []
    if rng.random() < 0.3:
        msgs.append({"role": "system", "content": rng.choice(SYSTEMS)})
    for q, a, _, _ in turns:
        msgs.append({"role": "user", "content": q})
        msgs.append({"role": "assistant", "content": a})
    return {"messages": msgs}


def alpaca_row(rng):
    q, a, instr, inp = item(rng)
    if inp == "" or rng.random() < 0.4:
        return {"instruction": q, "input": "", "output": a}
    return {"instruction": instr, "input": inp, "output": a}


def pc_row(rng):
    k = rng.random()
    if k < 0.12:  # exercise CSV quoting: commas and double quotes in the prompt
        a, b, c = rng.randint(0, 5), rng.randint(0, 5), rng.randint(0, 5)
        return {"prompt": f"Add {a}, {b} and {c}.", "completion": str(a + b + c)}
    if k < 0.22:
        w = rng.choice(WORDS)
        return {"prompt": f'Reverse the word "{w}".', "completion": w[::-1]}
    q, a, _, _ = item(rng)
    return {"prompt": q, "completion": a}


RUDE = ["Figure it out yourself.", "Why would I tell you that?", "Ask someone else.",
        "That is a silly question."]


def preference_row(rng):
    q, a, _, _ = item(rng)
    k = rng.randrange(3)
    if k == 0:  # wrong
        if a.isdigit():
            wrong = str(int(a) + rng.choice([-2, -1, 1, 2, 3]) if int(a) > 2 else int(a) + 3)
        elif a.isupper():
            wrong = a.lower()
        else:
            wrong = a[::-1] if len(a) > 2 and a[::-1] != a else a + "s"
            for pool in (COLOURS, CAPITALS, SOUNDS):
                vals = sorted({v for _, v in pool})
                if a in vals:
                    wrong = rng.choice([v for v in vals if v != a])
    elif k == 1:  # rude
        wrong = rng.choice(RUDE)
    else:  # verbose
        wrong = ("Well, that is a very interesting question and there are many ways to "
                 f"think about it. After considering it carefully, I believe the answer "
                 f"might be {a}, although I cannot be completely sure.")
    return {"prompt": q, "chosen": a, "rejected": wrong}


NAMES = ["Ana", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gia", "Hal", "Ivy", "Jon"]
PLACES = ["park", "market", "library", "beach", "garden", "station", "farm", "school"]


def pretrain_row(rng):
    n = rng.choice(NAMES)
    k = rng.randrange(5)
    if k == 0:
        a, s = rng.choice(SOUNDS)
        text = (f"The {a} lives on the farm. Every morning the {a} says {s}. "
                f"{n} feeds the {a} before school.")
    elif k == 1:
        c, cap = rng.choice(CAPITALS)
        text = (f"{cap} is the capital of {c}. {n} visited {cap} last summer. "
                f"The city was busy and the food was good.")
    elif k == 2:
        thing, col = rng.choice(COLOURS)
        thing = thing[0].upper() + thing[1:]
        text = f"{thing} is {col}. {n} painted a picture of it. The picture used a lot of {col}."
    elif k == 3:
        p = rng.choice(PLACES)
        w = rng.choice(WORDS)
        text = (f"{n} went to the {p} today. At the {p}, {n} saw a {w}. "
                f"It was a quiet and happy day.")
    else:
        a, b = rng.randint(1, 9), rng.randint(1, 9)
        text = (f"{n} had {a} apples. A friend gave {n} {b} more. "
                f"Now {n} has {a + b} apples.")
    text += " " + rng.choice(ENDINGS).format(n=n)
    return {"text": text}


ENDINGS = ["{n} smiled.", "Then {n} went home.", "{n} told a friend about it.",
           "{n} wrote it down in a notebook.", "Later it started to rain.",
           "The sun was warm that day.", "{n} wants to do it again soon.",
           "It was a good day for {n}."]


# ---------------------------------------------------------------- writers

def dump_jsonl(path: Path, rows) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8", newline="\n")


def write_csv(path: Path, rows) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=["prompt", "completion"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8", newline="\n")


def write_parquet(path: Path, rows) -> None:
    import pandas as pd
    pd.DataFrame(rows, columns=["prompt", "completion"]).to_parquet(path, index=False)


def write_bad(bad: Path) -> None:
    bad.mkdir(parents=True, exist_ok=True)
    ok1 = {"messages": [{"role": "user", "content": "What is 2 plus 3?"},
                        {"role": "assistant", "content": "5"}]}
    ok2 = {"messages": [{"role": "user", "content": "Reverse the word 'cat'."},
                        {"role": "assistant", "content": "tac"}]}
    ok3 = {"messages": [{"role": "user", "content": "What colour is grass?"},
                        {"role": "assistant", "content": "green"}]}
    j = lambda r: json.dumps(r)  # noqa: E731

    # line 3 is cut off mid-object
    (bad / "truncated_line.jsonl").write_text(
        j(ok1) + "\n" + j(ok2) + "\n" + j(ok3)[:45] + "\n" + j(ok1) + "\n",
        encoding="utf-8", newline="\n")
    # line 2: no assistant turn (last turn is from the user)
    (bad / "missing_assistant.jsonl").write_text(
        j(ok1) + "\n"
        + j({"messages": [{"role": "system", "content": "You are a helpful assistant."},
                          {"role": "user", "content": "What is the capital of France?"}]})
        + "\n" + j(ok3) + "\n", encoding="utf-8", newline="\n")
    # line 2: role "bot"
    (bad / "unknown_role.jsonl").write_text(
        j(ok1) + "\n"
        + j({"messages": [{"role": "user", "content": "Spell 'dog' in capitals."},
                          {"role": "bot", "content": "DOG"}]})
        + "\n" + j(ok3) + "\n", encoding="utf-8", newline="\n")
    # header has prompt but no completion
    (bad / "missing_column.csv").write_text(
        "prompt,answer\nWhat is 2 plus 3?,5\nReverse the word 'cat'.,tac\n",
        encoding="utf-8", newline="\n")
    # line 1 chat, line 2 alpaca
    (bad / "mixed_formats.jsonl").write_text(
        j(ok1) + "\n"
        + j({"instruction": "Reverse the word.", "input": "dog", "output": "god"}) + "\n",
        encoding="utf-8", newline="\n")
    # zero bytes
    (bad / "empty.jsonl").write_bytes(b"")
    # line 2 contains latin-1 encoded bytes (0xE9 for e-acute), invalid UTF-8
    (bad / "not_utf8.jsonl").write_bytes(
        (j({"text": "A plain ASCII line."}) + "\n").encode("utf-8")
        + '{"text": "Un caf\u00e9 cr\u00e8me, s\'il vous pla\u00eet."}\n'.encode("latin-1"))
    (bad / "README.md").write_text(BAD_README, encoding="utf-8", newline="\n")


BAD_README = """\
# Broken sample files

Every file here is deliberately invalid; a dataset validator must reject each
one and point at the line and field named below. Generated by
`python examples/make_datasets.py`.

| File | Line | Field | Fault |
|---|---|---|---|
| `truncated_line.jsonl` | 3 | (whole line) | JSON object cut off mid-way; not parseable |
| `missing_assistant.jsonl` | 2 | `messages` | no `assistant` turn; the last turn is from the `user` |
| `unknown_role.jsonl` | 2 | `messages[1].role` | role is `"bot"`, not one of `system`/`user`/`assistant` |
| `missing_column.csv` | 1 (header) | `completion` | header is `prompt,answer`; required column `completion` missing |
| `mixed_formats.jsonl` | 2 | (row keys) | line 1 is chat (`messages`), line 2 is alpaca (`instruction`/`input`/`output`) |
| `empty.jsonl` | - | - | zero bytes; no rows |
| `not_utf8.jsonl` | 2 | `text` | latin-1 bytes (`0xE9`, `0xE8`, `0xEE`); not valid UTF-8 |
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Generate examples/data sample datasets.")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    rng = random.Random(args.seed)
    chat = [chat_row(rng) for _ in range(300)]
    seen = {m["content"] for r in chat for m in r["messages"] if m["role"] == "user"}
    dump_jsonl(out / "chat.jsonl", chat)

    rng = random.Random(args.seed + 1)
    valid = [chat_row(rng, exclude=frozenset(seen)) for _ in range(40)]
    dump_jsonl(out / "valid_chat.jsonl", valid)

    rng = random.Random(args.seed + 2)
    chat_json = [chat_row(rng) for _ in range(50)]
    (out / "chat.json").write_text(json.dumps(chat_json, indent=1, ensure_ascii=False) + "\n",
                                   encoding="utf-8", newline="\n")

    rng = random.Random(args.seed + 3)
    dump_jsonl(out / "alpaca.jsonl", [alpaca_row(rng) for _ in range(300)])

    rng = random.Random(args.seed + 4)
    pc = [pc_row(rng) for _ in range(200)]
    write_csv(out / "prompt_completion.csv", pc)
    write_parquet(out / "prompt_completion.parquet", pc)

    rng = random.Random(args.seed + 5)
    dump_jsonl(out / "preference.jsonl", [preference_row(rng) for _ in range(200)])

    rng = random.Random(args.seed + 6)
    dump_jsonl(out / "pretrain.jsonl", [pretrain_row(rng) for _ in range(300)])

    write_bad(out / "bad")
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "README.md":
            print(f"{p.relative_to(out)}\t{p.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
