"""The pages mkdocs writes at build time: the CLI, operations and API references.

An mkdocs hook (mkdocs.yml, ``hooks:``). The command-line reference walks the
``chunkwise`` argument parser itself, the operations reference reads
`chunkwise.ops.CATALOGUE` and `chunkwise.ops.parameters`, and the API reference lists
``chunkwise.__all__`` for mkdocstrings, so a new command, option, operation,
parameter or public name appears in the docs without editing them. The benchmark plot
is taken from benchmarks/results/, where its script writes it.
"""

from __future__ import annotations

import argparse
import inspect
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs.structure.files import File

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files

ROOT = Path(__file__).resolve().parents[1]
#: Files copied into the site from elsewhere in the repository: site path -> source.
COPIED = {"images/benchmark-results.png": ROOT / "benchmarks/results/results.png"}
HELP_WIDTH = 88


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the generated pages and the copied images to the site."""
    files.append(File.generated(config, "cli.md", content=cli_reference()))
    files.append(File.generated(config, "operations.md", content=ops_reference()))
    files.append(File.generated(config, "api.md", content=api_reference()))
    for path, source in COPIED.items():
        files.append(File.generated(config, path, abs_src_path=str(source)))
    return files


# ----------------------------------------------------------------- command line


def cli_reference() -> str:
    """The ``chunkwise`` command and each subcommand: summary, usage and options."""
    from chunkwise import cli

    parser = cli._parser()
    lines = [
        "# Command line",
        "",
        "Generated from the `chunkwise` command's own argument parser: what each",
        "command prints with `--help`. The operations that `--op` takes, with their",
        "parameters, are in the [operations reference](operations.md).",
        "",
        *_help(parser),
    ]
    for name, (summary, sub) in _subcommands(parser).items():
        lines += ["", f"## `chunkwise {name}`", "", summary, "", *_help(sub)]
    return "\n".join(lines) + "\n"


def _subcommands(
    parser: argparse.ArgumentParser,
) -> dict[str, tuple[str, argparse.ArgumentParser]]:
    """Each subcommand's name, its one-line help and its parser."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            summaries = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                summary = summaries.get(name, "")
                found[name] = (summary[:1].upper() + summary[1:], sub)
    return found


def _help(parser: argparse.ArgumentParser) -> list[str]:
    """``--help`` of ``parser`` as a text block, at a fixed width."""
    parser.formatter_class = _fixed_width
    return ["```text", parser.format_help().rstrip(), "```"]


def _fixed_width(prog: str) -> argparse.HelpFormatter:
    # The terminal's width would make the page depend on who built it.
    return argparse.HelpFormatter(prog, width=HELP_WIDTH)


# ------------------------------------------------------------------- operations


def ops_reference() -> str:
    """Every operation of the catalogue: what it does, its parameters, its notes."""
    from chunkwise import ops

    lines = [
        "# Operations",
        "",
        "Generated from the operations' own registry (`chunkwise.ops.entry`).",
        "In Python an operation is `chunkwise.ops.<name>(...)`; on the command line",
        "it is `--op name:param=value,...` (a per-axis value is written `1/2/2`).",
        "Each says how its chunk-by-chunk result compares with the same operation",
        "on the whole array; see",
        "[How it works](how-it-works.md#why-the-result-is-bit-identical).",
        "",
        "| operation | summary | labels |",
        "| --- | --- | --- |",
    ]
    entries = [ops.entry(name) for name in ops.CATALOGUE]
    for entry in entries:
        lines.append(
            f"| [`{entry.name}`](#{entry.name}) | {_inline(entry.summary)} "
            f"| {_labels(entry)} |"
        )
    for family, intro in ops.FAMILIES.items():
        members = [entry for entry in entries if entry.family == family]
        if not members:
            continue
        lines += ["", f"## {family.capitalize()}", "", intro]
        for entry in members:
            lines += ["", *_operation(entry, ops.CATALOGUE[entry.name])]
    return "\n".join(lines) + "\n"


