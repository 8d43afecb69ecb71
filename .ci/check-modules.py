#!/usr/bin/env python3
"""Checks the Rust crates' shape: no module imports a module that imports it back (directly or round a
longer loop), no folder imports a sibling folder that imports it back, and no source file is over 500
lines. Prints each offence and exits 1 if there is one.

A module "imports" another when its file names it in a path (`use crate::a::b`, `crate::a::b::f()`,
`super::x`, `self::x`); a path is resolved to the deepest module that exists. `mod x;` declarations
are not imports. The binary's modules (src/main.rs and src/cli/) form their own tree. Test code (from
the first `#[cfg(test)]` of a file on) is not counted.

Folders: each import between two modules is also an import between the children of their deepest
common parent that hold them (`crate::relay::serve` using `crate::transport::host` is `relay` using
`transport`; `transport::sse::table` using `transport::host` is `sse` using `host`). Those edges
must not form a circle either, at any level, so two folders never depend on each other even when no
two files do. A parent importing its own child (or the reverse) is not a sibling edge and is left to
the file check."""
import os, re, sys

ROOTS = {"src-server/src": "lectern", "src-server/protocol/src": "lectern_protocol", "src-tauri/src": "lectern_app"}
MAX_LINES = 500

def modules(root):
    mods = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            if not f.endswith(".rs"):
                continue
            path = os.path.join(dirpath, f)
            rel = os.path.relpath(path, root)[:-3].split(os.sep)
            if rel in (["lib"], ["main"]):
                rel = []
            elif rel[-1] == "mod":
                rel = rel[:-1]
            if rel[:1] == ["cli"]:
                continue  # binary modules, included by #[path] from main.rs
            mods[tuple(rel)] = path
    return mods

def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text)

def imports(mod, text, known):
    out = set()
    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+)", text):
        head, rest = m.group(1), m.group(2).split("::")[1:]
        if head == "crate":
            base = []
        elif head == "super":
            base = list(mod[:-1])
        else:
            base = list(mod)
        path = base + rest
        while tuple(path) not in known and path:
            path.pop()
        target = tuple(path)
        if target != mod:
            out.add(target)
    return out

def sccs(graph):
    index, low, stack, on, result, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                result.append(comp)
    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            visit(v)
    return result

def folders(graph):
    """The import graph between sibling modules: for each import a -> b, the children of their
    deepest common parent that hold a and b."""
    edges = {}
    for a, targets in graph.items():
        for b in targets:
            i = 0
            while i < len(a) and i < len(b) and a[i] == b[i]:
                i += 1
            if i >= len(a) or i >= len(b):
                continue  # one holds the other
            edges.setdefault(a[: i + 1], set()).add(b[: i + 1])
    return edges

bad = 0
for root, crate in ROOTS.items():
    mods = modules(root)
    graph = {}
    for mod, path in mods.items():
        text = open(path, encoding="utf-8").read()
        lines = text.count("\n")
        if lines > MAX_LINES:
            print(f"{path}: {lines} lines (over {MAX_LINES}): split it")
            bad += 1
        body = strip(text.split("#[cfg(test)]")[0])
        graph[mod] = imports(mod, body, mods)
    for comp in sccs(graph):
        names = sorted("::".join((crate,) + m) for m in comp)
        print(f"{crate}: modules import each other in a circle: {', '.join(names)}")
        bad += 1
    sibling = folders(graph)
    for comp in sccs(sibling):
        names = sorted("::".join((crate,) + m) for m in comp)
        print(f"{crate}: folders import each other in a circle: {', '.join(names)}")
        for a in sorted(comp):
            for b in sorted(sibling.get(a, ())):
                if b in comp:
                    why = sorted("::".join(x) + " -> " + "::".join(y) for x, ys in graph.items() for y in ys
                                 if x[: len(a)] == a and y[: len(b)] == b)
                    print(f"    {'::'.join(a)} -> {'::'.join(b)}: {why[0]}" + (f" (and {len(why) - 1} more)" if len(why) > 1 else ""))
        bad += 1
print("module check: " + ("ok" if bad == 0 else f"{bad} problem(s)"))
sys.exit(1 if bad else 0)
