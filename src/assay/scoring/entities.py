"""Entity lists in free text: model answers read into ``(surface, TYPE)`` pairs, and counted.

* :func:`parse_entities` -- bullet and numbered lists, ``Name - TYPE``, ``Name (TYPE)``,
  ``TYPE: a, b`` groups, JSON-ish lists and inline prose.
* :func:`entity_counts`, :func:`prf` -- matches against gold entities, micro P/R/F1.

Pure, deterministic, standard library only.
"""

from __future__ import annotations

import ast
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

from assay.scoring.text import _FENCE_RE, _QUOTE_CHARS, _TRAILING_PAREN_RE, _is_punct

__all__ = [
    "parse_entities",
    "entity_counts",
    "prf",
    "DEFAULT_ENTITY_TYPES",
]

# ---------------------------------------------------------------------------
# Entities
# ---------------------------------------------------------------------------

DEFAULT_ENTITY_TYPES: dict[str, list[str]] = {
    "PER": ["per", "person", "people", "persons", "name", "names"],
    "LOC": ["loc", "location", "locations", "place", "places", "city", "country", "gpe"],
    "ORG": ["org", "organization", "organisation", "organizations", "company", "companies", "institution"],
    "MISC": ["misc", "miscellaneous", "other"],
}

_TEXT_KEYS = ("text", "entity", "name", "word", "span", "mention", "surface", "value")
_TYPE_KEYS = ("type", "label", "entity_type", "entitytype", "category", "tag", "class", "entity_group", "ner")
_GENERIC_HEADERS = frozenset(
    """entities entity named answer output result results list response extracted found ner here
       the are is these following""".split()
)
_BULLET_RE = re.compile(r"^\s*(?:[-*•·‣◦▪–—+>]|\d+\s*[.):]|\(\d+\)|[a-zA-Z][.)](?=\s))\s*")
_PAREN_RE = re.compile(r"[(\[]\s*([^()\[\]]{1,60}?)\s*[)\]]")
_KV_RE = re.compile(
    r"^(?:name|entity|text|word|span|mention)\s*[:=]\s*(?P<name>.+?)\s*[,;|]\s*"
    r"(?:type|label|category|tag|class)\s*[:=]\s*(?P<type>.+?)\s*$",
    re.I,
)
_SEPARATORS = (" -> ", " => ", " — ", " – ", " - ", ":", " = ")
_LIST_SPLIT_RE = re.compile(r"\s*[,;]\s*|\s+and\s+", re.I)
_CONNECTORS = frozenset(
    "of de la le les van von der den du del della da di dos das y the and for on upon al el bin ibn".split()
)
_SURFACE_STRIP = _QUOTE_CHARS + " \t.,;:!?*_#"
_GENERIC_TYPE_WORDS = frozenset("entity entities name names named type tag label class category of".split())
_NONE_ANSWERS = frozenset(["none", "n/a", "na", "nil", "nothing", "no entities", "no entity"])
# prose: "The people mentioned are John Smith and Mary", "..., and the location is Paris."
_PROSE_GROUP_RE = re.compile(
    r"""\b(?P<type>[^\W\d_][\w-]*)
        (?:\s+(?:mentioned|named|found|referenced|listed|identified|involved|here|
               in\s+(?:the|this)\s+(?:text|sentence|passage)))*
        \s+(?:are|is|include|includes|were|was)\b\s*:?\s+
        (?P<names>.+?)
        (?=[.;!?](?:\s|$)|,?\s+and\s+the\s+[^\W\d_]+\s+(?:(?:mentioned|named)\s+)?(?:are|is|include)\b|$)""",
    re.X,
)
# prose: "John Smith is a person and Paris is a location." (the name is read backwards from "is a")
_PROSE_IS_A_RE = re.compile(
    r"\s+(?:is|was)\s+(?:an?|the)\s+(?:(?:name\s+of\s+an?|kind\s+of|type\s+of)\s+)?(?P<type>[^\W\d_]+)\b"
)
_PROSE_NAME_WORDS = 8


