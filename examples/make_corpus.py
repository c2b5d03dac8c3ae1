#!/usr/bin/env python3
"""Generate the bundled tokenizer training corpus.

Output: worker/finetune/assets/tokenizer_corpus.txt (plain UTF-8 text, ~1 MB).

The corpus is license-clean and fully reproducible:

* documentation text (``__doc__``) and a little source code taken from a fixed,
  sorted list of pure-Python standard-library modules (Python Software
  Foundation License), read from the running interpreter (Python 3.11);
* template-generated prose, instructions and chat-style question/answer
  dialogue (arithmetic, word games, colours, animals, cities, programming,
  cooking, weather, ...) written for this project, drawn with a seeded RNG.

Running the script twice on the same Python version gives byte-identical
output.  Usage::

    python examples/make_corpus.py [--out PATH] [--seed N]
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "worker" / "finetune" / "assets" / "tokenizer_corpus.txt"

# Pure-Python stdlib modules whose docstrings are platform independent.
STDLIB_MODULES = sorted([
    "abc", "argparse", "ast", "base64", "bisect", "calendar", "cmd", "codecs",
    "collections", "colorsys", "configparser", "contextlib", "copy", "csv",
    "dataclasses", "datetime", "decimal", "difflib", "email.message",
    "enum", "fnmatch", "fractions", "ftplib", "functools", "getopt", "gettext",
    "glob", "graphlib", "gzip", "hashlib", "heapq", "hmac", "html",
    "html.parser", "http.client", "http.cookies", "imaplib", "inspect",
    "ipaddress", "json", "json.decoder", "json.encoder", "logging",
    "logging.handlers", "mailbox", "netrc", "numbers", "operator", "optparse",
    "pathlib", "pickle", "pprint", "queue", "quopri", "random", "re", "sched",
    "secrets", "shlex", "shutil", "smtplib", "statistics", "string",
    "stringprep",
    "tarfile", "tempfile", "textwrap", "threading", "timeit", "tokenize",
    "trace", "traceback", "types", "typing", "unittest", "unittest.mock",
    "urllib.parse", "urllib.request", "uuid", "warnings", "weakref",
    "wave", "xml.dom.minidom", "xml.etree.ElementTree", "zipfile", "zipapp",
])

# Functions whose source code is included verbatim as code samples.
SOURCE_SNIPPETS = [
    ("bisect", "insort_right"), ("calendar", "isleap"), ("calendar", "leapdays"),
    ("colorsys", "rgb_to_hsv"), ("colorsys", "hsv_to_rgb"), ("colorsys", "rgb_to_hls"),
    ("difflib", "get_close_matches"), ("fnmatch", "filter"), ("fnmatch", "translate"),
    ("glob", "glob"), ("heapq", "merge"), ("heapq", "nlargest"), ("shlex", "split"),
    ("shlex", "quote"), ("statistics", "median"), ("statistics", "mode"),
    ("statistics", "variance"), ("textwrap", "dedent"), ("textwrap", "indent"),
    ("textwrap", "shorten"), ("base64", "b32encode"), ("string", "capwords"),
    ("shutil", "copyfileobj"), ("shutil", "which"), ("tempfile", "mkdtemp"),
    ("functools", "total_ordering"), ("functools", "cmp_to_key"),
    ("json", "dumps"), ("json", "loads"), ("random", "Random.shuffle"),
    ("random", "Random.sample"), ("contextlib", "contextmanager"),
    ("dataclasses", "asdict"), ("pprint", "pformat"), ("copy", "deepcopy"),
]

_WS = re.compile(r"[ \t]+\n")


def clean(text: str) -> str:
    text = inspect.cleandoc(text)
    text = _WS.sub("\n", text)
    # Drop anything that looks like a memory address (never expected, but safe).
    text = re.sub(r"0x[0-9a-fA-F]{6,}", "0x0", text)
    return text.strip()


def stdlib_docs() -> list[str]:
    chunks: list[str] = []
    seen: set[str] = set()
    for name in STDLIB_MODULES:
        try:
            mod = importlib.import_module(name)
        except Exception:  # pragma: no cover - module missing on this build
            continue
        docs = []
        if mod.__doc__:
            docs.append(mod.__doc__)
        for attr in sorted(getattr(mod, "__all__", None) or dir(mod)):
            if attr.startswith("_"):
                continue
            obj = getattr(mod, attr, None)
            if obj is None or not (inspect.isfunction(obj) or inspect.isclass(obj)
                                   or inspect.isbuiltin(obj)):
                continue
            if getattr(obj, "__module__", None) not in (name, "_" + name.split(".")[-1]):
                continue
            d = obj.__doc__
            if d:
                docs.append(f"{attr}\n{d}")
            if inspect.isclass(obj):
                for mname, meth in sorted(vars(obj).items()):
                    if mname.startswith("_") or not callable(meth):
                        continue
                    md = getattr(meth, "__doc__", None)
                    if md:
                        docs.append(f"{attr}.{mname}\n{md}")
        for d in docs:
            c = clean(d)
            if len(c) < 40 or c in seen:
                continue
            seen.add(c)
            chunks.append(c)
    return chunks


def source_snippets() -> list[str]:
    out = []
    for modname, qual in SOURCE_SNIPPETS:
        try:
            obj = importlib.import_module(modname)
            for part in qual.split("."):
                obj = getattr(obj, part)
            src = inspect.getsource(obj)
        except Exception:  # pragma: no cover
            continue
        out.append(f"# From the Python standard library: {modname}.{qual}\n"
                   + textwrap_dedent(src).rstrip())
    return out


def textwrap_dedent(s: str) -> str:
    import textwrap
    return textwrap.dedent(s)


# --------------------------------------------------------------------------
# Template-generated text
# --------------------------------------------------------------------------
NAMES = ["Alice", "Bob", "Carmen", "Deepak", "Elena", "Farid", "Grace", "Hiro",
         "Ingrid", "Jamal", "Kofi", "Lena", "Mateo", "Nadia", "Oscar", "Priya",
         "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zara"]
ANIMALS = {
    "cat": ("meows", "a small carnivorous mammal often kept as a pet", "mice and fish", 4),
    "dog": ("barks", "a loyal domesticated mammal descended from wolves", "meat and kibble", 4),
    "cow": ("moos", "a large grazing animal kept for milk and meat", "grass and hay", 4),
    "duck": ("quacks", "a water bird with webbed feet and a flat bill", "seeds, insects and plants", 2),
    "horse": ("neighs", "a strong, fast animal used for riding and farm work", "grass, hay and oats", 4),
    "sheep": ("bleats", "a woolly farm animal that lives in flocks", "grass and clover", 4),
    "owl": ("hoots", "a nocturnal bird of prey with large eyes", "mice and insects", 2),
    "lion": ("roars", "a big cat that lives in prides on the savanna", "zebras and antelopes", 4),
    "frog": ("croaks", "an amphibian that starts life as a tadpole", "insects and worms", 4),
    "bee": ("buzzes", "a flying insect that makes honey and pollinates flowers", "nectar and pollen", 6),
    "snake": ("hisses", "a legless reptile that swallows its prey whole", "rodents and eggs", 0),
    "pig": ("oinks", "an intelligent farm animal with a snout", "almost anything", 4),
    "wolf": ("howls", "a wild canine that hunts in packs", "deer and rabbits", 4),
    "mouse": ("squeaks", "a tiny rodent with a long tail", "seeds and grain", 4),
    "elephant": ("trumpets", "the largest land animal, with a long trunk", "leaves, bark and fruit", 4),
    "penguin": ("squawks", "a flightless seabird that swims very well", "fish and krill", 2),
    "spider": ("stays silent", "an eight-legged arachnid that spins webs", "insects", 8),
    "goat": ("bleats", "a hardy climbing animal with horns", "shrubs and grass", 4),
}
COLOURS = {
    "the sky on a clear day": "blue", "grass": "green", "snow": "white", "coal": "black",
    "a ripe banana": "yellow", "a ripe tomato": "red", "an orange": "orange",
    "a lemon": "yellow", "a strawberry": "red", "a crow": "black", "milk": "white",
    "a carrot": "orange", "an emerald": "green", "a sapphire": "blue",
    "a ruby": "red", "chocolate": "brown", "a lime": "green", "an eggplant": "purple",
    "a flamingo": "pink", "a polar bear": "white", "the sun in a drawing": "yellow",
}
CITIES = {
    "France": "Paris", "Germany": "Berlin", "Italy": "Rome", "Spain": "Madrid",
    "Japan": "Tokyo", "Canada": "Ottawa", "Australia": "Canberra", "Egypt": "Cairo",
    "Kenya": "Nairobi", "Brazil": "Brasilia", "Argentina": "Buenos Aires",
    "India": "New Delhi", "China": "Beijing", "Mexico": "Mexico City",
    "Norway": "Oslo", "Sweden": "Stockholm", "Portugal": "Lisbon", "Greece": "Athens",
    "Turkey": "Ankara", "Peru": "Lima", "Chile": "Santiago", "Poland": "Warsaw",
    "Ireland": "Dublin", "Thailand": "Bangkok", "Vietnam": "Hanoi",
    "Nigeria": "Abuja", "Ghana": "Accra", "Morocco": "Rabat", "Finland": "Helsinki",
    "Austria": "Vienna", "Hungary": "Budapest", "Czechia": "Prague",
}
WORDS = ("apple river stone cloud garden window candle forest silver bridge "
         "pencil rocket basket mirror planet harbor castle meadow lantern violin "
         "thunder pepper marble island ladder jacket orchard canyon breeze saddle "
         "kettle puzzle falcon ribbon tunnel velvet walnut zephyr quartz glacier "
         "compass anchor blossom cactus dolphin ember feather goblet hammock igloo "
         "jigsaw kayak lemonade magnet nectar oyster parrot quiver raven sapphire "
         "teapot umbrella vortex wizard yogurt zipper acorn beacon cobalt dragon "
         "echo fossil granite hazel ivory jungle koala lagoon mango nutmeg olive "
         "pebble quill radish spruce tulip urchin vessel willow yarn zebra").split()
DISHES = {
    "pancakes": ["flour", "milk", "eggs", "butter", "a pinch of salt"],
    "tomato soup": ["tomatoes", "onion", "garlic", "stock", "olive oil"],
    "omelette": ["eggs", "butter", "salt", "pepper", "cheese"],
    "guacamole": ["avocados", "lime juice", "onion", "coriander", "salt"],
    "fried rice": ["cooked rice", "eggs", "peas", "soy sauce", "spring onions"],
    "lentil curry": ["red lentils", "coconut milk", "onion", "curry paste", "spinach"],
    "banana bread": ["ripe bananas", "flour", "sugar", "butter", "baking soda"],
    "hummus": ["chickpeas", "tahini", "lemon juice", "garlic", "olive oil"],
    "pasta salad": ["pasta", "cherry tomatoes", "olives", "feta", "basil"],
    "porridge": ["oats", "milk", "honey", "cinnamon", "berries"],
}
LANGS = {
    "Python": ("def", "print('hello')", "indentation", "lists and dictionaries"),
    "JavaScript": ("function", "console.log('hello')", "curly braces", "arrays and objects"),
    "Rust": ("fn", "println!(\"hello\")", "ownership and borrowing", "vectors and hash maps"),
    "Go": ("func", "fmt.Println(\"hello\")", "goroutines", "slices and maps"),
    "C": ("a return type", "printf(\"hello\\n\")", "manual memory management", "arrays and structs"),
    "Java": ("a method in a class", "System.out.println(\"hello\")", "classes", "ArrayList and HashMap"),
    "Ruby": ("def", "puts 'hello'", "blocks", "arrays and hashes"),
    "SQL": ("CREATE FUNCTION", "SELECT 'hello';", "tables and joins", "rows and columns"),
}
WEATHER = ["sunny", "cloudy", "rainy", "windy", "foggy", "snowy", "stormy", "mild", "humid", "frosty"]
PLACES = ["the park", "the library", "the market", "the beach", "the station", "the museum",
          "the harbour", "the old town", "the mountains", "the village square", "the garden",
          "the bakery", "the river bank", "the train", "the office", "the school"]
ACTIVITIES = ["read a book", "paint a picture", "bake some bread", "fix a bicycle",
              "plant tomatoes", "write a letter", "learn to juggle", "practise the piano",
              "walk the dog", "study for an exam", "build a bookshelf", "repair the fence",
              "sort old photographs", "cook dinner for friends", "go for a long run",
              "visit a friend", "watch the stars", "tidy the attic", "knit a scarf"]
ADJ = ["quiet", "bright", "busy", "gentle", "curious", "tired", "cheerful", "careful",
       "patient", "clever", "nervous", "brave", "calm", "eager", "thoughtful", "restless"]
SYSTEMS = [
    "You are a helpful assistant.", "You are a concise assistant. Answer briefly.",
    "You are a friendly tutor who explains things simply.",
    "You are an expert programmer. Give short, correct answers.",
    "You are a cooking assistant.", "Answer the user's question accurately.",
]
NUM_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
             "nine", "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen",
             "sixteen", "seventeen", "eighteen", "nineteen", "twenty"]


def art(noun: str, cap: bool = False) -> str:
    a = "an" if noun[0] in "aeiou" else "a"
    return (a.capitalize() if cap else a) + " " + noun


def chat(rng: random.Random, turns: list[tuple[str, str]], system: str | None) -> str:
    style = rng.randrange(4)
    parts = []
    if style == 0:  # ChatML
        if system:
            parts.append(f"<|im_start|>system\n{system}<|im_end|>")
        for u, a in turns:
            parts.append(f"<|im_start|>user\n{u}<|im_end|>")
            parts.append(f"<|im_start|>assistant\n{a}<|im_end|>")
    elif style == 1:
        if system:
            parts.append(f"System: {system}")
        for u, a in turns:
            parts.append(f"User: {u}\nAssistant: {a}")
    elif style == 2:
        for u, a in turns:
            parts.append(f"### Instruction:\n{u}\n\n### Response:\n{a}\n")
    else:
        for u, a in turns:
            parts.append(f"Q: {u}\nA: {a}")
    return "\n".join(parts)


def qa_arith(rng):
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    op = rng.randrange(4)
    if op == 0:
        q = rng.choice(["What is {a} plus {b}?", "Add {a} and {b}.", "Compute {a} + {b}.",
                        "What do you get when you add {a} to {b}?"]).format(a=a, b=b)
        ans = a + b
        expl = f"{a} + {b} = {ans}."
    elif op == 1:
        a, b = max(a, b), min(a, b)
        q = rng.choice(["What is {a} minus {b}?", "Subtract {b} from {a}.",
                        "Compute {a} - {b}."]).format(a=a, b=b)
        ans = a - b
        expl = f"{a} - {b} = {ans}."
    elif op == 2:
        a, b = a % 13, b % 13
        q = rng.choice(["What is {a} times {b}?", "Multiply {a} by {b}.",
                        "What is the product of {a} and {b}?"]).format(a=a, b=b)
        ans = a * b
        expl = f"{a} multiplied by {b} is {ans}."
    else:
        b = b % 12 + 1
        ans = a % 13
        a = ans * b
        q = rng.choice(["What is {a} divided by {b}?", "Divide {a} by {b}."]).format(a=a, b=b)
        expl = f"{a} / {b} = {ans}."
    return q, rng.choice([str(ans), f"The answer is {ans}.", expl])


def qa_word(rng):
    w = rng.choice(WORDS)
    k = rng.randrange(6)
    if k == 0:
        return rng.choice(["Reverse the word '{w}'.", "Spell '{w}' backwards."]).format(w=w), w[::-1]
    if k == 1:
        return rng.choice(["Spell '{w}' in capitals.", "Write '{w}' in upper case."]).format(w=w), w.upper()
    if k == 2:
        return f"How many letters are in the word '{w}'?", rng.choice(
            [str(len(w)), f"The word '{w}' has {len(w)} letters."])
    if k == 3:
        return f"What is the first letter of '{w}'?", w[0]
    if k == 4:
        v = sum(c in "aeiou" for c in w)
        return f"How many vowels does '{w}' contain?", f"'{w}' contains {v} vowels."
    return f"Spell '{w}' letter by letter.", "-".join(w.upper())


def qa_fact(rng):
    k = rng.randrange(5)
    if k == 0:
        thing, col = rng.choice(sorted(COLOURS.items()))
        return rng.choice(["What colour is {t}?", "Which colour is {t} usually?"]).format(t=thing), \
            rng.choice([col, f"{thing[0].upper() + thing[1:]} is {col}."])
    if k == 1:
        c, cap = rng.choice(sorted(CITIES.items()))
        return rng.choice(["What is the capital of {c}?", "Name the capital city of {c}.",
                           "Which city is the capital of {c}?"]).format(c=c), \
            rng.choice([cap, f"The capital of {c} is {cap}."])
    if k == 2:
        a, (snd, _, _, _) = rng.choice(sorted(ANIMALS.items()))
        return f"What sound does {art(a)} make?", rng.choice([snd.split()[0] if snd != "stays silent" else "none",
                                                           f"{art(a, True)} {snd}."])
    if k == 3:
        a, (_, desc, food, legs) = rng.choice(sorted(ANIMALS.items()))
        return rng.choice([f"What is {art(a)}?", f"Tell me about the {a}.", f"Describe {art(a)}."]), \
            f"{art(a, True)} is {desc}. It eats {food} and has {legs} legs."
    a, (_, _, food, legs) = rng.choice(sorted(ANIMALS.items()))
    return f"How many legs does {art(a)} have?", rng.choice([str(legs), f"{art(a, True)} has {legs} legs."])


def qa_cook(rng):
    d, ing = rng.choice(sorted(DISHES.items()))
    k = rng.randrange(3)
    if k == 0:
        return f"What do I need to make {d}?", f"For {d} you need " + ", ".join(ing[:-1]) + f" and {ing[-1]}."
    if k == 1:
        steps = [f"Gather the {ing[0]} and {ing[1]}.", f"Prepare the {ing[2]}.",
                 f"Combine everything with the {ing[3]}.", f"Finish with {ing[4]} and serve."]
        return f"How do I make {d}?", "\n".join(f"{i+1}. {s}" for i, s in enumerate(steps))
    return f"Can I make {d} without {ing[1]}?", rng.choice([
        f"Yes, you can usually replace the {ing[1]} with something similar, but the taste will change.",
        f"It is possible, but {ing[1]} is an important part of {d}, so the result will be different."])


def qa_code(rng):
    lang, (kw, hello, feat, coll) = rng.choice(sorted(LANGS.items()))
    k = rng.randrange(6)
    n = rng.randint(2, 9)
    if k == 0:
        return f"How do I print hello in {lang}?", f"Use `{hello}`."
    if k == 1:
        return f"How do you define a function in {lang}?", f"In {lang} you define a function with {kw}."
    if k == 2:
        return f"What is {lang} known for?", f"{lang} is known for {feat}."
    if k == 3:
        return f"Which collection types does {lang} offer?", f"{lang} commonly uses {coll}."
    if k == 4:
        fn = rng.choice(["square", "double", "triple", "negate", "increment"])
        body = {"square": "x * x", "double": "x * 2", "triple": "x * 3",
                "negate": "-x", "increment": "x + 1"}[fn]
        return f"Write a Python function called {fn} that takes x.", \
            f"```python\ndef {fn}(x):\n    return {body}\n```"
    return f"Write a Python loop that prints the numbers 1 to {n}.", \
        f"```python\nfor i in range(1, {n + 1}):\n    print(i)\n```"


def qa_misc(rng):
    k = rng.randrange(5)
    if k == 0:
        n = rng.randint(0, 20)
        return f"Write the number {n} in words.", NUM_WORDS[n]
    if k == 1:
        xs = rng.sample(range(1, 50), rng.randint(3, 6))
        return f"Sort these numbers: {', '.join(map(str, xs))}.", ", ".join(map(str, sorted(xs)))
    if k == 2:
        xs = rng.sample(range(1, 99), rng.randint(3, 6))
        return f"Which is the largest of {', '.join(map(str, xs))}?", str(max(xs))
    if k == 3:
        n = rng.randint(1, 60)
        return f"Is {n} even or odd?", "even" if n % 2 == 0 else "odd"
    a, b = rng.sample(WORDS, 2)
    return f"Which word comes first in the dictionary, '{a}' or '{b}'?", min(a, b)


QA = [qa_arith, qa_word, qa_fact, qa_cook, qa_code, qa_misc]


def prose(rng):
    n1, n2 = rng.sample(NAMES, 2)
    place, act, w = rng.choice(PLACES), rng.choice(ACTIVITIES), rng.choice(WEATHER)
    adj1, adj2 = rng.sample(ADJ, 2)
    a, (snd, desc, food, legs) = rng.choice(sorted(ANIMALS.items()))
    c, cap = rng.choice(sorted(CITIES.items()))
    d, ing = rng.choice(sorted(DISHES.items()))
    hour = rng.randint(6, 21)
    templates = [
        f"It was a {w} morning when {n1} arrived at {place}. {n1} felt {adj1}, because "
        f"there was a plan to {act} before noon. {art(a, True)} {snd} somewhere nearby, and {n2} waved "
        f"from across the road. Together they decided the day would be a good one.",
        f"{n1} moved to {cap}, the capital of {c}, last year. The city is {adj1} in the "
        f"evenings and {adj2} in the mornings. Most weekends {n1} likes to {act}, and on "
        f"{w} days the two of them stay inside and cook {d}.",
        f"The {a} is {desc}. It usually eats {food}. Children who visit the farm near "
        f"{place} often ask why the {a} {snd}, and the farmer, a {adj1} woman named "
        f"{n2}, always has a new story to tell them.",
        f"To make {d}, start with {ing[0]} and {ing[1]}. Add the {ing[2]} slowly and stir. "
        f"When everything is ready, mix in the {ing[3]} and finish with {ing[4]}. {n1} says "
        f"the secret is to be {adj1} and never rush.",
        f"At {hour}:00 the bell rang and {n1} left {place}. The weather had turned {w}. "
        f"\"Shall we {act} tomorrow?\" asked {n2}. \"Only if it stays {rng.choice(WEATHER)},\" "
        f"{n1} replied with a {adj2} smile.",
        f"Meeting notes: {n1} and {n2} met at {place} to discuss the project. They agreed to "
        f"{act} first, then review the budget. The next meeting is on "
        f"{rng.choice(['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday'])} at {hour}:30.",
        f"Dear {n2},\nThank you for the lovely visit to {cap}. The weather was {w} but we still "
        f"managed to {act}. I hope to see you again soon.\nBest wishes,\n{n1}",
    ]
    return rng.choice(templates)


def instruction_block(rng):
    k = rng.randrange(4)
    w = rng.sample(WORDS, rng.randint(3, 6))
    if k == 0:
        return ("Instruction: Rewrite the list in alphabetical order.\nInput: " + ", ".join(w)
                + "\nOutput: " + ", ".join(sorted(w)))
    if k == 1:
        return ("Instruction: Convert the words to title case.\nInput: " + " ".join(w)
                + "\nOutput: " + " ".join(x.capitalize() for x in w))
    if k == 2:
        s = " ".join(w)
        return f"Instruction: Count the words in the sentence.\nInput: {s}\nOutput: {len(w)}"
    x = rng.choice(w)
    return f"Instruction: Translate the word into pig latin.\nInput: {x}\nOutput: {x[1:]}{x[0]}ay"


def generated_text(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.45:
            turns = [rng.choice(QA)(rng) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
            system = rng.choice(SYSTEMS) if rng.random() < 0.4 else None
            out.append(chat(rng, turns, system))
        elif r < 0.8:
            out.append(prose(rng))
        else:
            out.append(instruction_block(rng))
    return out


def build(seed: int = 1234, target_bytes: int = 1_100_000) -> str:
    rng = random.Random(seed)
    docs = stdlib_docs()
    code = source_snippets()
    # Cap documentation at ~55% of the target so generated dialogue stays prominent.
    doc_budget = int(target_bytes * 0.55)
    picked, size = [], 0
    for d in docs:
        if size + len(d) > doc_budget:
            break
        picked.append(d)
        size += len(d.encode("utf-8")) + 2
    pieces = [("doc", d) for d in picked] + [("code", c) for c in code]
    size += sum(len(c.encode("utf-8")) + 2 for c in code)
    gen: list[str] = []
    while size < target_bytes:
        batch = generated_text(rng, 200)
        for g in batch:
            gen.append(g)
            size += len(g.encode("utf-8")) + 2
            if size >= target_bytes:
                break
    pieces += [("gen", g) for g in gen]
    rng.shuffle(pieces)
    return "\n\n".join(p for _, p in pieces) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--target-bytes", type=int, default=1_100_000)
    args = ap.parse_args(argv)
    if sys.version_info[:2] != (3, 11):
        print(f"warning: corpus is pinned to Python 3.11 docstrings; running "
              f"{sys.version.split()[0]} may give different bytes", file=sys.stderr)
    text = build(args.seed, args.target_bytes)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(text.encode("utf-8"))
    print(f"wrote {args.out} ({len(text.encode('utf-8'))} bytes, {text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
