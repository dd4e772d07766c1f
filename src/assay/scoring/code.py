"""Code answers: extract runnable Python from free-form text, check it in the sandbox, pass@k.

Extraction never executes anything; checking runs the program in :mod:`assay.scoring.sandbox`.
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .sandbox import ExecResult, Limits, run_many

DEFAULT_LIMITS = Limits()  # the sandbox's defaults (one shared, frozen value)

__all__ = [
    "CodeVerdict",
    "extract_code",
    "check_function",
    "check_stdout",
    "check_many",
    "code_job",
    "entry_point_of_asserts",
    "pass_at_k",
]


# --------------------------------------------------------------------------------------------
# Extraction

_PY_LANGS = {"python", "py", "python3", "py3", "python2", "ipython", "sage"}
_FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$")
_MAX_PARSES = 4000  # bound on ast.parse calls when looking for code in prose


@dataclass
class _Block:
    lang: str
    text: str


def _fenced_blocks(text: str) -> tuple[list[_Block], str]:
    """Fenced blocks (an unterminated last fence runs to the end) and the text outside them."""
    blocks: list[_Block] = []
    outside: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            outside.append(lines[i])
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        body: list[str] = []
        i += 1
        while i < len(lines):
            s = lines[i].strip()
            if s.startswith(fence[0] * len(fence)) and not s.strip(fence[0]):
                break
            body.append(lines[i])
            i += 1
        i += 1  # past the closing fence (or the end)
        blocks.append(_Block(lang, "\n".join(body)))
        outside.append("")
    return blocks, "\n".join(outside)


def _parses(code: str) -> bool:
    try:
        ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    return True


def _is_real_code(code: str) -> bool:
    """Parses, and is more than bare words or numbers ('Fizz', '15', 'Sure')."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    for node in tree.body:
        if not isinstance(node, ast.Expr):
            return True
        if not isinstance(node.value, (ast.Constant, ast.Name, ast.Tuple, ast.UnaryOp,
                                       ast.Attribute, ast.Compare, ast.BinOp)):
            return True
    return False


def _is_doctest(code: str) -> bool:
    lines = [x.strip() for x in code.splitlines() if x.strip()]
    return bool(lines) and sum(x.startswith(">>>") for x in lines) * 2 >= len(lines)


