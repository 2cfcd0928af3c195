"""The README's examples print what the README shows (see tests/readme_examples.py)."""

from __future__ import annotations

import pytest

from microseg import cli
from tests.readme_examples import README, WIDTH, difference, examples, on_project, updated

EXAMPLES = examples(README.read_text(encoding="utf-8"))


def run(args: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(cli.console, "width", WIDTH)
    monkeypatch.setattr(cli.err_console, "width", WIDTH)
    cli.state.debug = False
    capsys.readouterr()
    code = cli.main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_readme_has_examples_with_output():
    commands = [e.args[e.args.index("shop") + 1] for e in EXAMPLES if "shop" in e.args]
    assert {"persona", "segments", "members"} <= set(commands), commands


def test_the_examples_print_what_the_readme_shows(demo_shop, capsys, monkeypatch, request):
    update = request.config.getoption("--update-readme")
    outputs, problems = {}, []
    for example in EXAMPLES:
        code, out, err = run(on_project(example.args, demo_shop), capsys, monkeypatch)
        assert code == 0, f"README line {example.line}: {example.command} failed: {err}"
        outputs[example.start] = out
        problem = difference(example.expected, out)
        if problem:
            problems.append(f"README line {example.line}, {example.command}: {problem}")
    if update:
        text = README.read_text(encoding="utf-8")
        README.write_text(updated(text, outputs), encoding="utf-8")
        return
    assert not problems, "\n".join(problems) + "\n(regenerate: pytest tests/test_readme.py --update-readme)"


def test_the_comparison_allows_only_last_digit_noise_in_decimals():
    assert difference("mean CLV 272.34, 1,112 customers\n", "mean CLV 272.35, 1,112 customers  \n\n") is None
    assert difference("mean CLV 272.34", "mean CLV 272.36") == "line 1: 272.34 in the README, 272.36 printed"
    assert difference("1,112 customers", "1,113 customers") is not None  # counts are exact
    assert difference("active.b0 on 2025-10-15", "active.b1 on 2025-10-15") is not None
    assert difference("2025-10-15", "2025-10-16") is not None
    assert difference("a\nb", "a") == "1 lines printed, 2 in the README"


def test_examples_are_found_and_rewritten():
    text = (
        "Intro\n\n```sh\n# on the demo\nmicroseg -p shop segments --kind lifecycle\n```\n\n"
        "```text\nold output\n```\n\n```sh\nmicroseg -p shop import\nmicroseg -p shop run\n```\n\n"
        "```text\nnot an example: two commands\n```\n"
    )
    found = examples(text)
    assert [e.args for e in found] == [["-p", "shop", "segments", "--kind", "lifecycle"]]
    assert found[0].expected == "old output\n" and found[0].line == 5
    assert on_project(found[0].args, "/tmp/demo")[:2] == ["-p", "/tmp/demo"]
    new = updated(text, {found[0].start: "new output   \nsecond line\n\n"})
    assert "```text\nnew output\nsecond line\n```" in new and "not an example: two commands" in new


@pytest.mark.skipif(not EXAMPLES, reason="no examples")
def test_every_example_runs_on_the_readme_project():
    assert all("-p" in e.args and e.args[e.args.index("-p") + 1] == "shop" for e in EXAMPLES)
