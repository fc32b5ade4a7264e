#!/usr/bin/env python3
"""The module graph of a crate, from the paths its code names; exits 1 on a cycle.

    scripts/module-graph.py npu-runtime/src npu-build/src ...

For each crate source folder: the top-level modules (the `mod` items of lib.rs) and, inside
each folder module, its submodules. An edge A -> B means code in A (outside comments) names
`crate::B` (top level) or `super::B` / `crate::A::B` (inside folder A). Doc links are comments
and do not count; `#[cfg(test)]` code does count (a test module is still code of its file).
Prints one line per module with what it uses, in dependency order when there is no cycle.
"""
import re
import sys
from pathlib import Path

MOD = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+([a-z_][a-z0-9_]*)\s*;", re.M)


def code(path):
    """The file's text without comments (line comments and block comments)."""
    text = path.read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def files_of(root, name):
    """The source files of module `name` under folder `root`."""
    single = root / f"{name}.rs"
    if single.exists():
        return [single]
    folder = root / name
    return sorted(folder.rglob("*.rs")) if folder.is_dir() else []


def submodules(entry):
    return MOD.findall(code(entry)) if entry.exists() else []


def flatten(text, prefix):
    """`prefix::{a, b::c}` groups written out as `prefix::a prefix::b::c` (one level deep)."""
    group = re.compile(rf"({prefix})::\{{([^{{}}]*)\}}")
    return group.sub(lambda g: " ".join(f"{g[1]}::{i.strip()}" for i in g[2].split(",")), text)


def graph(root, entry, refs, prefix=r"crate"):
    """Edges between the modules declared in `entry`, found by the regexes `refs(name)`."""
    names = submodules(entry)
    edges = {}
    for n in names:
        text = flatten("\n".join(code(f) for f in files_of(root, n)), prefix)
        edges[n] = sorted(m for m in names if m != n and refs(m).search(text))
    return edges


def cycle(edges):
    """A cycle as a list of modules, or None."""
    state = {}

    def visit(n, stack):
        state[n] = 1
        stack.append(n)
        for m in edges[n]:
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = visit(m, stack)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in edges:
        if n not in state:
            found = visit(n, [])
            if found:
                return found
    return None


def order(edges):
    """Modules with their dependencies first (Kahn's algorithm, ties by name)."""
    done, out = set(), []
    while len(out) < len(edges):
        ready = sorted(n for n in edges if n not in done and set(edges[n]) <= done)
        if not ready:
            return sorted(edges)
        out.append(ready[0])
        done.add(ready[0])
    return out


def report(title, edges):
    found = cycle(edges)
    print(f"{title}:")
    for n in order(edges):
        print(f"  {n} -> {', '.join(edges[n]) or '(none)'}")
    if found:
        print(f"  CYCLE: {' -> '.join(found)}")
    return found is None


def main(roots):
    ok = True
    for r in map(Path, roots):
        top = graph(r, r / "lib.rs", lambda m: re.compile(rf"\bcrate::{m}\b"))
        ok &= report(str(r), top)
        for n in top:
            folder = r / n
            if folder.is_dir() and (folder / "mod.rs").exists():
                inner = graph(
                    folder,
                    folder / "mod.rs",
                    lambda m, n=n: re.compile(rf"\b(?:super::{m}|crate::{n}::{m})\b"),
                    rf"super|crate::{n}",
                )
                if inner:
                    ok &= report(f"{r}/{n}", inner)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["npu-runtime/src", "npu-build/src"]))
