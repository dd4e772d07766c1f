"""Tests for assay.tasks.loader, assay.tasks.spec and assay.tasks.registry."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from assay.errors import TaskError, UnknownNameError
from assay.tasks import registry
from assay.tasks.loader import load_raw, load_task
from assay.tasks.spec import TaskSpec

BUILTIN = Path(registry.__file__).resolve().parent / "builtin"

MINIMAL = """\
task: mini
output_type: generate
dataset:
  local: {path: data.jsonl}
prompts:
  - id: p1
    template: "Q: {{ question }}"
target: answer
metrics: [exact_match]
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def line_of(path: Path, needle: str) -> int:
    """1-based line number of the first line containing ``needle``."""
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if needle in line:
            return n
    raise AssertionError(f"{needle!r} not in {path}")


# --------------------------------------------------------------------------- valid files


def test_minimal_task_loads(tmp_path):
    spec = load_task(write(tmp_path, "mini.yaml", MINIMAL))
    assert isinstance(spec, TaskSpec)
    assert spec.task == "mini"
    assert spec.output_type == "generate"
    assert spec.dataset.local is not None and spec.dataset.local.path == "data.jsonl"
    assert [p.id for p in spec.prompts] == ["p1"]
    assert spec.metrics[0].name == "exact_match"  # a bare string becomes {name: ...}
    assert spec.fewshot.k == 0 and spec.split == "test" and spec.chat == "auto"


def test_task_name_defaults_to_file_stem(tmp_path):
    text = MINIMAL.replace("task: mini\n", "")
    spec = load_task(write(tmp_path, "from_stem.yaml", text))
    assert spec.task == "from_stem"


def test_group_string_becomes_list(tmp_path):
    spec = load_task(write(tmp_path, "g.yaml", MINIMAL + "group: solo\n"))
    assert spec.group == ["solo"]


def test_overrides_merge_into_the_file(tmp_path):
    spec = load_task(write(tmp_path, "mini.yaml", MINIMAL), overrides={"fewshot": {"k": 2}, "split": "dev"})
    assert spec.fewshot.k == 2 and spec.split == "dev"
    assert spec.fewshot.seed == 1234  # sibling default untouched


def test_content_hash_is_stable_and_sensitive(tmp_path):
    a = load_task(write(tmp_path, "a.yaml", MINIMAL))
    b = load_task(write(tmp_path, "b.yaml", MINIMAL))
    c = load_task(write(tmp_path, "c.yaml", MINIMAL.replace("Q: ", "Question: ")))
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != c.content_hash()


# --------------------------------------------------------------------------- include


def test_include_merges_mappings_key_by_key_and_replaces_lists(tmp_path):
    write(
        tmp_path,
        "_base.yaml",
        """\
        output_type: generate
        dataset:
          local: {path: base.jsonl, sha256: abababababababababababababababababababababababababababababababab}
          id_field: id
        prompts:
          - id: base_prompt
            template: base
        target: answer
        metrics: [exact_match, f1]
        vars: {a: 1, b: 2}
        generation: {max_tokens: 10, until: ["\\n"]}
        """,
    )
    child = write(
        tmp_path,
        "child.yaml",
        """\
        include: _base.yaml
        task: child
        dataset:
          local: {path: child.jsonl}
        prompts:
          - id: child_prompt
            template: child
        metrics: [f1]
        vars: {b: 3}
        generation: {until: ["END"]}
        """,
    )
    spec = load_task(child)
    # nested mappings merge key by key: the sibling keys of the base survive
    assert spec.dataset.local.path == "child.jsonl"
    assert spec.dataset.local.sha256 == "ab" * 32
    assert spec.dataset.id_field == "id"
    assert spec.vars == {"a": 1, "b": 3}
    assert spec.generation.max_tokens == 10
    # lists are replaced, not concatenated
    assert spec.generation.until == ["END"]
    assert [m.name for m in spec.metrics] == ["f1"]
    # prompts merge by id: the child adds its prompt to the base's
    assert [p.id for p in spec.prompts] == ["base_prompt", "child_prompt"]
    # include itself never reaches the spec
    assert "include" not in load_raw(child)