def _operation(entry: object, cls: type) -> list[str]:
    sections = _sections(cls)
    name = entry.name
    lines = [f"### `{name}` {{#{name}}}", "", *sections[""], ""]
    lines += [f"**Exactness.** {_inline(entry.exactness)}", ""]
    lines += [f"**Labels.** {_labels(entry, long=True)}", ""]
    if entry.parameters:
        lines += [
            "| parameter | kind | default | description |",
            "| --- | --- | --- | --- |",
        ]
        lines += [_parameter_row(p) for p in entry.parameters]
        lines.append("")
    for title in ("Notes", "References", "Examples"):
        body = sections.get(title)
        if body and title == "Examples":
            lines += [f"**{title}**", "", "```python", *body, "```", ""]
        elif body:
            lines += [f"**{title}**", "", *body, ""]
    return lines


def _inline(text: str) -> str:
    """Docstring text in a Markdown table cell or line: ``code`` as `code`."""
    return text.replace("``", "`").replace("|", "\\|")


def _labels(entry: object, long: bool = False) -> str:
    if entry.labels is None:
        return _inline(entry.labels_doc) if long else "depends on the parameters"
    word = entry.labels.value
    if not long:
        return word
    return {
        "keeps": "Keeps them: every output value is one of the input's values.",
        "makes": "Makes them: the output is a mask, whatever the input.",
        "drops": "Drops them: values are blended, so the output is an image.",
    }[word]


def _parameter_row(parameter: object) -> str:
    # Only name and default are sure to stay: the rest is read where it exists.
    default = parameter.default
    shown = "required" if default is inspect.Parameter.empty else f"`{default!r}`"
    kind = getattr(parameter, "kind", "")
    if getattr(parameter, "per_axis", False):
        kind += ", per axis"
    choices = getattr(parameter, "choices", ())
    if choices:
        kind += ": " + ", ".join(f"`{c}`" for c in choices)
    doc = getattr(parameter, "doc", "").replace("|", "\\|")
    return f"| `{parameter.name}` | {kind} | {shown} | {doc} |"


_UNDERLINE = re.compile(r"^-{3,}$")


def _sections(cls: type) -> dict[str, list[str]]:
    """A numpydoc docstring by section title ("" for the text before the first)."""
    lines = (inspect.getdoc(cls) or "").splitlines()
    sections: dict[str, list[str]] = {"": []}
    title = ""
    for index, line in enumerate(lines):
        if _UNDERLINE.match(line):
            continue
        if index + 1 < len(lines) and _UNDERLINE.match(lines[index + 1]):
            title = line.strip()
            sections[title] = []
            continue
        sections[title].append(line)
    if not sections[""]:
        sections[""] = [""]
    return {key: _trim(value) for key, value in sections.items()}


def _trim(lines: list[str]) -> list[str]:
    text = "\n".join(lines).strip("\n")
    return text.splitlines() or [""]


# ----------------------------------------------------------------------- python


def api_reference() -> str:
    """The mkdocstrings directives for every public name, where its code lives.

    ``chunkwise`` loads its names on first use, which static analysis cannot follow:
    each name is documented at the module it comes from.
    """
    import chunkwise
    from chunkwise import ops

    lines = [
        "# Python API",
        "",
        "Generated from the docstrings of `chunkwise.__all__` and of the helpers of",
        "`chunkwise.ops`. Import them from `chunkwise` and `chunkwise.ops` only; the",
        "operations themselves are in the [operations reference](operations.md).",
        "",
        "## `chunkwise`",
    ]
    for name in sorted(chunkwise.__all__, key=str.lower):
        source = chunkwise._SOURCES.get(name)
        if source and name != "ops":
            lines += ["", f"::: {source}.{name}"]
    lines += ["", "## `chunkwise.ops`"]
    for name in sorted(ops.__all__, key=str.lower):
        if name not in ops.CATALOGUE:
            lines += ["", f"::: chunkwise.ops.{name}"]
    return "\n".join(lines) + "\n"