def _defines(code: str, name: str | None) -> bool:
    if not name:
        return False
    n = re.escape(name)
    return bool(
        re.search(rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{n}[ \t]*\(", code, re.M)
        or re.search(rf"^[ \t]*class[ \t]+{n}\b", code, re.M)
        or re.search(rf"^{n}[ \t]*(?::[^=\n]*)?=(?!=)", code, re.M)
    )


def _only_definitions(code: str) -> bool:
    """Imports, functions, classes and plain assignments only: safe to keep as a helper."""
    try:
        tree = ast.parse(textwrap.dedent(code))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    ok = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef,
          ast.Assign, ast.AnnAssign)
    for node in tree.body:
        if isinstance(node, ok):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        return False
    return bool(tree.body)


_OPENERS = re.compile(
    r"^(?:@|try\s*:|(?:async\s+)?(?:def|class|for|with|while|if)\b|import\b|from\b|\"\"\"|''')"
)


def _may_start_code(line: str) -> bool:
    """Cheap filter for the first line of a code span (the parse decides)."""
    s = line.strip()
    if s.startswith("#"):
        return True
    if not s or s.startswith((")", "]", "}")):
        return False
    if _OPENERS.match(s):
        return True
    if _parses(s):
        return True
    if s.endswith(":") and _parses(s + "\n pass"):
        return True
    opened = sum(s.count(c) for c in "([{") - sum(s.count(c) for c in ")]}")
    return opened > 0 or s.endswith(("\\", ","))


def _longest_parsing_span(text: str, head: str = "") -> str:
    """The longest run of lines that parses as Python (after dedenting), original indentation."""
    lines = text.splitlines()
    nonblank = [i for i, x in enumerate(lines) if x.strip()]
    if not nonblank:
        return ""
    best = (0, 0)
    budget = _MAX_PARSES
    for s in nonblank:
        if nonblank[-1] + 1 - s <= best[1] - best[0]:
            break
        if not _may_start_code(lines[s]):
            continue
        for e in reversed(nonblank):
            end = e + 1
            if end - s <= best[1] - best[0]:
                break
            budget -= 1
            if budget < 0:
                break
            span = "\n".join(lines[s:end])
            if _parses(textwrap.dedent(span)) or (head and _parses(head + span)):
                best = (s, end)
                break
        if budget < 0:
            break
    span = "\n".join(lines[best[0]:best[1]])
    if _parses(textwrap.dedent(span)):
        span = _trim_bare_words(span)
        return span if span.strip() and _is_real_code(span) else ""
    return span  # parses only as the continuation of ``head``


def _is_bare_word(node: ast.stmt) -> bool:
    """A statement that is just a name or a number: prose that happens to parse ('Solution')."""
    return isinstance(node, ast.Expr) and (
        isinstance(node.value, ast.Name)
        or (isinstance(node.value, ast.Constant) and not isinstance(node.value.value, str))
    )


def _trim_bare_words(span: str) -> str:
    """Drop bare-word statements at the start and end of a parsed span."""
    try:
        tree = ast.parse(textwrap.dedent(span))
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return span
    body = list(tree.body)
    while body and _is_bare_word(body[0]):
        body.pop(0)
    while body and _is_bare_word(body[-1]):
        body.pop()
    if not body:
        return ""
    if len(body) == len(tree.body):
        return span
    first = body[0].lineno
    if getattr(body[0], "decorator_list", None):
        first = min(d.lineno for d in body[0].decorator_list)
    last = body[-1].end_lineno or body[-1].lineno
    return "\n".join(span.splitlines()[first - 1:last])


def _strip_blank_edges(code: str) -> str:
    lines = code.splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def _extract_raw(text: str, entry_point: str | None, head: str = "") -> str:
    blocks, outside = _fenced_blocks(text)
    py = [
        b.text for b in blocks
        if b.text.strip() and not _is_doctest(b.text)
        and (b.lang in _PY_LANGS or (b.lang == "" and _is_real_code(b.text)))
    ]
    py = [_strip_blank_edges(b) for b in py]
    if py:
        if entry_point and any(_defines(b, entry_point) for b in py):
            # The blocks that define the function, plus helper blocks (imports, other
            # functions); usage examples and demo runs are left out.
            keep = [b for b in py if _defines(b, entry_point) or _only_definitions(b)]
            return "\n\n".join(_dedent_block(b) for b in keep)
        if len(py) == 1:
            return py[0]
        return "\n\n".join(_dedent_block(b) for b in py)
    # No Python block: look for code in the prose (fenced non-Python blocks blanked out).
    return _strip_blank_edges(_longest_parsing_span(outside if blocks else text, head))


def _dedent_block(code: str) -> str:
    return textwrap.dedent(code)


def _prefix_entry_point(prompt_prefix: str) -> str | None:
    names = re.findall(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", prompt_prefix, re.M)
    return names[-1] if names else None


def _prefix_imports(prompt_prefix: str) -> str:
    """Top-level import lines of the prompt (a full rewrite of the function may omit them)."""
    lines = [
        x for x in prompt_prefix.splitlines()
        if re.match(r"^(?:import|from)\s+[\w.]+", x) and _parses(x)
    ]
    return "\n".join(lines)


def _completion_fits(program: str, entry_point: str | None, prefix_lines: int) -> bool:
    """The program parses and the completion continues the body of ``entry_point``."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return False
    if not entry_point:
        return True
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == entry_point:
            if any(stmt.lineno > prefix_lines for stmt in node.body):
                return True
    return False


def _join_prefix(prompt_prefix: str, raw: str, dedented: str, entry_point: str | None) -> str:
    """prompt_prefix + the completion, keeping or repairing the body's indentation."""
    head = prompt_prefix if prompt_prefix.endswith("\n") else prompt_prefix + "\n"
    last = next((x for x in reversed(prompt_prefix.splitlines()) if x.strip()), "")
    indent = last[: len(last) - len(last.lstrip())]
    if last.rstrip().endswith(":"):
        indent += "    "
    if not indent:
        indent = "    "
    n_prefix = len(prompt_prefix.splitlines())
    candidates = [
        (prompt_prefix + raw, n_prefix - (0 if prompt_prefix.endswith("\n") else 1)),
        (head + raw, n_prefix),
        (head + textwrap.indent(dedented, indent, lambda x: bool(x.strip())), n_prefix),
    ]
    chosen = next((c for c, n in candidates if _completion_fits(c, entry_point, n)), None)
    if chosen is None:
        chosen = next((c for c, _ in candidates if _parses(c)), candidates[0][0])
    return chosen if chosen.endswith("\n") else chosen + "\n"


def extract_code(text: str, *, entry_point: str | None = None, prompt_prefix: str = "") -> str:
    """Runnable Python from a chat model's answer ('' when there is none).

    1. Fenced blocks (```python, ```py, bare ``` that holds code; an unterminated last fence
       runs to the end). With ``entry_point``, the blocks defining it (plus helper-only
       blocks) are kept; otherwise all Python blocks, in order.
    2. No fences: the longest span of lines that parses, so prose before and after is dropped.
    3. Uniformly indented code is dedented.
    4. With ``prompt_prefix`` (a HumanEval-style completion of a signature), a text that does
       not define the entry point itself is appended to the prefix; one that does gets the
       prefix's import lines prepended.
    """
    head = ""
    if prompt_prefix:
        head = prompt_prefix if prompt_prefix.endswith("\n") else prompt_prefix + "\n"
    raw = _extract_raw(text or "", entry_point, head)
    if not raw.strip():
        return ""
    code = textwrap.dedent(raw).strip("\n") + "\n"
    if prompt_prefix:
        ep = entry_point or _prefix_entry_point(prompt_prefix)
        if not _defines(code, ep):
            return _join_prefix(prompt_prefix, raw.strip("\n") + "\n", code, ep)
        imports = _prefix_imports(prompt_prefix)
        missing = "\n".join(x for x in imports.splitlines() if x not in code.splitlines())
        if missing:
            code = missing + "\n\n" + code
    return code


# --------------------------------------------------------------------------------------------
# Checking


@dataclass(frozen=True)
class CodeVerdict:
    passed: bool
    status: str  # ExecResult.status, or "no_code" when extraction found nothing
    reason: str
    code: str  # the program that was run ('' for "no_code")
    isolation: str = ""  # ExecResult.isolation: how the program was sandboxed ('' if not run)


_NO_CODE = "no code found in the answer"


def _strip_main_guard(code: str, entry_point: str) -> str:
    """Drop top-level ``if __name__ == "__main__":`` blocks (demo runs, input() prompts),
    when the entry point is defined outside them."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return code
    drop: list[tuple[int, int]] = []
    for node in tree.body:
        if isinstance(node, ast.If) and not node.orelse and _is_main_test(node.test):
            drop.append((node.lineno, node.end_lineno or node.lineno))
    if not drop:
        return code
    lines = code.splitlines()
    kept = [x for i, x in enumerate(lines, 1) if not any(a <= i <= b for a, b in drop)]
    out = "\n".join(kept) + "\n"
    return out if _defines(out, entry_point) and _parses(out) else code


def _is_main_test(test: ast.expr) -> bool:
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    has_name = any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
    has_main = any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return has_name and has_main


def _function_program(answer: str, test: str, entry_point: str, prompt_prefix: str) -> str:
    code = extract_code(answer, entry_point=entry_point, prompt_prefix=prompt_prefix)
    if not code.strip():
        return ""
    code = _strip_main_guard(code, entry_point)
    program = code.rstrip("\n") + "\n\n" + test.strip("\n") + "\n"
    if re.search(r"^def[ \t]+check[ \t]*\(", test, re.M):
        program += f"\n\ncheck({entry_point})\n"
    return program


def _function_verdict(program: str, res: ExecResult) -> CodeVerdict:
    passed = res.status == "ok"
    return CodeVerdict(passed, res.status, "passed" if passed else res.reason, program,
                       res.isolation)


def check_function(
    answer: str,
    *,
    test: str,
    entry_point: str,
    prompt_prefix: str = "",
    limits: Limits = DEFAULT_LIMITS,
) -> CodeVerdict:
    """Extract the function from ``answer``, append ``test`` and ``check(entry_point)``, run.

    Passes iff the program exits 0. A ``test`` without a ``def check(...)`` (plain asserts,
    MBPP style) is run as is.
    """
    return check_many([("function", dict(answer=answer, test=test, entry_point=entry_point,
                                         prompt_prefix=prompt_prefix))],
                      limits=limits, workers=1)[0]


def normalize_stdout(s: str) -> str:
    """Strip trailing whitespace of each line and trailing blank lines; unify newlines."""
    lines = [x.rstrip() for x in s.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _short(s: str, n: int = 60) -> str:
    return repr(s if len(s) <= n else s[:n] + "…")


def _stdout_verdict(program: str, expected: str, res: ExecResult) -> CodeVerdict:
    iso = res.isolation
    if res.status != "ok":
        return CodeVerdict(False, res.status, res.reason, program, iso)
    got, want = normalize_stdout(res.stdout), normalize_stdout(expected)
    if got == want:
        return CodeVerdict(True, "ok", "passed", program, iso)
    if not got:
        return CodeVerdict(False, "ok", "wrong output: no output", program, iso)
    g, w = got.split("\n"), want.split("\n")
    for i, (a, b) in enumerate(zip(g, w), 1):
        if a != b:
            why = f"wrong output at line {i}: expected {_short(b)}, got {_short(a)}"
            break
    else:
        why = f"wrong output: expected {len(w)} lines, got {len(g)}"
    return CodeVerdict(False, "ok", why, program, iso)


def check_stdout(
    answer: str, *, expected_stdout: str, stdin: str = "", limits: Limits = DEFAULT_LIMITS
) -> CodeVerdict:
    """Run the extracted program (with ``stdin``); passes iff it exits 0 and its normalised
    stdout equals the normalised ``expected_stdout``."""
    return check_many([("stdout", dict(answer=answer, expected_stdout=expected_stdout,
                                       stdin=stdin))], limits=limits, workers=1)[0]


def check_many(
    jobs: list[tuple[str, dict]], limits: Limits = DEFAULT_LIMITS, workers: int | None = None
) -> list[CodeVerdict]:
    """Check many answers in parallel; verdicts in job order.

    Each job is ``("function", kwargs of check_function)`` or ``("stdout", kwargs of
    check_stdout)``; a ``limits`` in the kwargs overrides the shared one for that job.
    """
    verdicts: list[CodeVerdict | None] = [None] * len(jobs)
    pending: list[tuple[int, str, str, Limits, Callable[[ExecResult], CodeVerdict]]] = []
    for i, job in enumerate(jobs):
        try:
            kind, kwargs = job
        except (TypeError, ValueError):
            raise ValueError(f"job {i}: expected (kind, kwargs), got {job!r}") from None
        kwargs = dict(kwargs)
        lim = kwargs.pop("limits", None) or limits
        if kind == "function":
            program = _function_program(
                kwargs["answer"], kwargs["test"], kwargs["entry_point"],
                kwargs.get("prompt_prefix", ""),
            )
            finish = (lambda p: lambda r: _function_verdict(p, r))(program)
            stdin = ""
        elif kind == "stdout":
            program = extract_code(kwargs["answer"])
            expected = kwargs["expected_stdout"]
            finish = (lambda p, e: lambda r: _stdout_verdict(p, e, r))(program, expected)
            stdin = kwargs.get("stdin", "")
        else:
            raise ValueError(f"job {i}: unknown kind {kind!r} (expected 'function' or 'stdout')")
        if not program.strip():
            verdicts[i] = CodeVerdict(False, "no_code", _NO_CODE, "")
        else:
            pending.append((i, program, stdin, lim, finish))
    # one parallel batch per distinct Limits (usually a single one), through the public API
    groups: list[tuple[Limits, list[int]]] = []
    for n, (_i, _p, _s, lim, _f) in enumerate(pending):
        group = next((g for g in groups if g[0] == lim), None)
        if group is None:
            groups.append((lim, [n]))
        else:
            group[1].append(n)
    for lim, members in groups:
        results = run_many([pending[n][1] for n in members], limits=lim, workers=workers,
                           stdins=[pending[n][2] for n in members])
        for n, res in zip(members, results):
            i, _p, _s, _l, finish = pending[n]
            verdicts[i] = finish(res)
    return [v for v in verdicts if v is not None]


# --------------------------------------------------------------------------------------------
# Task targets → check jobs

_BUILTINS = frozenset(dir(builtins))


def entry_point_of_asserts(tests: list[str] | tuple[str, ...]) -> str | None:
    """The function MBPP-style asserts call: the first called name that is not a builtin
    (``assert remove_Occ("hello", "l") == "heo"`` → ``remove_Occ``), else the first called
    name at all (a task may shadow a builtin, e.g. MBPP 126's ``sum``)."""
    first_any: str | None = None
    for t in tests:
        try:
            tree = ast.parse(t)
        except (SyntaxError, ValueError):
            continue
        calls = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)),
                       key=lambda n: (n.lineno, n.col_offset))
        for c in calls:
            name = c.func.id  # type: ignore[attr-defined]
            if name not in _BUILTINS:
                return name
            first_any = first_any or name
    return first_any


