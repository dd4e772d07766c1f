"""The ``assay`` command: run | score | report | export | cache | schema | ls | validate | new-task. Thin: parsing and error reporting only.

A user's mistake (an AssayError) is one line on stderr and exit code 2; Ctrl-C is exit 130
with a note that the stored responses are kept. Nothing heavy is imported before a command
needs it, so ``assay --help`` is instant.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from pathlib import Path

from assay.errors import AssayError

EXIT_USER, EXIT_INTERNAL, EXIT_INTERRUPT, EXIT_TERM = 2, 1, 130, 143


def _split(values: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return tuple(out)


_SANDBOX_HELP = ("how code answers are isolated: strict = kernel namespaces or refuse (for CI), auto = namespaces, else rlimits as an unprivileged user (default), "
                 "off = unsandboxed, as yourself; recorded in results.json, the samples and the report")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="assay", description="Evaluate instruction-following language models.")
    p.add_argument("--version", action="version", version=f"assay {_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    r = sub.add_parser("run", help="evaluate models on tasks (resumes when re-run)")
    r.add_argument("--model", "-m", action="append", required=True, metavar="M", help="alias, GGUF file, folder or hub id; [backend:]target[,key=value...]; repeat for several models")
    r.add_argument("--tasks", "-t", action="append", required=True, metavar="T1,T2", help="task names, groups (e.g. xcopa, core) or task YAML files")
    r.add_argument("--limit", type=int, metavar="N", help="only the first N documents of each task")
    r.add_argument("--output", "-o", type=Path, metavar="DIR", help="run folder (default: runs/<models>__<tasks>-<hash>, the same for the same command)")
    r.add_argument("--data-dir", type=Path, metavar="DIR", help="where relative data paths resolve (default: $ASSAY_DATA_DIR, else ./data)")
    r.add_argument("--batch-size", "-b", type=int, default=64, metavar="N", help="requests per backend call and per commit to the run store (default 64); scores do not depend on it")
    r.add_argument("--prompt", action="append", metavar="ID", help="use these prompt template ids (e.g. lmeval) in the tasks that have them; other tasks keep all their prompts")
    r.add_argument("--chat-format", metavar="NAME", help="override the chat-format policy for every task: none (plain text), model (its own template) or a named format (assay ls formats)")
    r.add_argument("--system-prompt", metavar="TEXT", help="system message for chat-formatted prompts")
    r.add_argument("--quiet", "-q", action="store_true", help="print only the leaderboard")
    r.add_argument("--judge", action="append", metavar="M", help="a model that grades the generated answers (any --model form); "
                   "each answer on its own, or two models' answers side by side, as each task's judge: section says; repeat for several judges")
    r.add_argument("--dry-run", action="store_true", help="print the plan (tasks, prompts, requests per kind, how many are stored or cached) and exit; models are loaded, nothing is computed or written")
    r.add_argument("--sandbox", choices=["strict", "auto", "off"], default="auto", help=_SANDBOX_HELP)
    r.add_argument("--cache", metavar="PATH", default="auto",
                   help="the response cache shared by runs (default: $ASSAY_CACHE, else ~/.cache/assay/responses.sqlite); responses found there are not computed again")
    r.add_argument("--no-cache", dest="cache", action="store_const", const="off", help="neither read nor write the shared response cache")
    r.add_argument("--executor", default="local", metavar="WHERE",
                   help="local (default: this process), ray (a local Ray instance, or the cluster $RAY_ADDRESS names) or ray:ADDRESS (a cluster's head); "
                   "a model's replicas=N,num_cpus=C,num_gpus=G say how many actors compute it and what each reserves (pip install 'assay[ray]')")

    s = sub.add_parser("score", help="recompute metrics of a run from its stored responses")
    s.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    s.add_argument("--output", "-o", type=Path, metavar="DIR", help="write results.json, samples/ and the report here instead of into RUN_DIR (e.g. for a read-only run folder)")
    s.add_argument("--sandbox", choices=["strict", "auto", "off"], default="auto", help=_SANDBOX_HELP)
    s.add_argument("--reload-tasks", action="store_true", help="re-read the run's task files: edits to metrics, primary, extract, card and descriptions apply; "
                   "edits to what decides the requests (data, prompts, choices, targets, generation) are refused, naming the keys")

    rp = sub.add_parser("report", help="compare runs: one self-contained HTML report and its Markdown tables")
    rp.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR", help="scored run folders; models with the same fingerprint are merged, only shared items are compared")
    rp.add_argument("--output", "-o", type=Path, metavar="FILE.html", help="where to write (default: RUN_DIR/report.html for one run, ./report.html for several); the Markdown goes beside it (.md)")

    e = sub.add_parser("export", help="write a run's results as model-card model-index YAML")
    e.add_argument("format", choices=["model-index"])
    e.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    e.add_argument("--model", metavar="LABEL", help="which model of the run (needed when it has several)")
    e.add_argument("--name", metavar="NAME", help="the model name written in the card (default: the label)")
    e.add_argument("--aggregate", choices=["median", "max", "mean"], default="median",
                   help="over prompt templates: median = the headline, the paper's protocol (default); max = the best prompt, as the BLOOMZ/mT0 cards report; mean")
    e.add_argument("--allow-partial", action="store_true",
                   help="export results scored on part of a task's data (--limit, or items missing), with the item counts written into the card")
    e.add_argument("--readme", type=Path, metavar="PATH", help="merge into this model card's YAML front matter, leaving everything else as it is")
    e.add_argument("--output", "-o", type=Path, metavar="FILE", help="write the YAML here instead of stdout")

    c = sub.add_parser("cache", help="show, fill or trim the response cache shared by runs")
    c.add_argument("action", choices=["info", "prune", "import"])
    c.add_argument("run_dirs", type=Path, nargs="*", metavar="RUN_DIR", help="import: run folders whose stored responses join the cache")
    c.add_argument("--cache", metavar="PATH", default="auto", help="the cache file (default: $ASSAY_CACHE, else ~/.cache/assay/responses.sqlite)")
    c.add_argument("--older-than", type=float, metavar="DAYS", help="prune: responses cached more than DAYS days ago")
    c.add_argument("--model", metavar="FINGERPRINT", help="prune: responses of the model whose fingerprint starts so (assay cache info lists them)")
    c.add_argument("--all", action="store_true", help="prune: everything")

    sc = sub.add_parser("schema", help="print the JSON Schema of an assay file (results: results.json; task: a task YAML file)")
    sc.add_argument("what", choices=["results", "task"])

    ls = sub.add_parser("ls", help="list built-in tasks, models or chat formats")
    ls.add_argument("what", choices=["tasks", "models", "formats"])

    v = sub.add_parser("validate", help="load a task file, render every prompt on its data, check metrics")
    v.add_argument("task_file", nargs="+", metavar="TASK", help="task files, or folders of them")
    v.add_argument("--data-dir", type=Path, metavar="DIR", help="where relative data paths resolve when not beside the task file (default: $ASSAY_DATA_DIR, else ./data)")
    v.add_argument("--show", type=int, default=0, metavar="N", help="print the first N instances of each prompt as the requests a run sends (context, continuations or generation settings, target)")
    v.add_argument("--model", "-m", metavar="M", help="with --show: apply this model's chat format where a run would (the model is loaded, nothing is computed)")
    v.add_argument("--chat-format", metavar="NAME", help="with --show: as assay run --chat-format")
    v.add_argument("--system-prompt", metavar="TEXT", help="with --show: as assay run --system-prompt")

    nt = sub.add_parser("new-task", help="write a commented task YAML for your own data file (jsonl, json, csv, tsv, parquet), then validate it")
    nt.add_argument("data_file", type=Path, metavar="DATA_FILE")
    nt.add_argument("--output", "-o", type=Path, metavar="FILE.yaml", help="where to write the task (default: ./<data file name>.yaml)")
    nt.add_argument("--force", action="store_true", help="overwrite the output file if it exists")
    nt.add_argument("--format", choices=["jsonl", "json", "csv", "tsv", "parquet"], help="the data format, when the file name does not tell it")
    nt.add_argument("--absolute", action="store_true", help="write the data file's absolute path (default: relative to the task file's folder)")
    nt.add_argument("--data-dir", type=Path, metavar="DIR", help="the data directory to validate with (as assay validate --data-dir)")
    return p


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("assay")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _cmd_run(a: argparse.Namespace) -> int:
    from assay.config import RunConfig
    from assay.pipeline import run
    from assay.reports.terminal import UI

    cfg = RunConfig(
        models=tuple(a.model),
        tasks=_split(a.tasks),
        limit=a.limit,
        output=a.output,
        data_dir=a.data_dir,
        batch_size=a.batch_size,
        prompts=_split(a.prompt),
        chat_format=a.chat_format,
        system_prompt=a.system_prompt,
        sandbox=a.sandbox,
        cache=a.cache,
        executor=a.executor,
        judges=tuple(a.judge or ()),
    )
    if cfg.limit is not None and cfg.limit < 1:
        raise AssayError("--limit must be at least 1")
    if cfg.chat_format is not None:
        from assay.prompts.formats import check_format_name

        check_format_name(cfg.chat_format)
    if a.dry_run:
        from assay.preview import dry_run

        dry_run(cfg, print, UI(quiet=a.quiet).note)
        return 0
    run(cfg, UI(quiet=a.quiet))
    return 0


def _cmd_score(a: argparse.Namespace) -> int:
    from assay.pipeline import score_run
    from assay.reports.terminal import UI
    from assay.store.runs import STORE_NAME

    from assay.store.lock import run_lock

    if not (a.run_dir / STORE_NAME).is_file():
        raise AssayError(f"{a.run_dir}: not a run folder (no {STORE_NAME})")
    ui = UI()
    with run_lock(a.run_dir, exclusive=False, command="score"):
        if a.reload_tasks:
            ui.note("scoring with the task files as they are now (--reload-tasks); the stored responses answer the same requests")
        else:
            ui.note("scoring with the task definitions stored when the run was made (task files edited since are not read: --reload-tasks re-reads them)")
        score_run(a.run_dir, ui, out_dir=a.output, sandbox=a.sandbox, reload_tasks=a.reload_tasks)
    return 0


def _cmd_report(a: argparse.Namespace) -> int:
    from contextlib import ExitStack

    from assay.reports.compare import write_reports
    from assay.store.lock import run_lock

    out = a.output or (a.run_dirs[0] / "report.html" if len(a.run_dirs) == 1 else Path("report.html"))
    if out.suffix.lower() not in (".html", ".htm"):
        raise AssayError(f"--output {out}: the report is HTML; give a file name ending in .html")
    with ExitStack() as locks:
        for d in dict.fromkeys(a.run_dirs):
            locks.enter_context(run_lock(d, exclusive=False, command="report"))
        html, md = write_reports(a.run_dirs, out)
    print(f"wrote {html} and {md}", file=sys.stderr)
    return 0


def _cmd_export(a: argparse.Namespace) -> int:
    from assay.reports import modelindex
    from assay.results import read_results

    doc = read_results(a.run_dir)
    model = a.model
    if model is None:
        if len(doc.results) != 1:
            raise AssayError(f"the run has several models ({', '.join(doc.results)}): choose one with --model")
        model = next(iter(doc.results))
    text = modelindex.write(doc, model, a.output, a.readme, a.aggregate, a.name, a.allow_partial)
    print(f"assay: {modelindex.AGGREGATE_NOTE[a.aggregate]}", file=sys.stderr)
    if a.output is None and a.readme is None:
        print(text, end="")
    else:
        print(f"wrote {a.readme or a.output}", file=sys.stderr)
    return 0


def _cmd_cache(a: argparse.Namespace) -> int:
    import time

    from assay.store.cache import ResponseCache, resolve_cache

    path = resolve_cache(a.cache)
    if path is None:
        raise AssayError("the response cache is off ($ASSAY_CACHE or --cache); name a cache file with --cache PATH")
    if a.action == "import":
        return _cache_import(path, a.run_dirs)
    if a.run_dirs:
        raise AssayError(f"assay cache {a.action} takes no run folders (assay cache import RUN_DIR does)")
    if not path.is_file():
        raise AssayError(f"{path}: no response cache there yet (a run creates it)")
    cache = ResponseCache(path)
    try:
        if a.action == "info":
            info = cache.info()
            print(f"{info['path']}: {info['responses']:,} responses of {len(info['models'])} model(s), {info['bytes'] / 2**20:.1f} MiB")
            day = lambda t: time.strftime("%Y-%m-%d", time.gmtime(t))  # noqa: E731
            for m in info["models"]:
                print(f"  {m['fingerprint'][:16]}  {m['responses']:>9,}  {day(m['oldest'])} .. {day(m['newest'])}")
            return 0
        if a.older_than is None and a.model is None and not a.all:
            raise AssayError("assay cache prune: say what to remove: --older-than DAYS, --model FINGERPRINT or --all")
        n = cache.prune(None if a.all else a.older_than, None if a.all else a.model)
        print(f"removed {n:,} responses from {path}", file=sys.stderr)
        return 0
    finally:
        cache.close()


def _cache_import(path: Path, run_dirs: list[Path]) -> int:
    """Add the responses stored in run folders (made before the cache, or elsewhere) to it."""
    from assay.store.cache import ResponseCache
    from assay.store.lock import run_lock
    from assay.store.runs import STORE_NAME, RunStore

    if not run_dirs:
        raise AssayError("assay cache import: name the run folders whose responses to add")
    for d in run_dirs:
        if not (d / STORE_NAME).is_file():
            raise AssayError(f"{d}: not a run folder (no {STORE_NAME})")
    cache = ResponseCache(path)
    try:
        for d in run_dirs:
            with run_lock(d, exclusive=False, command="cache import"):
                store = RunStore(d, readonly=True)
                try:
                    rows = store.response_rows()
                finally:
                    store.close()
            added = sum(cache.put(fp, fp_rows) for fp, fp_rows in rows.items())
            print(f"{d}: {sum(map(len, rows.values())):,} responses, {added:,} new to {path}", file=sys.stderr)
    finally:
        cache.close()
    return 0


def _cmd_schema(a: argparse.Namespace) -> int:
    import json

    from assay.results import schema

    if a.what == "task":
        from assay.tasks.reference import schema_text

        print(schema_text(), end="")
        return 0

    print(json.dumps(schema(), indent=2))
    return 0


def _cmd_ls(a: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    if a.what == "tasks":
        from assay.tasks.registry import builtin_index

        idx = builtin_index()
        t = Table(title="built-in tasks")
        for col in ("task", "groups", "description"):
            t.add_column(col)
        for name, _path in idx.tasks.items():
            groups = ", ".join(g for g, members in idx.groups.items() if name in members)
            t.add_row(name, groups, idx.descriptions.get(name, ""))
        console.print(t)
        console.print("groups: " + ", ".join(f"{g} ({len(m)})" for g, m in idx.groups.items()))
    elif a.what == "formats":
        from assay.prompts.formats import FORMATS

        t = Table(title="chat formats (--chat-format NAME, or chat: NAME in a task)")
        t.add_column("format", no_wrap=True)
        t.add_column("v")
        t.add_column("hash", no_wrap=True)
        t.add_column("stops at")
        t.add_column("layout")
        t.add_row("none", "", "-", "", "plain text")
        t.add_row("model", "", "per model", "its end-of-turn markers, EOS", "the model's own chat template (tokenizer or GGUF)")
        for f in FORMATS.values():
            t.add_row(f.name, str(f.version), f.hash, " ".join(repr(x)[1:-1] for x in f.stop), f"{f.description} ({f.source})")
        console.print(t)
    else:
        import importlib.util

        from assay.backends.registry import ALIASES, BACKEND_INFO, BACKENDS, _EXTRAS

        t = Table(title="model aliases")
        for col in ("alias", "default backend", "what"):
            t.add_column(col)
        for al in ALIASES.values():
            t.add_row(al.name, al.backend, al.description)
        console.print(t)
        b = Table(title=escape("backends (model: [backend:]target[,key=value...])"))
        for col in ("backend", "installed", "log-likelihood", "rolling", "generate", "images"):
            b.add_column(col)
        for name in BACKENDS:
            ok = name not in _EXTRAS or importlib.util.find_spec(_EXTRAS[name][1]) is not None
            i = BACKEND_INFO[name]
            b.add_row(name, "yes" if ok else escape(f"no: pip install 'assay[{_EXTRAS[name][0]}]'"), i.loglikelihood, i.rolling, i.generate, i.images)
        console.print(b)
        for name in BACKENDS:
            console.print(f"  [bold]{name}[/]: {BACKEND_INFO[name].what}")
    return 0


def _cmd_validate(a: argparse.Namespace) -> int:
    from assay.data.sources import data_dir
    from assay.plan import plan_task
    from assay.tasks.loader import load_task
    from assay.tasks.registry import _task_files

    if (a.model or a.chat_format or a.system_prompt) and not a.show:
        raise AssayError("--model, --chat-format and --system-prompt change what --show prints: add --show N")
    if a.show < 0:
        raise AssayError("--show takes a number of instances, 1 or more")
    files = [str(p) for f in a.task_file for p in (_task_files(Path(f)) if Path(f).is_dir() else [Path(f)])]
    backend, cfg = None, None
    if a.show:
        from assay.config import RunConfig
        from assay.preview import NoModel

        if a.chat_format is not None:
            from assay.prompts.formats import check_format_name

            check_format_name(a.chat_format)
        cfg = RunConfig(models=(a.model or "none",), tasks=tuple(files), chat_format=a.chat_format, system_prompt=a.system_prompt)
        backend = NoModel()
        if a.model:
            from assay.backends.registry import load_backend, parse_model
            from assay.schedule.placement import split_placement

            backend = load_backend(split_placement(parse_model(a.model))[0])
    names: dict[str, str] = {}  # task name -> file: results are keyed by name
    try:
        for f in files:
            task = load_task(f)
            if Path(names.get(task.task, f)).resolve() != Path(f).resolve():
                raise AssayError(f"task '{task.task}' is defined twice: in {names[task.task]} and in {f}; rename one (task: NAME)")
            names[task.task] = f
            plan = plan_task(task, Path(f), data_dir(a.data_dir))
            spec = plan.spec
            shots = f", {spec.fewshot.k}-shot from {spec.fewshot.split or spec.split}" if spec.fewshot.k else ""
            print(f"{f}: ok — task {spec.task}, {len(plan.docs.rows)} rows, {len(spec.prompts)} prompt(s), {len(plan.instances)} instances rendered{shots}, metrics {', '.join(m.name for m in spec.metrics)}")
            if a.show:
                from assay.preview import show_instances

                assert cfg is not None and backend is not None
                show_instances(plan, backend, cfg, a.show)
    finally:
        if backend is not None and hasattr(backend, "close"):
            backend.close()
    return 0


def _cmd_new_task(a: argparse.Namespace) -> int:
    from assay.tasks import scaffold

    out: Path = a.output or Path(f"{scaffold.default_stem(a.data_file)}.yaml")
    if out.exists() and not a.force:
        raise AssayError(f"{out} already exists; pass --force to overwrite it (or -o to write elsewhere)")
    src = scaffold.read_data(a.data_file, a.format)
    columns = scaffold.inspect_columns(src.rows)
    for line in scaffold.describe(src, columns):
        print(line, file=sys.stderr)
    guess = scaffold.guess_layout(columns, len(src.rows))
    data = a.data_file.resolve()
    rel = data if a.absolute else Path(os.path.relpath(data, out.resolve().parent))
    name = scaffold.task_name(out.stem)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(scaffold.render_task(guess, src, rel.as_posix(), name, columns, out.as_posix()), encoding="utf-8")
    except OSError as exc:
        raise AssayError(f"{out}: cannot write: {exc}") from None
    print(f"guessed: {guess.summary}", file=sys.stderr)
    print(f"wrote {out}: check the lines marked GUESS and TODO", file=sys.stderr)
    print(_validate_new_task(out, a.data_dir), file=sys.stderr)
    return 0


def _validate_new_task(out: Path, explicit_dir: Path | None) -> str:
    """Load and plan the written file as ``assay validate`` does (a relative data path is read
    beside the task file). One line; an AssayError when it does not validate."""
    from assay.data.sources import data_dir
    from assay.plan import plan_task
    from assay.tasks.loader import load_task

    try:
        task = load_task(out)
        plan = plan_task(task, out, data_dir(explicit_dir))
    except AssayError as exc:
        raise AssayError(f"{out} was written but does not validate: {exc}") from None
    return f"{out}: ok — task {task.task}, {len(plan.docs.rows)} rows, {len(plan.instances)} instances rendered"


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or a container's stop), ended like Ctrl-C: the batch in flight
    is dropped, everything committed stays, the sandbox's programs are killed."""


