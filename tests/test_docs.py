"""Documentation references resolve: every ``docs/….md §N`` cited in the code, configs and Markdown names an existing
file and a numbered section heading of it; no reference points outside the repository; README opens with the two
commands; the model card stays a card."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SCANNED = ("dmenet", "syndof", "tests", "benchmarks", "experiments", "docs", "checkpoints")
SUFFIXES = {".py", ".yaml", ".yml", ".md", ".cfg", ".toml"}

# "docs/method.md §11.2", "docs/evaluation.md §4–§5", "method.md §4, §11.2" (inside docs/), "docs/history.md"
REF = re.compile(r"(?P<prefix>docs/)?(?P<name>[A-Za-z_][\w-]*)\.md"
                 r"(?P<sections>(?:[ \t]*(?:,|–|-|and)?[ \t]*§\d+(?:\.\d+)?)*)")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")
HEADING = re.compile(r"^#{2,4}\s+(\d+(?:\.\d+)?)[.\s]", re.MULTILINE)
OUTSIDE = ("shared/reference",)
GENERATED = {"report.md", "summary.md"}  # written by dmenet.demo / dmenet.evaluate / dmenet.eval.focal_stack


def repo_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "BENCHMARKS.md", ROOT / "setup.cfg", ROOT / "Makefile"]
    for top in SCANNED:
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in SUFFIXES and p.is_file()]
    return [p for p in files if p.name != "test_docs.py"]


def headings(doc: Path) -> set[str]:
    return set(HEADING.findall(doc.read_text(encoding="utf-8")))


def references() -> list[tuple[Path, int, str, list[str]]]:
    """(file, line, doc name, cited sections) for every reference to a file of docs/."""
    doc_names = {p.stem for p in DOCS.glob("*.md")}
    found = []
    for path in repo_files():
        in_docs = path.parent == DOCS
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for m in REF.finditer(line):
                explicit = m.group("prefix") is not None
                if not (explicit or (in_docs and m.group("name") in doc_names)):
                    continue
                found.append((path, lineno, m.group("name"), SECTION.findall(m.group("sections"))))
    return found


def test_docs_exist_with_numbered_sections():
    for name in ("method", "evaluation", "history"):
        doc = DOCS / f"{name}.md"
        assert doc.is_file(), doc
        assert {"1", "2", "3"} <= headings(doc), f"{doc} lacks numbered '## N.' sections"
    assert {"11.1", "11.2", "11.3", "11.4", "13", "15", "16", "17"} <= headings(DOCS / "method.md")


def test_code_cites_docs_and_every_reference_resolves():
    refs = references()
    cited_in_code = [r for r in refs if r[0].suffix == ".py" and r[3]]
    assert len(cited_in_code) >= 26, "the code's citations of the method spec should point at docs/"
    bad = []
    for path, lineno, name, sections in refs:
        doc = DOCS / f"{name}.md"
        if not doc.is_file():
            bad.append(f"{path.relative_to(ROOT)}:{lineno}: docs/{name}.md does not exist")
            continue
        missing = [s for s in sections if s not in headings(doc)]
        if missing:
            bad.append(f"{path.relative_to(ROOT)}:{lineno}: docs/{name}.md has no section {', '.join(missing)}")
    assert not bad, "\n".join(bad)


def test_sections_cited_inside_a_doc_exist_in_it():
    """A bare ``§N`` inside docs/X.md (no file name before it) points at X.md's own sections."""
    bad = []
    for doc in DOCS.glob("*.md"):
        own = headings(doc)
        for lineno, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            bare = REF.sub("", line)  # drop the references to other files and their sections
            bad += [f"{doc.name}:{lineno}: §{s}" for s in SECTION.findall(bare) if s not in own]
    assert not bad, "\n".join(bad)


def test_no_reference_to_files_outside_the_repository():
    """Every ``NAME.md`` the code and docs mention is a file of the repository (or an output the tools write)."""
    docs = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *ROOT.glob("*/*.md"), *ROOT.glob("*/*/*.md")]
    ours = {p.name for p in docs} | GENERATED
    md_name = re.compile(r"([A-Za-z_][\w-]*\.md)\b")
    bad = [f"{p.relative_to(ROOT)}:{i}: {name}"
           for p in repo_files()
           for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
           for name in [*md_name.findall(line), *(n for n in OUTSIDE if n in line)] if name not in ours]
    assert not bad, "\n".join(bad)


def test_markdown_links_resolve():
    link = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
    bad = []
    for md in [ROOT / "README.md", ROOT / "checkpoints" / "MODEL_CARD.md", *DOCS.glob("*.md")]:
        for target in link.findall(md.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            if not (md.parent / target).exists():
                bad.append(f"{md.relative_to(ROOT)} → {target}")
    assert not bad, "\n".join(bad)


def test_readme_starts_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("# ")]
    assert body[:4] == ["```", "make demo", "make test", "```"], body[:4]


@pytest.mark.parametrize("needle", ["## Reproduce", "## Limits", "## Inference recipe", "python -m dmenet.evaluate"])
def test_model_card_is_a_card(needle):
    card = (ROOT / "checkpoints" / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert len(card.splitlines()) <= 110
    assert needle in card


# The docs that describe the code as it is (the logs — reliability.md, history.md, BENCHMARKS.md, the experiments'
# rule notes — describe it as it was, and may name what has since moved or gone).
LIVING_DOCS = ("README.md", "docs/method.md", "docs/evaluation.md", "docs/distill.md", "docs/speed.md",
               "docs/audit.md", "checkpoints/*.md")
DOTTED = re.compile(r"`((?:dmenet|syndof)(?:\.[A-Za-z_]\w*)+)(?:\(\))?`")


def _resolves(dotted: str) -> bool:
    """Whether ``dmenet.a.b.c`` names a module, or an attribute reached from the longest importable module prefix."""
    import importlib

    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for part in parts[i:]:
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_dotted_names_in_living_docs_and_docstrings_resolve():
    """Every `` `dmenet.x.y` `` / `` `syndof.x.y` `` the living docs and the code's docstrings name is importable, so a
    module split or a rename cannot leave a cross-reference to nothing."""
    files = [p for pattern in LIVING_DOCS for p in ROOT.glob(pattern)]
    files += [p for top in ("dmenet", "syndof", "experiments", "benchmarks") for p in (ROOT / top).rglob("*.py")]
    names = {(m.group(1), p.relative_to(ROOT).as_posix()) for p in files
             for m in DOTTED.finditer(p.read_text(encoding="utf-8"))
             if not m.group(1).endswith((".py", ".md", ".json", ".yaml"))}
    assert len(names) >= 300, "the docs and docstrings should name the code they describe"
    bad = sorted(f"{where}: {name}" for name, where in names if not _resolves(name))
    assert not bad, "\n".join(bad)
