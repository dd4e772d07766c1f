"""Code extraction, sandboxed checking and pass@k, with real programs in real processes."""

from __future__ import annotations

import math
import os
import socket
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay.scoring.code import (
    CodeVerdict,
    check_function,
    check_many,
    check_stdout,
    extract_code,
    pass_at_k,
)
from assay.scoring.sandbox import Limits, run_many, run_python, sandbox_features

ADD = "def add(a, b):\n    return a + b\n"

ADD_TEST = """
def check(candidate):
    assert candidate(1, 2) == 3
    assert candidate(-1, 1) == 0
    assert candidate(10, 5) == 15
"""

FIZZBUZZ_EXPECTED = "\n".join(
    "FizzBuzz" if i % 15 == 0 else "Fizz" if i % 3 == 0 else "Buzz" if i % 5 == 0 else str(i)
    for i in range(1, 16)
) + "\n"


def _alive(pid: int) -> bool:
    """False once ``pid`` is gone or a zombie nobody reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def _host_pids(*argv: str) -> list[int]:
    """Live host processes whose command line is exactly ``argv``."""
    want = "\0".join(argv) + "\0"
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline") as f:
                    if f.read() == want and _alive(int(name)):
                        found.append(int(name))
            except OSError:
                pass
    return found


# --------------------------------------------------------------------------------------------
# extraction


class TestExtract:
    def test_fenced_block_with_prose_around(self):
        text = f"Here is the function:\n\n```python\n{ADD}```\n\nIt adds two numbers."
        assert extract_code(text) == ADD

    def test_py_tag_and_bare_fence(self):
        assert extract_code(f"```py\n{ADD}```") == ADD
        assert extract_code(f"Code:\n```\n{ADD}```\nDone.") == ADD

    def test_unterminated_fence(self):
        text = f"Sure! Here it is:\n```python\n{ADD}"
        assert extract_code(text) == ADD

    def test_several_fences_concatenated_in_order(self):
        text = (
            "First a helper:\n```python\ndef double(x):\n    return 2 * x\n```\n"
            "Then the main part:\n```python\nprint(double(21))\n```\n"
            "Output:\n```text\n42\n```\n"
        )
        code = extract_code(text)
        assert code.index("def double") < code.index("print(double(21))")
        assert "42" not in code.replace("print(double(21))", "")

    def test_several_fences_prefer_entry_point_definition(self):
        text = (
            "```python\nimport math\n\ndef helper(x):\n    return math.floor(x)\n```\n"
            "```python\ndef add(a, b):\n    return helper(a) + helper(b)\n```\n"
            "Example:\n```python\nprint(add(1.5, 2.5))\nadd(undefined)\n```\n"
        )
        code = extract_code(text, entry_point="add")
        assert "def helper" in code and "def add" in code
        assert "print(add" not in code and "undefined" not in code

    def test_unlabelled_output_block_is_not_code(self):
        text = f"{ADD}\nExample output:\n```\n3\n```\n"
        assert extract_code(text).strip() == ADD.strip()

    def test_prose_before_and_after_without_fences(self):
        text = (
            "Here is the function:\n"
            f"{ADD}"
            "This function works by adding its arguments.\n"
            "Let me know if you need anything else!"
        )
        assert extract_code(text) == ADD

    def test_bare_word_line_before_code_is_dropped(self):
        text = f"Solution\n\n{ADD}\nThis works for all integers."
        assert extract_code(text) == ADD

    def test_uniformly_indented_code_is_dedented(self):
        text = "    def add(a, b):\n        return a + b\n"
        assert extract_code(text) == ADD
        fenced = "1. Define it:\n   ```python\n   def add(a, b):\n       return a + b\n   ```\n"
        assert extract_code(fenced) == ADD

    def test_prompt_prefix_completion(self):
        prefix = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
        code = extract_code("    return sum(xs)\n", entry_point="total", prompt_prefix=prefix)
        assert code == prefix + "    return sum(xs)\n"
        # chatty completion with a helper after the body
        text = "    return helper(xs)\n\ndef helper(v):\n    return sum(v)\n\nThis sums the list."
        code = extract_code(text, entry_point="total", prompt_prefix=prefix)
        assert code.startswith(prefix + "    return helper(xs)\n")
        assert "def helper(v):" in code and "This sums" not in code

    def test_prompt_prefix_repairs_lost_body_indentation(self):
        prefix = 'def total(xs):\n    """Sum."""\n'
        code = extract_code("return sum(xs)", entry_point="total", prompt_prefix=prefix)
        assert code == prefix + "    return sum(xs)\n"

    def test_prompt_prefix_not_added_when_answer_defines_function(self):
        prefix = 'from typing import List\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n'
        text = "```python\ndef total(xs: List[int]) -> int:\n    return sum(xs)\n```"
        code = extract_code(text, entry_point="total", prompt_prefix=prefix)
        assert code.count("def total") == 1
        assert code.startswith("from typing import List\n")  # the prompt's imports are kept

    @pytest.mark.parametrize(
        "text",
        ["", "I'm sorry, I cannot help with that.", "Sure", "The answer is 42.",
         "```text\nno code here\n```", "```bash\npip install numpy\n```"],
    )
    def test_no_code(self, text):
        assert extract_code(text) == ""

    def test_never_executes(self, tmp_path):
        marker = tmp_path / "ran"
        text = f"```python\nopen({str(marker)!r}, 'w').write('x')\n```"
        assert "open(" in extract_code(text)
        assert not marker.exists()


# --------------------------------------------------------------------------------------------
# checking


class TestCheck:
    def test_check_function_passes_correct_answer_in_prose(self):
        answer = (
            "Great question! Here's a simple implementation:\n\n"
            f"```python\n{ADD}\nif __name__ == '__main__':\n    print(add(int(input()), 2))\n```\n\n"
            "The function returns the sum of `a` and `b`. Hope this helps!"
        )
        v = check_function(answer, test=ADD_TEST, entry_point="add")
        assert isinstance(v, CodeVerdict)
        assert v.passed, v
        assert v.status == "ok"
        assert "def add" in v.code and "check(add)" in v.code

    def test_check_function_fails_wrong_answer(self):
        answer = "```python\ndef add(a, b):\n    return a - b\n```"
        v = check_function(answer, test=ADD_TEST, entry_point="add")
        assert not v.passed
        assert v.status == "failed"
        assert "AssertionError" in v.reason

    def test_check_function_wrong_name(self):
        answer = "```python\ndef plus(a, b):\n    return a + b\n```"
        v = check_function(answer, test=ADD_TEST, entry_point="add")
        assert not v.passed
        assert "NameError" in v.reason and "add" in v.reason

    def test_check_function_prompt_prefix_completion(self):
        prefix = 'def add(a, b):\n    """Return a + b."""\n'
        v = check_function("    return a + b\n", test=ADD_TEST, entry_point="add",
                           prompt_prefix=prefix)
        assert v.passed, v

    def test_check_function_no_code(self):
        v = check_function("I don't know.", test=ADD_TEST, entry_point="add")
        assert (v.passed, v.status, v.code) == (False, "no_code", "")

    def test_check_stdout_fizzbuzz(self):
        answer = (
            "Here's FizzBuzz:\n```python\nfor i in range(1, 16):\n"
            "    if i % 15 == 0:\n        print('FizzBuzz')\n"
            "    elif i % 3 == 0:\n        print('Fizz')   \n"
            "    elif i % 5 == 0:\n        print('Buzz')\n"
            "    else:\n        print(i)\nprint()\n```"
        )
        v = check_stdout(answer, expected_stdout=FIZZBUZZ_EXPECTED)
        assert v.passed, v

    def test_check_stdout_function_never_called(self):
        answer = (
            "```python\ndef fizzbuzz(n):\n    for i in range(1, n + 1):\n"
            "        print('Fizz' if i % 3 == 0 else i)\n```"
        )
        v = check_stdout(answer, expected_stdout=FIZZBUZZ_EXPECTED)
        assert not v.passed
        assert "no output" in v.reason

    def test_check_stdout_wrong_line_and_stdin(self):
        answer = "```python\nn = int(input())\nfor i in range(n):\n    print(i * i)\n```"
        assert check_stdout(answer, expected_stdout="0\n1\n4\n", stdin="3\n").passed
        v = check_stdout(answer, expected_stdout="0\n1\n5\n", stdin="3\n")
        assert not v.passed and "line 3" in v.reason

    def test_check_many_in_order(self):
        wrong = "```python\ndef add(a, b):\n    return a * b\n```"
        jobs = [
            ("function", dict(answer=ADD, test=ADD_TEST, entry_point="add")),
            ("stdout", dict(answer="print('hi')", expected_stdout="hi")),
            ("function", dict(answer=wrong, test=ADD_TEST, entry_point="add")),
            ("stdout", dict(answer="no code", expected_stdout="hi")),
            ("stdout", dict(answer="print('ho')", expected_stdout="hi")),
        ]
        verdicts = check_many(jobs, workers=3)
        assert [v.passed for v in verdicts] == [True, True, False, False, False]
        assert [v.status for v in verdicts] == ["ok", "ok", "failed", "no_code", "ok"]
        assert "AssertionError" in verdicts[2].reason
        with pytest.raises(ValueError):
            check_many([("bogus", {})])


# --------------------------------------------------------------------------------------------
# sandbox


class TestSandbox:
    def test_ok_failed_and_reason(self):
        r = run_python("import sys\nprint('out'); print('err', file=sys.stderr)")
        assert (r.status, r.returncode, r.stdout, r.stderr) == ("ok", 0, "out\n", "err\n")
        r = run_python("x = 1\nprint(y)")
        assert (r.status, r.returncode) == ("failed", 1)
        assert r.reason == "exit 1: NameError: name 'y' is not defined"
        r = run_python("raise SystemExit(3)")
        assert (r.status, r.returncode, r.reason) == ("failed", 3, "exit 3")

    def test_stdin_and_minimal_environment(self):
        src = "import os, sys\nprint(sys.stdin.read().upper())\nprint(sorted(os.environ))\n" \
              "print(os.environ['HOME'] == os.getcwd())\nprint(sys.flags.isolated)"
        r = run_python(src, stdin="hello")
        lines = r.stdout.splitlines()
        assert lines[0] == "HELLO"
        env = eval(lines[1])  # a list of names printed by our own program
        assert set(env) <= {"PATH", "HOME", "PYTHONHASHSEED", "LANG", "TMPDIR"}
        assert lines[2:] == ["True", "1"]

    def test_killed_by_signal(self):
        r = run_python("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
        assert (r.status, r.returncode) == ("killed", -9)
        assert r.reason.startswith("killed by SIGKILL")

    def test_workdir_removed(self):
        r = run_python("import os\nprint(os.getcwd())\nopen('f.txt', 'w').write('x')\n"
                       "os.mkdir('d'); open('d/g', 'w').write('y'); os.chmod('d', 0)")
        assert r.status == "ok", r
        path = r.stdout.strip()
        assert "assay-sbx" in path
        assert not os.path.exists(path)

    def test_infinite_loop_times_out_and_workdir_removed(self):
        t0 = time.monotonic()
        r = run_python("import os\nprint(os.getcwd(), flush=True)\nwhile True:\n    pass",
                       limits=Limits(timeout_s=1.5))
        elapsed = time.monotonic() - t0
        assert r.status == "timeout" and r.returncode is None
        assert r.reason == "timeout after 1.5s"
        assert elapsed >= 1.4 and elapsed < 5
        assert not os.path.exists(r.stdout.strip())

    def test_memory_limit(self):
        r = run_python("b = bytearray(4 * 1024**3)\nprint('allocated')",
                       limits=Limits(memory_mb=512))
        assert r.status in ("failed", "killed"), r
        assert "allocated" not in r.stdout
        assert "MemoryError" in r.reason or r.reason.startswith("killed")

    def test_grandchild_killed_with_group(self):
        # the printed pid is the sandbox's (its own pid namespace): find the sleep on the
        # host by its unique argument instead
        arg = f"{30 + os.getpid() % 1000 / 1000 + time.time() % 1:.6f}"
        src = (
            "import subprocess\n"
            f"p = subprocess.Popen(['sleep', '{arg}'], start_new_session=False)\n"
            "print(p.pid, flush=True)\n"
            "while True:\n    pass\n"
        )
        r = run_python(src, limits=Limits(timeout_s=1.5))
        assert r.status == "timeout", r
        assert int(r.stdout.split()[0]) > 0  # the grandchild was started
        deadline = time.monotonic() + 3
        while _host_pids("sleep", arg) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _host_pids("sleep", arg), "the grandchild survived the sandbox"

    def test_background_child_killed_after_normal_exit(self):
        arg = f"{31 + os.getpid() % 1000 / 1000 + time.time() % 1:.6f}"
        src = (f"import subprocess\np = subprocess.Popen(['sleep', '{arg}'])\n"
               "print(p.pid, flush=True)\n")
        r = run_python(src, limits=Limits(timeout_s=5))
        assert r.status == "ok", r
        assert r.duration_s < 3  # did not wait for the sleep
        assert int(r.stdout.split()[0]) > 0
        deadline = time.monotonic() + 3
        while _host_pids("sleep", arg) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _host_pids("sleep", arg)

    def test_output_is_capped(self):
        cap = 10_000
        t0 = time.monotonic()
        r = run_python("while True:\n    print('x' * 1000)",
                       limits=Limits(timeout_s=1, max_output_bytes=cap))
        assert time.monotonic() - t0 < 5
        assert r.status == "timeout"
        assert 0 < len(r.stdout.encode()) <= cap

    def test_file_size_limit(self):
        src = "with open('big.bin', 'wb') as f:\n    for _ in range(100):\n" \
              "        f.write(b'x' * (1024 * 1024))\nprint('wrote')"
        r = run_python(src, limits=Limits(max_file_mb=1))
        assert r.status in ("failed", "killed"), r
        assert "wrote" not in r.stdout
        assert "File too large" in r.reason or "SIGXFSZ" in r.reason

    def test_cpu_limit(self):
        r = run_python("while True:\n    pass", limits=Limits(timeout_s=10, cpu_s=1))
        assert r.status == "killed", r
        assert "SIGXCPU" in r.reason or "SIGKILL" in r.reason
        assert r.duration_s < 5

    def test_no_network(self):
        if not sandbox_features()["network_isolated"]:
            pytest.skip("network namespaces unavailable here (unshare(CLONE_NEWNET) failed "
                        "as root and in a user namespace): sandbox runs with network")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
            srv.bind(("127.0.0.1", 0))
            srv.listen(1)
            port = srv.getsockname()[1]
            src = ("import socket\n"
                   f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                   "print('connected')")
            r = run_python(src, limits=Limits(timeout_s=5))
        assert r.status == "failed", r
        assert "connected" not in r.stdout
        assert "Error" in r.reason

    def test_error_status_when_sandbox_cannot_start(self, monkeypatch):
        import assay.scoring.sandbox as sb

        monkeypatch.setattr(sb.sys, "executable", "/nonexistent/python")
        r = run_python("print(1)")
        assert r.status == "error" and r.returncode is None
        assert r.reason.startswith("sandbox could not start")

    def test_run_many_parallel_and_ordered(self):
        srcs = [f"import time\ntime.sleep(0.3)\nprint({i})" for i in range(6)]
        t0 = time.monotonic()
        results = run_many(srcs, workers=6)
        elapsed = time.monotonic() - t0
        assert [r.stdout for r in results] == [f"{i}\n" for i in range(6)]
        assert elapsed < 6 * 0.3  # ran concurrently

    def test_features_shape(self):
        f = sandbox_features()
        assert {"network_isolated", "rlimits", "process_group_kill"} <= set(f)
        assert all(isinstance(v, bool) for v in f.values())
        assert f["rlimits"] and f["process_group_kill"]


# --------------------------------------------------------------------------------------------
# pass@k


def _brute(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


class TestPassAtK:
    def test_known_values(self):
        assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
        assert pass_at_k(5, 0, 1) == 0.0
        assert pass_at_k(5, 5, 5) == 1.0
        assert pass_at_k(10, 8, 3) == 1.0  # n - c < k
        assert pass_at_k(4, 1, 2) == pytest.approx(0.5)
        assert pass_at_k(200, 1, 100) == pytest.approx(0.5)

    @pytest.mark.parametrize("args", [(5, 6, 1), (5, 1, 6), (-1, 0, 1), (5, -1, 1),
                                      (5, 1, -1), (5, 1, 0)])
    def test_invalid(self, args):
        with pytest.raises(ValueError):
            pass_at_k(*args)

    def test_matches_brute_force_exhaustively(self):
        for n in range(1, 21):
            for c in range(n + 1):
                for k in range(1, n + 1):
                    assert pass_at_k(n, c, k) == pytest.approx(_brute(n, c, k), abs=1e-12)

    @settings(max_examples=300, deadline=None)
    @given(st.integers(1, 200).flatmap(
        lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
    def test_properties(self, nck):
        n, c, k = nck
        p = pass_at_k(n, c, k)
        assert 0.0 <= p <= 1.0
        assert p == pytest.approx(_brute(n, c, k), abs=1e-9)
        if c < n:
            assert pass_at_k(n, c + 1, k) >= p - 1e-12
        if k < n:
            assert pass_at_k(n, c, k + 1) >= p - 1e-12


# --------------------------------------------------------------------------------------------
# task targets → check jobs (HumanEval, MBPP, stdout)


class TestCodeJob:
    def test_entry_point_of_asserts(self):
        from assay.scoring.code import entry_point_of_asserts

        assert entry_point_of_asserts(['assert remove_Occ("hello","l") == "heo"']) == "remove_Occ"
        assert entry_point_of_asserts(["assert set(similar((3, 4), (4, 5))) == set((4,))"]) == "similar"
        assert entry_point_of_asserts(["assert math.isclose(area(2), 12.56, rel_tol=0.01)"]) == "area"
        assert entry_point_of_asserts(["assert sum(10, 15) == 6"]) == "sum"  # a task may shadow a builtin
        assert entry_point_of_asserts(["not python ("]) is None

    def test_humaneval_completion_and_whole_function(self):
        from assay.scoring.code import code_job

        prefix = 'def add(a, b):\n    """Add two numbers."""\n'
        target = {"kind": "function", "test": ADD_TEST, "entry_point": "add", "prompt_prefix": prefix}
        jobs = [code_job("    return a + b\n", target),  # continues the prompt
                code_job(f"Sure:\n```python\n{ADD}```", target),  # rewrites the function
                code_job("    return a - b\n", target)]
        assert [v.passed for v in check_many(jobs, workers=2)] == [True, True, False]

    def test_mbpp_asserts_with_setup_code(self):
        from assay.scoring.code import code_job

        target = {"kind": "asserts", "tests": ["assert depth(root) == 2", "assert depth(leaf) == 1"],
                  "setup": "root = Node(1)\r\nroot.left = Node(2)\r\nleaf = Node(3)"}
        good = ("class Node:\n    def __init__(self, v):\n        self.v, self.left, self.right = v, None, None\n\n"
                "def depth(n):\n    return 0 if n is None else 1 + max(depth(n.left), depth(n.right))\n")
        ok, bad = check_many([code_job(good, target), code_job(good.replace("1 + max", "2 + max"), target)], workers=2)
        assert ok.passed and ok.code.index("def depth") < ok.code.index("root = Node(1)") < ok.code.index("assert depth")
        assert not bad.passed and "AssertionError" in bad.reason

    def test_stdout_and_unknown_kinds(self):
        from assay.scoring.code import code_job

        (v,) = check_many([code_job("print(2 + 2)", {"kind": "stdout", "expected_stdout": "4\n"})], workers=1)
        assert v.passed
        with pytest.raises(ValueError, match="unknown code target kind 'sql'"):
            code_job("x", {"kind": "sql"})