def _on_sigterm(signum: int, frame: object) -> None:
    raise Terminated()


def _one_line_warnings() -> None:
    """assay's own warnings (a server of a model that does not answer, a sandbox that falls
    back) print as one line; other libraries' keep Python's format."""
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
        if f"{os.sep}assay{os.sep}" in str(filename):
            print(f"assay: warning: {message}", file=file or sys.stderr)
        else:
            default(message, category, filename, lineno, file, line)

    warnings.showwarning = show


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    _one_line_warnings()
    handler = {"run": _cmd_run, "score": _cmd_score, "report": _cmd_report, "export": _cmd_export, "cache": _cmd_cache, "schema": _cmd_schema, "ls": _cmd_ls, "validate": _cmd_validate,
               "new-task": _cmd_new_task}[args.command]
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    # a process started in the background by a non-interactive shell inherits SIGINT ignored;
    # an explicit SIGINT (kill -INT) still means "interrupt, keep what is stored"
    previous_int = signal.getsignal(signal.SIGINT)
    if previous_int == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return handler(args)
    except AssayError as exc:
        print(f"assay: error: {exc}", file=sys.stderr)
        return EXIT_USER
    except KeyboardInterrupt as exc:
        how = "terminated (SIGTERM)" if isinstance(exc, Terminated) else "interrupted"
        print(f"\nassay: {how}; every finished response is stored: run the same command again to resume", file=sys.stderr)
        return EXIT_TERM if isinstance(exc, Terminated) else EXIT_INTERRUPT
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("ASSAY_DEBUG"):
            raise
        print(f"assay: internal error: {type(exc).__name__}: {exc} (set ASSAY_DEBUG=1 for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
    finally:
        signal.signal(signal.SIGTERM, previous)
        if previous_int == signal.SIG_IGN:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


if __name__ == "__main__":
    sys.exit(main())