def test_including_file_redefines_a_prompt_by_id(tmp_path):
    write(tmp_path, "_p.yaml", "version: 1\noutput_type: generate\ndataset: {local: {path: d.jsonl}}\ntarget: answer\nmetrics: [f1]\nprompts:\n  - {id: a, template: one}\n  - {id: b, template: two}\n")
    child = write(tmp_path, "c.yaml", "include: _p.yaml\ntask: c\nprompts:\n  - {id: a, template: redefined}\n")
    spec = load_task(child)
    assert [(p.id, p.template) for p in spec.prompts] == [("a", "redefined"), ("b", "two")]


def test_include_list_of_bases_later_wins(tmp_path):
    write(tmp_path, "_a.yaml", "vars: {x: a, only_a: 1}\n")
    write(tmp_path, "_b.yaml", "vars: {x: b, only_b: 2}\n")
    write(tmp_path, "_task.yaml", MINIMAL)
    child = write(tmp_path, "c.yaml", "include: [_task.yaml, _a.yaml, _b.yaml]\ntask: c\n")
    spec = load_task(child)
    assert spec.vars == {"x": "b", "only_a": 1, "only_b": 2}
    assert spec.task == "c"


def test_nested_include_chain(tmp_path):
    write(tmp_path, "_root.yaml", MINIMAL)
    write(tmp_path, "_mid.yaml", "include: _root.yaml\nvars: {level: mid}\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    leaf = write(sub, "leaf.yaml", "include: ../_mid.yaml\ntask: leaf\n")
    spec = load_task(leaf)
    assert spec.task == "leaf" and spec.vars == {"level": "mid"}
    assert spec.prompts[0].template == "Q: {{ question }}"


def test_include_cycle(tmp_path):
    write(tmp_path, "a.yaml", "include: b.yaml\ntask: a\n")
    write(tmp_path, "b.yaml", "include: a.yaml\n")
    with pytest.raises(TaskError, match="include cycle"):
        load_task(tmp_path / "a.yaml")


def test_self_include_is_a_cycle(tmp_path):
    path = write(tmp_path, "self.yaml", "include: self.yaml\n" + MINIMAL)
    with pytest.raises(TaskError, match="include cycle"):
        load_task(path)


def test_missing_include_file(tmp_path):
    path = write(tmp_path, "t.yaml", "include: _nowhere.yaml\n" + MINIMAL)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert "_nowhere.yaml" in str(ei.value)
    assert "no such task file" in str(ei.value)


def test_include_must_name_files(tmp_path):
    path = write(tmp_path, "t.yaml", "include: [{a: 1}]\n" + MINIMAL)
    with pytest.raises(TaskError, match=r"t\.yaml:1: include takes a file name"):
        load_task(path)


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskError, match="no such task file"):
        load_task(tmp_path / "absent.yaml")


# --------------------------------------------------------------------------- error locations


def test_duplicate_key_names_file_and_line(tmp_path):
    text = MINIMAL + "split: test\nsplit: validation\n"
    path = write(tmp_path, "dup.yaml", text)
    dup_line = len(text.splitlines())  # the second 'split'
    with pytest.raises(TaskError) as ei:
        load_task(path)
    msg = str(ei.value)
    assert f"{path.resolve()}:{dup_line}" in msg
    assert "duplicate key 'split'" in msg


