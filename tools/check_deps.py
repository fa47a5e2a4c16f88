#!/usr/bin/env python3
"""Dependency check of src/ from the symbols of the library's objects (nm).

A function defined in one object and called from another makes an edge between their folders
(src/<folder>/) and, inside one folder, between their files. The check fails (exit 1) when the
folder graph or the file graph of any folder has a cycle, and prints the edges of each cycle.

Usage: check_deps.py OBJDIR   (OBJDIR: a build folder or its libhipmace.*.p, objects src_<folder>_<file>.c.o)
       check_deps.py OBJDIR --graph     (also prints the folder graph)
       check_deps.py OBJDIR --folders   (only the folder graph fails the check; file circles are listed)
"""
import os
import re
import subprocess
import sys


def symbols(path):
    out = subprocess.run(["nm", "-P", path], check=True, capture_output=True, text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind in "TDRBCVW":
            defined.add(name)
        elif kind == "U":
            used.add(name)
    return defined, used


def sccs(nodes, edges):
    """Tarjan's strongly connected components of the graph nodes -> edges[node]."""
    index, low, onstack, stack, comps, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        onstack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in onstack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                onstack.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return [c for c in comps if len(c) > 1]


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip())
        return 2
    objdir = sys.argv[1]
    if not os.path.basename(os.path.normpath(objdir)).endswith(".p"):  # a build folder: its library's objects
        cands = sorted(d for d in os.listdir(objdir) if d.startswith("libhipmace") and d.endswith(".p"))
        objdir = os.path.join(objdir, cands[0]) if cands else objdir
    pat = re.compile(r"^src_([a-z0-9]+)_(.+)\.c\.o$")
    objs = {}
    for f in sorted(os.listdir(objdir)):
        m = pat.match(f)
        if m:
            objs[(m.group(1), m.group(2))] = symbols(os.path.join(objdir, f))
    if not objs:
        print(f"check_deps: no src_*.c.o objects in {objdir}")
        return 2
    owner = {}
    for key, (defined, _) in objs.items():
        for s in defined:
            owner[s] = key
    fedges, why = {}, {}
    ffiles = {}
    for key, (_, used) in objs.items():
        for s in used:
            o = owner.get(s)
            if o is None or o == key:
                continue
            if o[0] != key[0]:
                fedges.setdefault(key[0], set()).add(o[0])
                why.setdefault((key[0], o[0]), []).append(f"{key[0]}/{key[1]}.c -> {s}")
            else:
                ffiles.setdefault(key[0], {}).setdefault(key[1], set()).add(o[1])
                why.setdefault((key[0] + "/" + key[1], key[0] + "/" + o[1]), []).append(s)
    bad = 0
    folders = {k[0] for k in objs}
    if "--graph" in sys.argv:
        for f in sorted(folders):
            print(f"{f}: {' '.join(sorted(fedges.get(f, ())))}")
    for comp in sccs(folders, fedges):
        bad += 1
        print("cycle between folders of src/: " + " ".join(comp))
        for a in comp:
            for b in sorted(fedges.get(a, ())):
                if b in comp:
                    print(f"  {a} -> {b}: " + ", ".join(sorted(why[(a, b)])[:4]))
    for folder in sorted(ffiles):
        files = {k[1] for k in objs if k[0] == folder}
        for comp in sccs(files, ffiles[folder]):
            bad += 0 if "--folders" in sys.argv else 1
            print(f"circle between files of src/{folder}: " + " ".join(c + ".c" for c in comp))
            for a in comp:
                for b in sorted(ffiles[folder].get(a, ())):
                    if b in comp:
                        print(f"  {a}.c -> {b}.c: " + ", ".join(sorted(why[(folder + '/' + a, folder + '/' + b)])[:4]))
    nfiles = len(objs)
    print(f"check_deps: {len(folders)} folders, {nfiles} files, {bad} cycle(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
