"""Numbers and letters in (chain-of-thought) answers.

* :func:`extract_number`, :func:`normalize_number` -- the answer number: GSM8K's ``####``,
  ``\\boxed{}``, "the answer is", last or first number; currency, separators, signs and
  decimals normalised.
* :func:`extract_letter`, :func:`choice_letters` -- the chosen letter of a lettered
  multiple-choice answer (BBH "(B)", AGIEval "Answer: B", "答案是 B", "B. Paris").

Pure, deterministic, standard library only.
"""

from __future__ import annotations

import re
import string
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = [
    "normalize_number",
    "extract_number",
    "choice_letters",
    "extract_letter",
    "NUMBER_MODES",
]

# ---------------------------------------------------------------------------
# Numbers
# ---------------------------------------------------------------------------

# a number: optional sign (not right after a word character, so "16-3" is 16 and 3), optional
# currency, digits with comma thousands separators or plain digits, optional decimals
_NUMBER_RE = re.compile(
    r"""(?<![\w.])
        (?P<sign>[-−–]\s?)?
        (?:[$€£¥₹]\s?)?
        (?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
        (?!\d|,\d{3})""",
    re.X,
)
_GSM8K_MARK_RE = re.compile(r"####")
_BOXED_RE = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_ANSWER_IS_RE = re.compile(
    r"\b(?:final\s+answer|answer)\b\s*(?:is|would\s+be|should\s+be|will\s+be|=|:)?\s*:?\s*",
    re.I,
)
NUMBER_MODES = ("gsm8k", "last", "first")


def normalize_number(raw: str) -> str | None:
    """A number as written ("$1,234.50", "-3.50", "−2", "18.") → canonical text ("1234.5", "-3.5", "-2", "18").

    Currency signs, thousands separators, spaces, a trailing "%" and a trailing "." go; decimals
    lose trailing zeros; an integral value has no decimal point; "-0" is "0". Not a number → None.
    """
    s = unicodedata.normalize("NFKC", str(raw)).strip().replace("−", "-").replace("–", "-")
    s = re.sub(r"[\s$€£¥₹,%]", "", s).rstrip(".")
    try:
        d = Decimal(s)
    except InvalidOperation:
        return None
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def _numbers(text: str) -> list[str]:
    out = []
    for m in _NUMBER_RE.finditer(text):
        n = normalize_number(("-" if m.group("sign") else "") + m.group("num"))
        if n is not None:
            out.append(n)
    return out


def extract_number(text: str, mode: str = "last") -> str | None:
    """The answer number of a free-form (often chain-of-thought) answer, normalised, or None.

    ``last`` and ``first`` take the last or first number in the text. ``gsm8k`` looks, in order,
    for the number after the final ``####``, the last ``\\boxed{...}``, the number after the last
    "answer is" / "Answer:" statement, and falls back to the last number. Numbers may carry a
    currency sign, comma thousands separators, a sign and decimals (see :func:`normalize_number`);
    a minus sign right after a word ("16-3") is an operator, not a sign.
    """
    if mode not in NUMBER_MODES:
        raise ValueError(f"number mode must be one of {', '.join(NUMBER_MODES)}, not {mode!r}")
    t = unicodedata.normalize("NFKC", text or "").replace("**", "").replace("`", "")
    if mode == "gsm8k":
        marks = list(_GSM8K_MARK_RE.finditer(t))
        if marks:
            nums = _numbers(t[marks[-1].end():])
            if nums:
                return nums[0]
        boxed = [n for m in _BOXED_RE.finditer(t) for n in _numbers(m.group(1))[:1]]
        if boxed:
            return boxed[-1]
        for m in reversed(list(_ANSWER_IS_RE.finditer(t))):
            nums = _numbers(t[m.end():m.end() + 40].split("\n", 1)[0])
            if nums:
                return nums[0]
    nums = _numbers(t)
    if not nums:
        return None
    return nums[0] if mode == "first" else nums[-1]


# ---------------------------------------------------------------------------
# Letters (lettered multiple-choice answers)
# ---------------------------------------------------------------------------

