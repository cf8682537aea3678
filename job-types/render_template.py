#!/usr/bin/env python3
"""Reference renderer of the job-type Dockerfile templates (the image-builder's rules, executable).

Rules (see job-types/README.md):
- ``{{ name }}`` is replaced by the variable's value (spaces inside the braces optional);
  an unknown name is an error.
- A line holding only ``{% if name %}`` opens a section that ends at a line holding only
  ``{% endif %}``; the section is kept when the variable is a non-empty string, dropped otherwise.
  The marker lines themselves are dropped. Sections do not nest.
The same templates render unchanged with Jinja2 / minijinja.

Usage:
  render_template.py TEMPLATE [--set NAME=VALUE]... [--env KEY=VALUE]... [-o OUT]
``--env`` adds a build environment variable; they become the ``env_lines`` variable.
"""

import argparse
import re
import sys
from typing import Dict, Mapping

VAR_RE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
IF_RE = re.compile(r"^\s*\{%-?\s*if\s+([A-Za-z_][A-Za-z0-9_]*)\s*-?%\}\s*$")
ENDIF_RE = re.compile(r"^\s*\{%-?\s*endif\s*-?%\}\s*$")
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Scalars are inserted verbatim into quoted Dockerfile strings and JSON arrays.
UNSAFE_SCALAR_RE = re.compile(r'["\\$\x00-\x1f\x7f]')
PACKAGE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+:=~_-]*$")


class TemplateError(ValueError):
    pass


def env_lines(env: Mapping[str, str]) -> str:
    """One ``ENV`` instruction with a ``KEY="VALUE"`` pair per line (sorted by key), or "" when
    ``env`` is empty; ``\\``, ``"`` and ``$`` in values are escaped with a backslash."""
    pairs = []
    for key in sorted(env):
        if not ENV_KEY_RE.match(key):
            raise TemplateError(f"invalid build env variable name: {key!r}")
        value = str(env[key])
        if "\n" in value or "\r" in value:
            raise TemplateError(f"build env variable {key} contains a line break")
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
        pairs.append(f'{key}="{escaped}"')
    if not pairs:
        return ""
    return "ENV " + " \\\n    ".join(pairs)


def secret_args(names) -> str:
    """One ``ARG NAME`` line per secret build env variable (values come as build args)."""
    for name in names:
        if not ENV_KEY_RE.match(name):
            raise TemplateError(f"invalid build env variable name: {name!r}")
    return "".join(f"ARG {name}\n" for name in sorted(names))


def check_scalar(name: str, value: str) -> None:
    if name in ("env_lines", "secret_args"):
        return
    if UNSAFE_SCALAR_RE.search(value):
        raise TemplateError(f"variable {name} contains a character that is not allowed (quote, backslash, $ or control)")
    if name == "system_dependencies":
        for package in value.split():
            if not PACKAGE_RE.match(package):
                raise TemplateError(f"invalid system dependency name: {package!r}")


def render(template: str, variables: Mapping[str, str]) -> str:
    out = []
    keep = True
    open_section = None
    for number, line in enumerate(template.splitlines(keepends=True), start=1):
        opened = IF_RE.match(line)
        if opened:
            if open_section is not None:
                raise TemplateError(f"line {number}: nested {{% if %}} is not supported")
            name = opened.group(1)
            if name not in variables:
                raise TemplateError(f"line {number}: unknown variable {name}")
            open_section = name
            keep = bool(variables[name])
            continue
        if ENDIF_RE.match(line):
            if open_section is None:
                raise TemplateError(f"line {number}: {{% endif %}} without {{% if %}}")
            open_section, keep = None, True
            continue
        if "{%" in line:
            raise TemplateError(f"line {number}: unsupported template statement: {line.strip()}")
        if not keep:
            continue

        def substitute(match):
            name = match.group(1)
            if name not in variables:
                raise TemplateError(f"line {number}: unknown variable {name}")
            return str(variables[name])

        out.append(VAR_RE.sub(substitute, line))
    if open_section is not None:
        raise TemplateError(f"{{% if {open_section} %}} is not closed")
    return "".join(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("template")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-o", "--output")
    args = parser.parse_args(argv)
    variables: Dict[str, str] = {}
    for item in args.set:
        name, _, value = item.partition("=")
        variables[name] = value
    env = {}
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    try:
        variables.setdefault("env_lines", env_lines(env))
        variables.setdefault("secret_args", "")
        for name, value in variables.items():
            check_scalar(name, value)
        with open(args.template) as f:
            text = render(f.read(), variables)
    except (TemplateError, OSError) as e:
        print(f"render_template: {e}", file=sys.stderr)
        return 1
    if args.output:
        with open(args.output, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