class _TypeIndex:
    def __init__(self, types: Mapping[str, Sequence[str]]):
        self.words: dict[str, str] = {}
        for canon, words in types.items():
            for w in [canon, *words]:
                key = " ".join(unicodedata.normalize("NFC", w).lower().split())
                self.words.setdefault(key, canon)

    def _lookup(self, w: str) -> str | None:
        for cand in (w, w.replace("-", " ").replace("_", " ")):
            if cand in self.words:
                return self.words[cand]
            for suffix, repl in (("ies", "y"), ("es", ""), ("s", "")):
                if cand.endswith(suffix) and cand[: -len(suffix)] + repl in self.words:
                    return self.words[cand[: -len(suffix)] + repl]
        return None

    def resolve(self, text: str) -> str | None:
        w = unicodedata.normalize("NFC", text).lower()
        w = w.replace("**", "").replace("__", "").replace("`", "")
        w = " ".join(w.split()).strip(_QUOTE_CHARS + " .,;:!?()[]{}<>#*")
        w = re.sub(r"^(?:entity\s+)?(?:type|label|category|tag)\s*[:=]\s*", "", w)
        w = re.sub(r"^[biesl]-(?=\w)", "", w)  # BIO(ES) tags
        if not w:
            return None
        found = self._lookup(w)
        if found is not None:
            return found
        # "person name", "organization entity", "entity type person": one type
        # word among generic words (never "New York City" or "Bank of Other")
        parts = w.split()
        if len(parts) > 1:
            rest = [p for p in parts if p not in _GENERIC_TYPE_WORDS]
            if len(rest) == 1:
                return self._lookup(rest[0])
            if not rest:
                return self._lookup(parts[0])
        return None


def _clean_surface(s: str) -> str:
    s = s.replace("**", "").replace("__", "").replace("`", "")
    prev = None
    while prev != s:
        prev = s
        s = " ".join(s.split()).strip(_SURFACE_STRIP)
        if len(s) >= 2 and s[0] in "([{" and s[-1] in ")]}":
            s = s[1:-1]
        m = _TRAILING_PAREN_RE.search(s)
        if m and m.start() > 0:
            s = s[: m.start()]
    return s


def _capitalised_run(piece: str) -> str:
    """The trailing run of name-like words of a prose fragment.

    "The entities are Alice" -> "Alice"; "include the Bank of America" ->
    "Bank of America". Fragments without lower-case prose words are kept whole.
    """
    toks = piece.split()

    def lower_word(tok: str) -> bool:
        core = tok.strip(_QUOTE_CHARS + ".,;:!?")
        return bool(core) and not any(c.isupper() or c.isdigit() for c in core)

    if len(toks) <= 1 or not any(lower_word(t) and t.lower() not in _CONNECTORS for t in toks):
        return piece
    run: list[str] = []
    for tok in reversed(toks):
        if lower_word(tok) and tok.lower() not in _CONNECTORS:
            break
        run.append(tok)
    run.reverse()
    while run and lower_word(run[0]):
        run.pop(0)
    return " ".join(run) if run else toks[-1]


def _split_names(s: str) -> list[str]:
    return [p for p in (_clean_surface(x) for x in _LIST_SPLIT_RE.split(s)) if p]


def _is_none_answer(s: str) -> bool:
    return " ".join(s.lower().split()).strip(" .!") in _NONE_ANSWERS


