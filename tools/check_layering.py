#!/usr/bin/env python3
"""Fails when a source file includes a header from a layer its library may not use.

The layers are the libraries that source/**/CMakeLists.txt declare with
`phoenix_library(<folder> DEPS <folders> ...)`: a file in <folder> may include headers of
<folder> itself and of everything its DEPS reach, transitively. On top of that, a few edges
are forbidden outright (FORBIDDEN below), so nobody "fixes" a violation by adding a DEPS
entry that turns the layering upside down.

Usage: tools/check_layering.py [--root DIR]    exit 0: clean; 1: violations (listed)
       tools/check_layering.py --self-test     proves that a forbidden include is caught
"""

import argparse
import os
import re
import shutil
import sys
import tempfile

# (from, to): a library under `from` may never include one under `to`. Prefix match on
# folder names, so "filters" covers every filter.
FORBIDDEN = [
    ("common", "network"), ("common", "http"), ("common", "matchers"), ("common", "router"),
    ("common", "upstream"), ("common", "filters"), ("common", "config"), ("common", "server"),
    ("network", "http"), ("http", "router"), ("http", "upstream"), ("http", "filters"),
    ("http", "server"), ("http", "config"), ("upstream", "router"), ("upstream", "filters"),
    ("upstream", "server"), ("filters", "router"), ("filters", "server"),
    ("matchers", "router"), ("matchers", "filters"), ("router", "filters"), ("router", "server"),
    ("config", "server"), ("config", "filters"),  # Filters are found through their registry.
    # TLS is found through the transport socket registry. (It reaches http/ only through the
    # matchers it checks SANs with.)
    ("config", "tls"), ("network", "tls"), ("http", "tls"), ("upstream", "tls"),
    ("router", "tls"), ("filters", "tls"), ("tls", "router"),
    ("tls", "upstream"), ("tls", "filters"), ("tls", "config"), ("tls", "server"),
    ("common", "tls"),
    # The control plane is a binary of its own on top of everything; the proxy's layers never
    # reach into it.
    ("common", "control_plane"), ("network", "control_plane"), ("http", "control_plane"),
    ("matchers", "control_plane"), ("upstream", "control_plane"), ("router", "control_plane"),
    ("filters", "control_plane"), ("tls", "control_plane"), ("config", "control_plane"),
    ("server", "control_plane"),
    # phoenixctl talks gRPC to phoenix-cp and links api/ only: no proxy layer, not the control
    # plane's code, and nothing of the proxy or control plane reaches into it.
    ("cli", "common"), ("cli", "network"), ("cli", "http"), ("cli", "matchers"),
    ("cli", "router"), ("cli", "upstream"), ("cli", "filters"), ("cli", "tls"),
    ("cli", "config"), ("cli", "server"), ("cli", "control_plane"),
    ("common", "cli"), ("network", "cli"), ("http", "cli"), ("matchers", "cli"),
    ("upstream", "cli"), ("router", "cli"), ("filters", "cli"), ("tls", "cli"),
    ("config", "cli"), ("server", "cli"), ("control_plane", "cli"),
]

LIBRARY_RE = re.compile(r"phoenix_library\(\s*([\w/]+)((?:\s|[^)])*)\)", re.S)
INCLUDE_RE = re.compile(r'^\s*#\s*include\s+"source/([^"]+)"', re.M)


def read_libraries(root):
    """{folder: set of direct dependency folders} from every phoenix_library() call."""
    libraries = {}
    for dirpath, _, files in os.walk(os.path.join(root, "source")):
        if "CMakeLists.txt" not in files:
            continue
        with open(os.path.join(dirpath, "CMakeLists.txt")) as f:
            text = f.read()
        for match in LIBRARY_RE.finditer(text):
            folder, rest = match.group(1), match.group(2)
            deps = set()
            section = None
            for word in rest.split():
                if word in ("DEPS", "LIBS"):
                    section = word
                elif section == "DEPS":
                    deps.add(word)
            libraries[folder] = deps
    return libraries


def closure(libraries, folder):
    seen, stack = set(), [folder]
    while stack:
        for dep in libraries.get(stack.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                stack.append(dep)
    return seen


def owner(libraries, relative_path):
    """The library folder that holds source/<relative_path> (longest folder prefix)."""
    best = None
    for folder in libraries:
        if relative_path.startswith(folder + "/") and (best is None or len(folder) > len(best)):
            best = folder
    return best


def forbidden(src, dst):
    return any((src == a or src.startswith(a + "/")) and (dst == b or dst.startswith(b + "/"))
               for a, b in FORBIDDEN)


def check(root):
    libraries = read_libraries(root)
    if not libraries:
        return [f"{root}: no phoenix_library() declarations found under source/"]
    allowed = {folder: closure(libraries, folder) | {folder} for folder in libraries}
    problems = []
    for a, deps in sorted(libraries.items()):
        for b in sorted(closure(libraries, a)):
            if forbidden(a, b):
                problems.append(f"source/{a}/CMakeLists.txt: '{a}' may not depend on '{b}'")
    source_root = os.path.join(root, "source")
    for dirpath, _, files in os.walk(source_root):
        for name in sorted(files):
            if not name.endswith((".h", ".cc")):
                continue
            path = os.path.join(dirpath, name)
            relative = os.path.relpath(path, source_root)
            src = owner(libraries, relative)
            if src is None:
                if not relative.startswith("exe/"):
                    problems.append(f"source/{relative}: in no phoenix_library() folder")
                continue
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for match in INCLUDE_RE.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                dst = owner(libraries, match.group(1))
                if dst is None:
                    continue  # exe/ or a file that does not exist: the compiler says so.
                if forbidden(src, dst) or dst not in allowed[src]:
                    problems.append(
                        f"source/{relative}:{line}: '{src}' may not include "
                        f"source/{match.group(1)} (layer '{dst}'); it may use: "
                        f"{', '.join(sorted(allowed[src]))}")
    return problems


def self_test(root):
    """Copies source/ aside, adds an http -> router include, and expects a failure."""
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(os.path.join(root, "source"), os.path.join(scratch, "source"))
        clean = check(scratch)
        if clean:
            print("self-test: the tree is not clean to begin with:", *clean, sep="\n  ")
            return 1
        victim = os.path.join(scratch, "source", "http", "codec.h")
        with open(victim, "a") as f:
            f.write('\n#include "source/router/route_table.h"\n')
        found = check(scratch)
        if not any("source/http/codec.h" in p and "router" in p for p in found):
            print("self-test: a forbidden http -> router include was NOT caught")
            return 1
        print("self-test: forbidden include caught:", found[0])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=os.path.join(os.path.dirname(__file__), ".."))
    parser.add_argument("--self-test", action="store_true")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    if args.self_test:
        return self_test(root)
    problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"layering: {len(problems)} violation(s)")
        return 1
    print("layering: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())
