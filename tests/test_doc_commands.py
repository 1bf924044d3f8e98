"""Every complete ``python -m`` command that the README, docs/ and the model cards show still parses with today's
command line: the flags exist, take the values shown and the required ones are there. Only argument parsing runs
(``ArgumentParser.parse_args`` is stopped right after it parses), so nothing is read or written. A flag they name
on its own (``--second-bn image``, a placeholder command's flags) is at least one that some tool defines.

Not scanned: docs/history.md (a diary whose tool names are those of the time, as it says) and BENCHMARKS.md / the
rule files (records of the commands as they ran then, with shell patterns such as ``{a,b}`` and ``$SET``). Skipped:
a command shown with a placeholder or an elision (``…``, ``[--opt]``, ``<x>``, ``IMG``, ``FRAME``, ``NAME``) and a
bare module name in prose."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCANNED = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "checkpoints").glob("*.md"))]
NOT_SCANNED = {"history.md"}
COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*python -m ((?:dmenet|syndof)[\w.]*)(.*)$")
PLACEHOLDER = re.compile(r"…|\.\.\.|\[|<|\bIMG\b|FRAME|\bNAME\b")
FENCE = re.compile(r"^```.*$", re.MULTILINE)
SHELL_SEPARATOR = re.compile(r"\s(?:&&|;|\||&)\s|\s&$")


def snippets(text: str) -> list[str]:
    """The shell lines of the fenced blocks (``\\`` continuations joined) and the inline code spans (which may run
    over a line break) of a Markdown text, comments dropped, split at ``&&``, ``;``, ``|`` and ``&``, blanks
    squeezed."""
    found = []
    for i, part in enumerate(FENCE.split(text)):
        if i % 2:  # inside a fence
            found += re.sub(r"\\\n", " ", part).splitlines()
        else:
            found += [m.group(1).replace("\n", " ") for m in re.finditer(r"`([^`]+)`", part)]
    pieces = []
    for line in found:
        pieces += SHELL_SEPARATOR.split(re.sub(r"\s+#.*$", "", line.strip()))
    return [" ".join(p.split()) for p in pieces if p.strip()]


def doc_commands() -> list[tuple[str, str, str]]:
    """(file, module, arguments) of every complete ``python -m dmenet…`` / ``syndof…`` command of the scanned docs."""
    commands = []
    for path in SCANNED:
        if path.name in NOT_SCANNED:
            continue
        for piece in snippets(path.read_text(encoding="utf-8")):
            m = COMMAND.match(piece)
            if m and m.group(2).strip() and not PLACEHOLDER.search(m.group(2)):
                commands.append((path.relative_to(ROOT).as_posix(), m.group(1), m.group(2).strip()))
    return commands


class _Parsed(Exception):
    """Raised by the patched ``parse_args`` once the arguments parsed."""


def parse_only(module: str, argv: list[str], monkeypatch) -> str | None:
    """None when ``python -m module argv`` parses; else what its parser printed (its one-line error)."""
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(self, args=None, namespace=None):
        original(self, args, namespace)
        raise _Parsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_then_stop)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            importlib.import_module(module).main(argv)
    except _Parsed:
        return None
    except SystemExit as exc:
        return err.getvalue().strip() or f"exit {exc.code}"
    return "main() returned without parsing its arguments"


COMMANDS = doc_commands()


def test_the_scan_finds_the_documented_commands():
    """The extraction itself works: the README's headline commands are among those checked."""
    assert len(COMMANDS) >= 30
    found = {(f, m, a) for f, m, a in COMMANDS}
    assert ("README.md", "dmenet.predict", "photo.jpg --out preds/") in found
    assert any(f == "README.md" and m == "dmenet.evaluate" and "--benchmark rtf" in a for f, m, a in COMMANDS)
    assert any(f.startswith("checkpoints/") for f, _, _ in COMMANDS)


def test_snippets_join_continuations_and_split_shell_lists():
    text = "x `python -m dmenet.predict a.jpg\n--out p/` y\n```\npython -m syndof.generate --out d \\\n" \
           "  --count 2   # note\ncd x && python -m dmenet.demo --out o &\n```\n"
    assert snippets(text) == ["python -m dmenet.predict a.jpg --out p/", "python -m syndof.generate --out d --count 2",
                              "cd x", "python -m dmenet.demo --out o"]


def test_parse_only_reports_a_wrong_flag(monkeypatch):
    """The check can fail: an unknown flag and a missing required one are reported, a good command is not."""
    assert parse_only("dmenet.predict", ["photo.jpg", "--out", "p/"], monkeypatch) is None
    assert "unrecognized arguments: --no-such-flag" in parse_only(
        "dmenet.predict", ["photo.jpg", "--out", "p/", "--no-such-flag"], monkeypatch)
    assert "--out" in parse_only("dmenet.evaluate", ["--benchmark", "rtf", "--data", "d"], monkeypatch)


@pytest.mark.parametrize("where,module,arguments", COMMANDS, ids=[f"{f}:{m}:{i}" for i, (f, m, _) in
                                                                   enumerate(COMMANDS)])
def test_documented_command_parses(where, module, arguments, monkeypatch):
    problem = parse_only(module, shlex.split(arguments), monkeypatch)
    assert problem is None, f"{where}: python -m {module} {arguments}\n  -> {problem}"


# A flag named on its own (``--second-bn image``, ``… --resume``) has no command to parse; it must still be a flag
# that some tool of the repository defines. The review logs are left out: they also name flags they propose.
REVIEW_LOGS = {"reliability.md", "audit.md"}
FLAG = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)(?![\w])")
FLAG_LITERAL = re.compile(r"""["'](--[a-z][a-z0-9-]*)["']""")


def defined_flags() -> set[str]:
    """Every ``"--flag"`` string literal of the Python sources (argparse definitions and their aliases), and --help."""
    flags = {"--help"}
    for top in ("dmenet", "syndof", "benchmarks", "experiments"):
        for path in (ROOT / top).rglob("*.py"):
            flags |= set(FLAG_LITERAL.findall(path.read_text(encoding="utf-8")))
    return flags


def undefined_flags(text: str, flags: set[str]) -> list[str]:
    """The ``--flags`` of a Markdown text's code spans and fenced blocks that are not in ``flags``."""
    return sorted({f for piece in snippets(text) for f in FLAG.findall(piece)} - flags)


def test_undefined_flags_are_found():
    """The check can fail: a made-up flag is reported, a real one, a config key and an em dash are not."""
    text = "use `… --resume --no-such-flag` and `--set train.keep_last=8`, not -- this; `--is_pretrain` is TF's"
    assert undefined_flags(text, defined_flags()) == ["--no-such-flag"]


def test_every_documented_flag_exists():
    flags = defined_flags()
    bad = [f"{path.relative_to(ROOT).as_posix()}: {flag}" for path in SCANNED
           if path.name not in NOT_SCANNED | REVIEW_LOGS
           for flag in undefined_flags(path.read_text(encoding="utf-8"), flags)]
    assert not bad, "flags that no tool defines:\n" + "\n".join(bad)