def code_job(answer: str, target: Mapping[str, Any]) -> tuple[str, dict]:
    """The ``check_many`` job for one answer to a code task, from the task's target dict.

    ``kind``:
    - ``stdout``: ``expected_stdout`` (and optional ``stdin``) — the program's output is compared.
    - ``function``: ``test`` (a ``def check(candidate)`` is called on ``entry_point``, as in
      HumanEval; plain asserts run as they are) and ``entry_point``; an optional
      ``prompt_prefix`` (HumanEval's signature and docstring) is what a completion continues.
    - ``asserts``: MBPP — ``tests`` (assert lines) run after the optional ``setup`` code; the
      entry point is the function the asserts call unless ``entry_point`` names it.
    """
    if not isinstance(target, Mapping):
        raise ValueError(f"a code task's target must be a mapping with a 'kind', got {type(target).__name__}")
    kind = target.get("kind")
    if kind == "stdout":
        return ("stdout", {"answer": answer, "expected_stdout": target["expected_stdout"], "stdin": target.get("stdin") or ""})
    if kind == "function":
        return ("function", {"answer": answer, "test": target["test"], "entry_point": target["entry_point"],
                             "prompt_prefix": target.get("prompt_prefix") or ""})
    if kind == "asserts":
        tests = [str(t) for t in target["tests"]]
        setup = (target.get("setup") or "").replace("\r\n", "\n").strip("\n")
        entry = target.get("entry_point") or entry_point_of_asserts(tests)
        if not entry:
            raise ValueError(f"cannot tell which function the asserts test: {tests[:1]!r}")
        test = "\n".join(([setup] if setup else []) + tests) + "\n"
        return ("function", {"answer": answer, "test": test, "entry_point": entry, "prompt_prefix": target.get("prompt_prefix") or ""})
    raise ValueError(f"unknown code target kind {kind!r} (expected 'function', 'asserts' or 'stdout')")


# --------------------------------------------------------------------------------------------
# pass@k


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from ``n`` samples of which ``c`` are correct (Chen et al., 2021):
    ``1 - C(n-c, k) / C(n, k)``, computed as a product for numerical stability."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or not isinstance(v, int):
            if isinstance(v, float) and v.is_integer():
                continue
            raise ValueError(f"pass_at_k: {name} must be an integer, got {v!r}")
        if v < 0:
            raise ValueError(f"pass_at_k: {name} must be non-negative, got {v}")
    n, c, k = int(n), int(c), int(k)
    if k < 1:
        raise ValueError(f"pass_at_k: k must be at least 1, got {k}")
    if k > n:
        raise ValueError(f"pass_at_k: k={k} exceeds the number of samples n={n}")
    if c > n:
        raise ValueError(f"pass_at_k: c={c} correct exceeds the number of samples n={n}")
    if n - c < k:
        return 1.0
    # C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
    fail = 1.0
    for i in range(n - c + 1, n + 1):
        fail *= 1.0 - k / i
    return min(1.0, max(0.0, 1.0 - fail))
