"""Imports go one way. Every module under src/assay is parsed (nothing is imported) and the test
fails on

(a) an import cycle among assay's modules, and
(b) a module importing from a layer above its own (LAYERS, lowest first).

Both count every import that can run: at module level and inside functions (a function-level
import only delays a cycle; the two modules still need each other). Imports under
``if TYPE_CHECKING:`` never run and are not counted. Lazy ``"module:attr"`` strings (the
backend registry's) are not imports and are not checked.

The layers follow the data flow of DESIGN.md (task YAML -> TaskSpec -> documents -> instances ->
requests -> scheduler -> backend -> run store -> extraction and metrics -> reports), with the
records and vocabularies a stage is checked against placed below it:

- ``requests`` are the typed records every later stage passes on; they import nothing.
- ``prompts`` (chat templates and named formats) and the extraction steps sit below ``tasks``
  because a task spec names them and is checked against them when it loads (``chat:`` against
  the formats, ``extract:`` against ``scoring.extract.STEPS``). The extraction layer is the step
  table and the pure parsers it runs; the scoring stage (``score.py``, reading the store) and
  the metrics stay high.
- ``data`` reads the documents a task's ``dataset:`` names, so it sits above ``tasks``
  (``sources.py`` reads a ``DatasetSpec`` and evaluates ``where`` with the task renderer).
- ``instances`` renders documents with prompts and few-shot examples.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; a module belongs to the layer of its longest matching prefix, and may import
# from its own layer and the ones below
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("errors", ("assay.errors",)),
    ("requests", ("assay.requests",)),
    ("results", ("assay.results", "assay.events")),  # the results contract; what a run reports as it goes
    ("config", ("assay.config", "assay.backends.hub")),  # settings; the hub's reachability (offline mode) is one
    ("prompts", ("assay.prompts", "assay.judge", "assay.judge.prompts", "assay.judge.verdicts")),  # chat formats; the judge's prompts and verdict forms
    (
        "extraction",
        (
            "assay.scoring.extract", "assay.scoring.answers", "assay.scoring.labels", "assay.scoring.entities",
            "assay.scoring.text", "assay.scoring.code", "assay.scoring.sandbox", "assay.scoring.sandbox_helper",
        ),
    ),
    ("tasks", ("assay.tasks",)),
    ("data", ("assay.data",)),
    ("instances", ("assay.instances",)),
    ("backends", ("assay.backends",)),
    ("store", ("assay.store",)),
    ("schedule", ("assay.schedule",)),
    ("scoring", ("assay.scoring", "assay.judge.results")),  # score.py, metrics, statistics; judges' verdicts -> scores and ratings
    # task names -> specs -> documents -> instances (checks metrics); the task-file tools that read data and name metrics
    ("plan", ("assay.plan", "assay.tasks.reference", "assay.tasks.scaffold")),
    ("build", ("assay.build", "assay.judge.build")),  # instances x chat format -> requests; judge requests
    ("reports", ("assay.reports",)),
    ("pipeline", ("assay.pipeline", "assay.preview")),  # the orchestrator; its previews (validate --show, run --dry-run)
    ("cli", ("assay.cli",)),
    ("api", ("assay", "assay.api")),  # the package's __init__ and assay.evaluate: the public API, imported lazily
]

# (importer, imported) -> why this upward import is allowed; keep it short
EXCEPTIONS: dict[tuple[str, str], str] = {}


def _modules() -> dict[str, tuple[Path, bool]]:
    """Module name -> (file, is a package's __init__)."""
    out = {}
    for path in sorted((SRC / "assay").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _runtime_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    out: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for sub in child.orelse:
                    visit(ast.Module(body=[sub], type_ignores=[]))
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                out.append(child)
            else:
                visit(child)

    visit(tree)
    return out


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_pkg: bool, modules: dict) -> list[str]:
    """The assay modules an import statement loads (``from pkg import mod`` names the module)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name == "assay" or a.name.startswith("assay.")]
    if node.level:
        base = name.split(".") if is_pkg else name.split(".")[:-1]
        base = base[: len(base) - node.level + 1]
        source = ".".join(base + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    if source != "assay" and not source.startswith("assay."):
        return []
    return [f"{source}.{a.name}" if f"{source}.{a.name}" in modules else source for a in node.names]


def _graph() -> dict[str, dict[str, int]]:
    """Importer -> {imported module: line of the first such import}."""
    modules = _modules()
    graph: dict[str, dict[str, int]] = {}
    for name, (path, is_pkg) in modules.items():
        edges = graph.setdefault(name, {})
        for node in _runtime_imports(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            for target in _targets(node, name, is_pkg, modules):
                if target != name:
                    edges.setdefault(target, node.lineno)
    return graph


def _layer(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best:
                best, rank = len(p), i
    return rank


def _cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def test_the_parser_sees_the_imports():
    graph = _graph()
    assert len(graph) > 50
    assert "assay.requests" in graph["assay.backends.base"]  # module level
    assert "assay.pipeline" in graph["assay.api"]  # inside a function
    assert "assay.scoring.sandbox" in graph["assay.scoring.code"]  # relative


def test_every_module_has_a_layer():
    assert [m for m in _modules() if _layer(m) < 0] == []


def test_no_import_cycles():
    assert _cycles(_graph()) == []


def test_no_module_imports_from_a_higher_layer():
    graph = _graph()
    bad = []
    for importer, edges in sorted(graph.items()):
        for imported, line in sorted(edges.items()):
            if _layer(imported) > _layer(importer) and (importer, imported) not in EXCEPTIONS:
                bad.append(f"{importer} (layer {LAYERS[_layer(importer)][0]}), line {line}: imports {imported} (layer {LAYERS[_layer(imported)][0]})")
    assert bad == []


def test_every_exception_is_still_needed():
    graph = _graph()
    assert [pair for pair in EXCEPTIONS if pair[1] not in graph.get(pair[0], {}) or _layer(pair[1]) <= _layer(pair[0])] == []