def test_duplicate_nested_key(tmp_path):
    text = MINIMAL.replace("  local: {path: data.jsonl}\n", "  local: {path: data.jsonl}\n  id_field: a\n  id_field: b\n")
    path = write(tmp_path, "dupn.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert f"{path.resolve()}:6: duplicate key 'id_field'" in str(ei.value)


def test_duplicate_key_in_included_file_names_that_file(tmp_path):
    base = write(tmp_path, "_base.yaml", "vars: {a: 1}\nsplit: x\nsplit: y\n")
    child = write(tmp_path, "c.yaml", "include: _base.yaml\n" + MINIMAL)
    with pytest.raises(TaskError) as ei:
        load_task(child)
    assert f"{base.resolve()}:3" in str(ei.value)


def test_unknown_top_level_field_names_field_and_line(tmp_path):
    text = MINIMAL + "colour: blue\n"
    path = write(tmp_path, "unk.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    msg = str(ei.value)
    assert "'colour'" in msg
    assert f"{path.resolve()}:{line_of(path, 'colour')}" in msg
    assert "xtra" in msg  # pydantic: "Extra inputs are not permitted"


def test_unknown_nested_field_names_dotted_path_and_line(tmp_path):
    text = MINIMAL.replace("    template: \"Q: {{ question }}\"\n", "    template: \"Q: {{ question }}\"\n    tempature: 0.5\n")
    path = write(tmp_path, "unk2.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    msg = str(ei.value)
    assert "prompts.0.tempature" in msg
    assert f"{path.resolve()}:{line_of(path, 'tempature')}" in msg


def test_unknown_field_in_included_file_cites_the_base(tmp_path):
    base = write(tmp_path, "_base.yaml", "vars: {a: 1}\nbogus_key: 1\n")
    child = write(tmp_path, "c.yaml", "include: _base.yaml\n" + MINIMAL)
    with pytest.raises(TaskError) as ei:
        load_task(child)
    msg = str(ei.value)
    assert "bogus_key" in msg
    assert f"{base.resolve()}:2" in msg


def test_wrong_type_names_nested_field(tmp_path):
    text = MINIMAL + "fewshot: {k: -1}\n"
    path = write(tmp_path, "k.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    msg = str(ei.value)
    assert "fewshot.k" in msg
    assert f"{path.resolve()}:{line_of(path, 'fewshot')}" in msg


def test_wrong_type_not_an_int(tmp_path):
    path = write(tmp_path, "gen.yaml", MINIMAL + "generation:\n  max_tokens: lots\n")
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert "generation.max_tokens" in str(ei.value)
    assert f":{line_of(path, 'max_tokens')}:" in str(ei.value)


def test_yaml_syntax_error_names_line(tmp_path):
    text = MINIMAL + "vars: {a: 1\nsplit: test\n"
    path = write(tmp_path, "bad.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    msg = str(ei.value)
    # the unclosed flow mapping is detected at the next key, on the line after 'vars:'
    assert f"{path.resolve()}:{line_of(path, 'split: test')}: YAML error" in msg


def test_yaml_bad_indentation_names_line(tmp_path):
    path = write(tmp_path, "ind.yaml", "task: t\nprompts:\n  - id: a\n   template: x\n")
    with pytest.raises(TaskError, match=r"ind\.yaml:4: YAML error"):
        load_task(path)


def test_yaml_tab_indentation_error_line(tmp_path):
    path = write(tmp_path, "tab.yaml", "task: t\nvars:\n\ta: 1\n")
    with pytest.raises(TaskError, match=r"tab\.yaml:3: YAML error"):
        load_task(path)


def test_unconstructible_tag_is_a_task_error(tmp_path):
    path = write(tmp_path, "tag.yaml", MINIMAL + "description: !custom 1\n")
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert f"{path.resolve()}:{line_of(path, '!custom')}" in str(ei.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file(tmp_path, text):
    path = write(tmp_path, "empty.yaml", text)
    with pytest.raises(TaskError, match="the file is empty"):
        load_task(path)


@pytest.mark.parametrize("text", ["- a\n- b\n", "just a string\n", "42\n"])
def test_non_mapping_file(tmp_path, text):
    path = write(tmp_path, "list.yaml", text)
    with pytest.raises(TaskError, match="must be a mapping"):
        load_task(path)


# --------------------------------------------------------------------------- spec validation


def test_multiple_choice_without_choices(tmp_path):
    text = MINIMAL.replace("output_type: generate", "output_type: multiple_choice")
    path = write(tmp_path, "mc.yaml", text)
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert "multiple_choice needs 'choices'" in str(ei.value)
    assert "p1" in str(ei.value)


def test_multiple_choice_without_target(tmp_path):
    text = MINIMAL.replace("output_type: generate", "output_type: multiple_choice").replace(
        "target: answer\n", "choices: \"['a', 'b']\"\n"
    )
    path = write(tmp_path, "mc.yaml", text)
    with pytest.raises(TaskError, match="multiple_choice needs 'target'"):
        load_task(path)


def test_multiple_choice_with_prompt_level_choices_and_target(tmp_path):
    text = MINIMAL.replace("output_type: generate", "output_type: multiple_choice").replace(
        "target: answer\n", ""
    ).replace("    template: \"Q: {{ question }}\"\n", "    template: \"Q\"\n    choices: \"['a', 'b']\"\n    target: label\n")
    spec = load_task(write(tmp_path, "mc.yaml", text))
    assert spec.prompts[0].choices == "['a', 'b']" and spec.prompts[0].target == "label"


def test_duplicate_prompt_ids(tmp_path):
    text = MINIMAL.replace(
        "    template: \"Q: {{ question }}\"\n",
        "    template: \"Q: {{ question }}\"\n  - id: p1\n    template: other\n",
    )
    path = write(tmp_path, "dupid.yaml", text)
    with pytest.raises(TaskError, match="duplicate prompt ids: p1"):
        load_task(path)


@pytest.mark.parametrize("bad_id", ["has space", "a/b", ""])
def test_bad_prompt_id(tmp_path, bad_id):
    path = write(tmp_path, "pid.yaml", MINIMAL.replace("id: p1", f"id: '{bad_id}'"))
    with pytest.raises(TaskError, match="prompts.0.id"):
        load_task(path)


def test_fewshot_split_must_be_declared(tmp_path):
    path = write(tmp_path, "fs.yaml", MINIMAL + "fewshot: {k: 2, split: train}\n")
    with pytest.raises(TaskError, match="fewshot.split 'train' is not declared"):
        load_task(path)


def test_dataset_needs_a_source(tmp_path):
    path = write(tmp_path, "src.yaml", MINIMAL.replace("  local: {path: data.jsonl}\n", "  id_field: x\n"))
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert "'dataset'" in str(ei.value) and "give a data source" in str(ei.value)


def test_missing_required_field(tmp_path):
    path = write(tmp_path, "nometric.yaml", MINIMAL.replace("metrics: [exact_match]\n", ""))
    with pytest.raises(TaskError, match="field 'metrics'"):
        load_task(path)


def test_several_errors_are_counted(tmp_path):
    path = write(tmp_path, "many.yaml", MINIMAL + "foo: 1\nbar: 2\n")
    with pytest.raises(TaskError, match=r"\(and 1 more\)"):
        load_task(path)


# --------------------------------------------------------------------------- built-in tasks

BUILTIN_FILES = sorted(p for p in BUILTIN.rglob("*.yaml") if not p.name.startswith("_"))


def test_builtin_files_exist():
    assert len(BUILTIN_FILES) >= 13


@pytest.mark.parametrize("path", BUILTIN_FILES, ids=lambda p: p.stem)
def test_every_builtin_task_loads(path):
    spec = load_task(path)
    assert isinstance(spec, TaskSpec)
    assert spec.task
    assert spec.prompts and spec.metrics
    assert spec.dataset.local is not None or spec.dataset.hub is not None


def test_builtin_index_groups():
    idx = registry.builtin_index()
    assert "xcopa" in idx.groups
    assert len(idx.groups["xcopa"]) == 11
    assert len(set(idx.groups["xcopa"])) == 11
    assert all(t.startswith("xcopa_") for t in idx.groups["xcopa"])
    assert "core" in idx.groups and idx.groups["core"]
    assert "copa" in idx.tasks
    assert "xcopa_it" in idx.tasks
    # bases are never tasks
    assert not any(name.startswith("_") for name in idx.tasks)
    assert all(path.exists() for path in idx.tasks.values())
    assert set(idx.descriptions) == set(idx.tasks)


def test_resolve_group():
    specs = registry.resolve(["xcopa"])
    names = [s.task for s, _ in specs]
    assert len(specs) == 11
    assert len(set(names)) == 11
    assert all(isinstance(s, TaskSpec) for s, _ in specs)


def test_resolve_without_duplicates_keeps_first_order():
    specs = registry.resolve(["xcopa_it", "xcopa"])
    names = [s.task for s, _ in specs]
    assert len(names) == 11
    assert len(set(names)) == len(names)
    assert names[0] == "xcopa_it"


def test_resolve_unknown_name_suggests():
    with pytest.raises(UnknownNameError) as ei:
        registry.resolve(["xcopa_itt"])
    assert "xcopa_it" in ei.value.suggestions
    assert "xcopa_it" in str(ei.value)


def test_resolve_file_and_empty(tmp_path):
    path = write(tmp_path, "mine.yaml", MINIMAL)
    specs = registry.resolve([str(path), " ", str(path)])
    assert [s.task for s, _ in specs] == ["mini"]
    with pytest.raises(TaskError, match="no tasks given"):
        registry.resolve(["", "  "])


def test_error_in_replaced_list_cites_the_including_file(tmp_path):
    write(tmp_path, "_b.yaml", MINIMAL)
    child = write(tmp_path, "c.yaml", "include: _b.yaml\ntask: c\nprompts:\n  - id: q\n")
    with pytest.raises(TaskError) as ei:
        load_task(child)
    msg = str(ei.value)
    assert "prompts.1.template" in msg  # after the base's prompt: prompts merge by id
    assert f"{child.resolve()}:4" in msg


# --------------------------------------------------------------------------- issue 13: silently wrong numbers


@pytest.mark.parametrize("output_type", ["generate", "loglikelihood"])
def test_task_that_compares_with_a_target_needs_one(tmp_path, output_type):
    text = MINIMAL.replace("target: answer\n", "").replace("output_type: generate", f"output_type: {output_type}")
    with pytest.raises(TaskError) as ei:
        load_task(write(tmp_path, "mini.yaml", text))
    assert "task mini" in str(ei.value) and "needs 'target'" in str(ei.value)


def test_a_prompt_target_is_enough_for_a_generation_task(tmp_path):
    text = MINIMAL.replace("target: answer\n", "").replace('template: "Q: {{ question }}"', 'template: "Q: {{ question }}"\n    target: answer')
    assert load_task(write(tmp_path, "mini.yaml", text)).prompts[0].target == "answer"


def test_target_type_only_for_multiple_choice(tmp_path):
    with pytest.raises(TaskError, match="target_type"):
        load_task(write(tmp_path, "mini.yaml", MINIMAL + "target_type: text\n"))


@pytest.mark.parametrize("value", ["5", "{a: b.yaml}", "''", "[b.yaml, 5]", "true"])
def test_include_of_the_wrong_kind_is_one_task_error(tmp_path, value):
    write(tmp_path, "b.yaml", MINIMAL)
    path = write(tmp_path, "t.yaml", MINIMAL.replace("task: mini\n", f"task: mini\ninclude: {value}\n"))
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert f"{path.resolve()}:2: include takes a file name or a list of them" in str(ei.value)


def test_resolve_two_files_with_the_same_task_name_is_an_error(tmp_path):
    a = write(tmp_path, "a.yaml", MINIMAL)
    b = write(tmp_path, "b.yaml", MINIMAL.replace("Q: ", "Question: "))
    with pytest.raises(TaskError) as ei:
        registry.resolve([str(a), str(b)])
    msg = str(ei.value)
    assert "task 'mini'" in msg and str(a) in msg and str(b) in msg


def test_resolve_user_file_named_like_a_builtin_task_is_an_error(tmp_path):
    mine = write(tmp_path, "my_copa.yaml", MINIMAL.replace("task: mini", "task: xcopa_it"))
    with pytest.raises(TaskError) as ei:
        registry.resolve(["xcopa", str(mine)])
    msg = str(ei.value)
    assert "task 'xcopa_it'" in msg and str(mine) in msg and "xcopa_it.yaml" in msg
    # the file alone (no built-in task of that name in the run) is fine
    assert [s.task for s, _ in registry.resolve([str(mine)])] == ["xcopa_it"]


def test_resolve_the_same_file_twice_by_another_path_is_one_task(tmp_path):
    (tmp_path / "sub").mkdir()
    path = write(tmp_path, "mine.yaml", MINIMAL)
    assert [s.task for s, _ in registry.resolve([str(path), str(tmp_path / "sub" / ".." / "mine.yaml")])] == ["mini"]


def test_prompt_id_of_the_wrong_kind_under_include_is_one_task_error(tmp_path):
    # prompts merge by id; an id that is a list used to crash the merge (TypeError: unhashable)
    write(tmp_path, "_b.yaml", MINIMAL)
    path = write(tmp_path, "t.yaml", "include: _b.yaml\nprompts:\n  - {id: [1], template: x}\n")
    with pytest.raises(TaskError) as ei:
        load_task(path)
    assert f"{path.resolve()}:3" in str(ei.value) and "prompts.0.id" in str(ei.value)