_L = r"(?P<L>[A-Za-z])"
# what may follow a letter that is an answer: not another letter or digit
_AFTER = (
    r"(?![A-Za-z0-9'’])"
    r"(?!\s*[)\]]?\s*(?:,|/|\bor\b|\band\b|\bthrough\b|\bto\b)\s*[(\[]?[A-Za-z](?![A-Za-z]))"
)
# an explicit statement: "the answer is (C)", "Answer: B", "答案是 A", "故选 C"
_LETTER_ANSWER_RE = re.compile(
    r"""(?:
          \banswer\b(?:\s+(?:to\s+(?:the|this)\s+question|choice|option))?
             \s*(?:(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\b(?:\s+(?:therefore|thus|clearly))?\s*[:=\-]?|[:=\-])
        | \b(?:correct|right|best)\s+(?:option|choice|letter)\s*(?:is\b|[:=])
        | 答案\s*(?:是|为|應為|应为|应该是|選|选)?\s*[:：]?
        | 故选|所以选|因此选|应选|選擇|选择
        )
        \s*(?:option|choice|letter)?\s*[:\-]?\s*
        (?P<open>[(\[]?)\s*""" + _L + r"""\s*(?P<close>[)\]]?)""" + _AFTER,
    re.I | re.X,
)
# a weaker statement: "I choose B", "option C is correct", "(B) is the correct answer"
_LETTER_CHOICE_RE = re.compile(
    r"""(?:
          \b(?:I\s+(?:would\s+|will\s+|'d\s+)?(?:choose|pick|select|go\s+with)|choose|select)\s+(?:option\s+|choice\s+)?
            (?P<open>[(\[]?)""" + _L + r"""(?P<close>[)\]]?)""" + _AFTER + r"""
        | \b(?:option|choice)\s+(?P<open2>[(\[]?)(?P<L2>[A-Za-z])(?P<close2>[)\]]?)""" + _AFTER + r"""
             (?=\s+(?:is|would\s+be|seems)\s+(?:the\s+)?(?:correct|right|best|answer))
        | (?P<open3>[(\[])(?P<L3>[A-Za-z])(?P<close3>[)\]])\s+is\s+(?:the\s+)?(?:correct|right|best)\b
        )""",
    re.I | re.X,
)
_LETTER_ALONE_RE = re.compile(r"^[\W_]*(?P<L>[A-Za-z])[\W_]*$")
_LETTER_LEAD_RE = re.compile(r"^\s*(?:option\s+)?(?:\((?P<a>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<c>[A-Za-z])[.):])(?=\s|$)", re.I)
_LETTER_PAREN_RE = re.compile(r"[(\[]\s*(?P<L>[A-Z])\s*[)\]]")
_LETTER_BARE_RE = re.compile(r"(?<![A-Za-z0-9'’\-])(?P<L>[A-Z])(?![A-Za-z0-9'’\-])(?!\s+[a-z])")


def choice_letters(letters: str | None = None, n: int | None = None) -> str:
    """The letters of the choices: ``letters`` ("ABCDE"), or the first ``n`` letters, or "ABCD"."""
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 26:
            raise ValueError(f"n must be a number of options from 1 to 26, not {n!r}")
        return string.ascii_uppercase[:n]
    if letters is None:
        return "ABCD"
    up = str(letters).upper()
    if not up or any(c not in string.ascii_uppercase for c in up) or len(set(up)) != len(up):
        raise ValueError(f"letters must be distinct letters A-Z such as 'ABCDE', not {letters!r}")
    return up


def _lower_ok(m: re.Match, text: str, letter: str, bracketed: bool) -> bool:
    """A lower-case letter is an answer only when it cannot be a word: bracketed or line-final."""
    if letter.isupper() or bracketed:
        return True
    rest = text[m.end():].split("\n", 1)[0]
    return not rest.strip(" \t.!)]*") and letter != "i"


def _statement_letter(regex: re.Pattern, text: str, allowed: str) -> str | None:
    found = None
    for m in regex.finditer(text):
        groups = {k: v for k, v in m.groupdict().items() if v is not None}
        letter = groups.get("L") or groups.get("L2") or groups.get("L3")
        if letter is None:
            continue
        bracketed = any(groups.get(k) for k in ("open", "open2", "open3", "close", "close2", "close3"))
        if letter.upper() in allowed and _lower_ok(m, text, letter, bracketed):
            found = letter.upper()
    return found


def extract_letter(text: str, letters: str = "ABCD") -> str | None:
    """The chosen letter of a lettered multiple-choice answer (upper case), or None.

    In order of trust:

    1. the last explicit statement: "the answer is (C).", "So the answer is B", "Answer: b",
       "The correct option is D", "答案是 A", "故选 C" (the last one wins, as in chain of thought);
    2. the last weaker statement: "I choose B", "option C is correct", "(B) is the right one";
    3. the whole answer is one letter ("B", "(B)", "b.", "**B**"), or it starts with one
       ("B. Paris", "(B) Paris", "B) Paris"), unless several lines start with different letters
       (the model listed the options);
    4. one distinct letter in brackets ("... so (B)"), then one distinct bare capital letter
       that is not prose (a capital before a lower-case word, "A dog", "I think", is prose).

    Only ``letters`` count. A lower-case letter counts only where it cannot be a word: bracketed,
    alone, or at the end of its line in a statement. Full-width forms ("（Ｂ）") are read.
    """
    allowed = letters.upper()
    t = unicodedata.normalize("NFKC", text or "").replace("**", "").replace("__", "").replace("`", "")
    if not t.strip():
        return None
    for regex in (_LETTER_ANSWER_RE, _LETTER_CHOICE_RE):
        found = _statement_letter(regex, t, allowed)
        if found:
            return found
    stripped = t.strip()
    m = _LETTER_ALONE_RE.match(stripped)
    if m and m.group("L").upper() in allowed and m.group("L") != "i":
        return m.group("L").upper()
    leads = []
    for line in stripped.splitlines():
        lm = _LETTER_LEAD_RE.match(line)
        if lm:
            leads.append(lm.group("a") or lm.group("b") or lm.group("c"))
    first = next(ln for ln in stripped.splitlines() if ln.strip())
    lm = _LETTER_LEAD_RE.match(first)
    if lm and len({x.upper() for x in leads}) == 1:
        letter = lm.group("a") or lm.group("b") or lm.group("c")
        if letter.upper() in allowed and (letter.isupper() or lm.group("a") or lm.group("b") or letter != "i"):
            return letter.upper()
    for regex in (_LETTER_PAREN_RE, _LETTER_BARE_RE):
        cands = {m.group("L") for m in regex.finditer(t) if m.group("L") in allowed}
        if len(cands) == 1:
            return cands.pop()
        if cands:
            return None
    return None