class _LineParser:
    def __init__(self, tidx: _TypeIndex):
        self.tidx = tidx
        self.section: str | None = None

    def parse(self, raw: str, *, force_item: bool = False) -> list[tuple[str, str]]:
        line = raw.replace("**", "").replace("__", "").replace("`", "").strip()
        if not line or set(line) <= set("-=|:_*# \t"):
            return []
        heading = line.startswith("#")
        line = line.lstrip("#").strip()
        m = _BULLET_RE.match(line)
        is_item = force_item or bool(m)
        if m:
            line = line[m.end():].strip()
        if not line:
            return []

        # markdown table rows / tab-separated cells
        if "|" in line or "\t" in line:
            cells = [c.strip() for c in re.split(r"\s*\|\s*|\t", line.strip("|").strip())]
            cells = [c for c in cells if c]
            if len(cells) >= 2:
                typed = [(c, self.tidx.resolve(c)) for c in cells]
                type_cells = [t for c, t in typed if t is not None]
                names = [c for c, t in typed if t is None and not c.isdigit()]
                if type_cells and names:
                    return [(_clean_surface(names[0]), type_cells[-1])]
                if not type_cells and names and not all(
                    w in _GENERIC_HEADERS or w in ("type", "label", "category", "tag")
                    for c in names for w in c.lower().split()
                ):
                    return [(_clean_surface(names[0]), "")]
                return []

        # "Name: Alice, Type: PER"
        m = _KV_RE.match(line)
        if m:
            return [(_clean_surface(m.group("name")), self.tidx.resolve(m.group("type")) or "")]

        # several "Type: names" groups on one line: "PER: Alice; LOC: Paris"
        if ";" in line and line.count(":") > 1:
            out: list[tuple[str, str]] = []
            for seg in line.split(";"):
                out.extend(self.parse(seg, force_item=is_item))
            return out

        # section header: "People:" / "### Locations" / "PER"
        if line.endswith(":") and ":" not in line[:-1]:
            head = line[:-1]
            self.section = self.tidx.resolve(head)
            return []
        if not is_item and (heading or len(line.split()) <= 3):
            t = self.tidx.resolve(line)
            if t is not None:
                self.section = t
                return []

        # separator with a recognised type on one side
        first_split: tuple[str, str] | None = None
        for sep in _SEPARATORS:
            if sep not in line:
                continue
            if sep == ":":
                left, _, right = line.partition(sep)
            else:
                left, _, right = line.rpartition(sep)
            left, right = left.strip(), right.strip()
            if not left or not right:
                continue
            if first_split is None:
                first_split = (left, right)
            t_right, t_left = self.tidx.resolve(right), self.tidx.resolve(left)
            if t_right is not None:
                name = _clean_surface(left)
                return [(name, t_right)] if name else []
            if t_left is not None:
                return [(n, t_left) for n in _split_names(right)]
            # prose ending in a type word: "The text mentions two people: Alice and Bob"
            lw = left.split()
            if sep == ":" and len(lw) >= 3 and sum(w.islower() for w in lw) >= 2:
                t_tail = self.tidx.resolve(lw[-1])
                if t_tail is not None:
                    return [(n, t_tail) for n in _split_names(right)]

        # parentheticals holding a type: "Alice (PER)", "... Alice (person) and Paris (location)."
        parens = list(_PAREN_RE.finditer(line))
        recognised = [(m, self.tidx.resolve(m.group(1))) for m in parens]
        recognised = [(m, t) for m, t in recognised if t is not None]
        if is_item and len(parens) == 1 and not line[parens[0].end():].strip(" .,;:!?"):
            name = _clean_surface(line[: parens[0].start()])
            t = self.tidx.resolve(parens[0].group(1))
            return [(name, t if t is not None else (self.section or ""))] if name else []
        if recognised:
            out = []
            prev_end = 0
            for m, t in recognised:
                segment = line[prev_end: m.start()]
                prev_end = m.end()
                pieces = re.split(r"\s*[,;:]\s*|\s+and\s+|\s+&\s+", segment)
                piece = pieces[-1].strip() if pieces else ""
                name = _clean_surface(_capitalised_run(piece))
                if name:
                    out.append((name, t))
            return out

        # separator, neither side a type
        if first_split is not None:
            left, right = first_split
            left_words = left.lower().split()
            if left_words and all(w.strip(".,") in _GENERIC_HEADERS for w in left_words):
                return [(n, self.section or "") for n in _split_names(right)]
            if is_item or (len(left.split()) <= 6 and len(right.split()) <= 3):
                name = _clean_surface(left)
                return [(name, "")] if name else []
            return []

        prose = self._prose(line)
        if prose:
            return prose

        # a bare name
        if _is_none_answer(line):
            return []
        if is_item:
            name = _clean_surface(line)
            return [(name, self.section or "")] if name else []
        words = line.split()
        if (
            len(words) <= 6
            and line[-1] not in ".!?:"
            and not any(w.lower().strip(".,") in ("entity", "entities") for w in words)
        ):
            name = _clean_surface(line)
            return [(name, self.section or "")] if name else []
        return []


    def _prose(self, line: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for m in _PROSE_GROUP_RE.finditer(line):
            t = self.tidx.resolve(m.group("type"))
            if t is None:
                continue
            for name in _split_names(m.group("names")):
                toks = name.split()
                while len(toks) > 1 and toks[0].islower():  # "the United Nations"
                    toks.pop(0)
                if toks and not (len(toks) == 1 and toks[0].islower()):
                    out.append((" ".join(toks), t))
        if out:
            return out
        for m in _PROSE_IS_A_RE.finditer(line):
            t = self.tidx.resolve(m.group("type"))
            if t is None:
                continue
            run: list[str] = []
            for tok in reversed(line[: m.start()].split()[-_PROSE_NAME_WORDS:]):
                if not (tok[:1].isupper() or (run and tok in _CONNECTORS)) or (run and tok[-1] in ",;:.!?"):
                    break
                run.insert(0, tok)
            while run and not run[0][:1].isupper():
                run.pop(0)
            name = _clean_surface(" ".join(run))
            if name and name.lower() not in ("it", "this", "that", "there", "the", "he", "she", "they"):
                out.append((name, t))
        return out


def _json_candidate(text: str) -> object | None:
    starts = [i for i in (text.find("["), text.find("{")) if i >= 0]
    if not starts:
        return None
    start = min(starts)
    end = max(text.rfind("]"), text.rfind("}"))
    if end <= start:
        return None
    blob = text[start: end + 1]
    for loader in (json.loads, ast.literal_eval):
        try:
            return loader(blob)
        except Exception:  # noqa: BLE001 - any parse failure means "not JSON"
            continue
    return None


def _walk_json(obj: object, tidx: _TypeIndex, out: list[tuple[str, str]], inherited: str = "") -> None:
    if isinstance(obj, dict):
        lower = {str(k).lower(): v for k, v in obj.items()}
        text_val = next((lower[k] for k in _TEXT_KEYS if isinstance(lower.get(k), str)), None)
        if text_val is not None:
            type_val = next((lower[k] for k in _TYPE_KEYS if isinstance(lower.get(k), str)), None)
            t = tidx.resolve(type_val) if type_val is not None else None
            out.append((_clean_surface(text_val), t if t is not None else ("" if type_val is not None else inherited)))
            return
        for k, v in obj.items():
            kt = tidx.resolve(str(k))
            if isinstance(v, str):
                vt = tidx.resolve(v)
                if kt is not None and vt is None:
                    out.append((_clean_surface(v), kt))  # {"PER": "Alice"}
                elif vt is not None:
                    out.append((_clean_surface(str(k)), vt))  # {"Alice": "PER"}
            elif isinstance(v, (list, tuple, dict)):
                _walk_json(v, tidx, out, kt if kt is not None else inherited)
    elif isinstance(obj, (list, tuple)):
        if len(obj) == 2 and all(isinstance(x, str) for x in obj):
            t0, t1 = tidx.resolve(obj[0]), tidx.resolve(obj[1])
            if t1 is not None:
                out.append((_clean_surface(obj[0]), t1))
                return
            if t0 is not None:
                out.append((_clean_surface(obj[1]), t0))
                return
        for item in obj:
            if isinstance(item, str):
                parser = _LineParser(tidx)
                parser.section = inherited or None
                out.extend(parser.parse(item, force_item=True))
            else:
                _walk_json(item, tidx, out, inherited)


def _dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for surface, typ in pairs:
        if not surface:
            continue
        key = (" ".join(surface.casefold().split()), typ)
        if key not in seen:
            seen.add(key)
            out.append((surface, typ))
    return out


def parse_entities(
    text: str, *, types: Mapping[str, Sequence[str]] | None = None
) -> list[tuple[str, str]]:
    """Parse a model's free-form entity list into ``(surface, TYPE)`` pairs.

    ``types`` maps each canonical type to the words that mean it (the canonical
    name itself always counts; simple plurals and ``B-``/``I-`` prefixes are
    understood); it defaults to :data:`DEFAULT_ENTITY_TYPES`. An item whose
    type is not recognised gets type ``""``.

    Understood formats: JSON or Python-literal lists/dicts
    (``[{"text": .., "type": ..}]``, ``[["Paris", "LOC"]]``,
    ``{"PER": ["Alice"]}``, ``{"entities": [...]}``), possibly inside a code
    fence; and, line by line, bullet or numbered items ("- Barack Obama (PER)",
    "1. Paris - LOC", "* Google: organization"), "Name - Type", "Name (Type)",
    "Name: Type", "Type: Name1, Name2" ("People: Alice, Bob"), section headers
    ("Locations:" followed by items), markdown table rows, "Name: X, Type: Y",
    and inline prose ("The entities are Alice (person) and Paris (location).").
    Surfaces lose surrounding quotes, markdown and trailing punctuation; pairs
    are de-duplicated (case-insensitively on the surface) keeping first order.
    """
    tidx = _TypeIndex(types if types is not None else DEFAULT_ENTITY_TYPES)
    if not text or not text.strip():
        return []
    obj = _json_candidate(text)
    if obj is not None:
        out: list[tuple[str, str]] = []
        _walk_json(obj, tidx, out)
        out = _dedupe(out)
        if out:
            return out
    parser = _LineParser(tidx)
    pairs: list[tuple[str, str]] = []
    for line in _FENCE_RE.sub("", text).splitlines():
        pairs.extend(parser.parse(line))
    return _dedupe(pairs)


def _entity_key(surface: str) -> str:
    s = " ".join(unicodedata.normalize("NFC", surface).lower().split())
    prev = None
    while prev != s:
        prev = s
        s = s.strip()
        while s and _is_punct(s[0]):
            s = s[1:]
        while s and _is_punct(s[-1]):
            s = s[:-1]
        s = s.strip()
        if s.startswith("the "):
            s = s[4:]
    return s


def entity_counts(
    pred: Sequence[tuple[str, str]], gold: Sequence[tuple[str, str]], *, typed: bool = True
) -> tuple[int, int, int]:
    """``(tp, fp, fn)`` of predicted against gold entities.

    Surfaces match exactly after light normalisation: case-insensitive,
    whitespace collapsed, surrounding punctuation stripped, a leading "the "
    dropped. Types compare case-insensitively; ``typed=False`` ignores them.
    Each gold entity (duplicates included) is matched at most once, so a
    repeated prediction of one gold entity is a false positive.
    """

    def key(pair: tuple[str, str]) -> tuple[str, str]:
        surface, typ = pair
        return (_entity_key(surface), typ.strip().upper() if typed else "")

    remaining = Counter(key(g) for g in gold)
    tp = fp = 0
    for p in pred:
        k = key(p)
        if remaining[k] > 0:
            remaining[k] -= 1
            tp += 1
        else:
            fp += 1
    fn = sum(remaining.values())
    return tp, fp, fn


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1 from counts; 0.0 wherever a ratio is undefined."""
    precision = tp / (tp + fp) if tp + fp > 0 else 0.0
    recall = tp / (tp + fn) if tp + fn > 0 else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1
