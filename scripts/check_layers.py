#!/usr/bin/env python3
"""Checks the module layering of aas-bundle against the table in ARCHITECTURE.md.

    scripts/check_layers.py [ROOT]      prints every violation; exit 1 when there is one

The table is the fenced block of ARCHITECTURE.md whose info string is `layers`. Lines
(a `#` starts a comment):

    module NAME: DEP DEP ...        NAME may include the headers of the modules DEP (each
                                    listed on an earlier `module` line: the order is the
                                    layering, and it has no cycle)
    library NAME meson=VAR headers=H,H modules=M,M|*|- [public=M,M|-]
                                    a third-party library: its meson dependency variable,
                                    the headers that are its own (`curl/` is a folder,
                                    `zstd.h` one file; `-` none), the modules that may use
                                    it (`*` every module, `-` none) and those whose public
                                    headers (include/aas_bundle/M/) may include it
                                    (default: the same modules)
    exception LIBRARY MODULE        MODULE uses LIBRARY today although it is not its owner
                                    (the comment on the line says why and how it goes)

For module M the sources are src/M/** and include/aas_bundle/M/**, and its meson target
is the static_library (or executable) of src/M/meson.build. Violations:

  - an `#include "aas_bundle/X/..."` of a module X that M may not include;
  - a quoted include that is neither aas_bundle/... nor a file of M's own src folder
    (another module's private header) nor the generated aas_bundle_version.hpp;
  - a third-party header in a module that may not use the library (or in a public header
    where the library may not appear);
  - M includes X's headers, or a library's, without X_dep (the library's VAR) in its
    target's `dependencies:`/`link_with:` (a library may also come through the
    declare_dependency of a module M declares, as fmt comes with util_dep);
  - a module or library in M's target's dependencies that M never includes;
  - a public header of M includes X but M's declare_dependency does not carry X;
  - a table edge, or an exception, that the code no longer uses (the table must stay
    true to the code: remove it);
  - a folder under src/ or include/aas_bundle/ that the table does not list.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

SOURCE_SUFFIXES = {".cpp", ".hpp", ".h", ".cc", ".hh"}
GENERATED_HEADERS = {"aas_bundle_version.hpp"}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)


@dataclass
class Library:
    name: str
    meson: str
    headers: list[str]
    modules: set[str] | None  # None: every module
    public: set[str] | None   # None: every module that may use it
    line: int


@dataclass
class Table:
    modules: dict[str, list[str]] = field(default_factory=dict)  # in order
    module_lines: dict[str, int] = field(default_factory=dict)
    libraries: dict[str, Library] = field(default_factory=dict)
    exceptions: dict[tuple[str, str], int] = field(default_factory=dict)  # (library, module) -> line
    problems: list[str] = field(default_factory=list)

    def may_use(self, lib: Library, module: str) -> bool:
        return lib.modules is None or module in lib.modules or (lib.name, module) in self.exceptions

    def may_expose(self, lib: Library, module: str) -> bool:
        if lib.public is None:
            return self.may_use(lib, module)
        return module in lib.public


def _names(text: str) -> set[str] | None:
    if text == "*":
        return None
    if text in ("", "-"):
        return set()
    return {t for t in text.split(",") if t}


def parse_table(architecture: Path) -> Table:
    """The `layers` block of ARCHITECTURE.md; problems of the table itself are in .problems."""
    t = Table()
    where = architecture.name
    try:
        text = architecture.read_text()
    except OSError as e:
        t.problems.append(f"{where}: cannot be read: {e}")
        return t
    lines = text.splitlines()
    start = next((i for i, l in enumerate(lines) if re.match(r"^```\s*layers\s*$", l)), None)
    if start is None:
        t.problems.append(f"{where}: no ```layers block")
        return t
    for i in range(start + 1, len(lines)):
        raw = lines[i]
        n = i + 1
        if raw.startswith("```"):
            break
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind = words[0]
        if kind == "module" and len(words) >= 2 and words[1].endswith(":"):
            name = words[1][:-1]
            deps = words[2:]
            if name in t.modules:
                t.problems.append(f"{where}:{n}: module {name} listed twice")
            for d in deps:
                if d not in t.modules:
                    t.problems.append(f"{where}:{n}: module {name} may include {d}, which is not on an "
                                      "earlier line (the order is the layering; no cycles)")
            t.modules[name] = deps
            t.module_lines[name] = n
        elif kind == "library" and len(words) >= 2:
            opts = dict(w.split("=", 1) for w in words[2:] if "=" in w)
            if "meson" not in opts or "headers" not in opts or "modules" not in opts:
                t.problems.append(f"{where}:{n}: library {words[1]} needs meson=, headers= and modules=")
                continue
            headers = [] if opts["headers"] == "-" else [h for h in opts["headers"].split(",") if h]
            t.libraries[words[1]] = Library(words[1], opts["meson"], headers, _names(opts["modules"]),
                                            _names(opts["public"]) if "public" in opts else None, n)
        elif kind == "exception" and len(words) == 3:
            if "#" not in raw:
                t.problems.append(f"{where}:{n}: exception {words[1]} {words[2]} needs a comment saying why")
            t.exceptions[(words[1], words[2])] = n
        else:
            t.problems.append(f"{where}:{n}: cannot read {raw.strip()!r}")
    else:
        t.problems.append(f"{where}: the ```layers block is not closed")
    for lib, mod in t.exceptions:
        n = t.exceptions[(lib, mod)]
        if lib not in t.libraries:
            t.problems.append(f"{where}:{n}: exception for an unknown library {lib}")
        if mod not in t.modules:
            t.problems.append(f"{where}:{n}: exception for an unknown module {mod}")
    return t


# --- meson --------------------------------------------------------------------------------

def _strip_meson_comments(text: str) -> str:
    out = []
    for line in text.splitlines():
        quoted = False
        for i, c in enumerate(line):
            if c == "'":
                quoted = not quoted
            elif c == "#" and not quoted:
                line = line[:i]
                break
        out.append(line)
    return "\n".join(out)


def _calls(text: str, func: str) -> list[str]:
    """The argument text of every call `func(...)` (parentheses balanced)."""
    out = []
    for m in re.finditer(r"\b" + func + r"\s*\(", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            i += 1
        out.append(text[m.end():i - 1])
    return out


def _keyword(args: str, key: str) -> list[str]:
    """The identifiers given to `key :` in a call's arguments (a list or one name)."""
    m = re.search(r"\b" + key + r"\s*:\s*", args)
    if not m:
        return []
    rest = args[m.end():]
    if rest.startswith("["):
        depth, i = 1, 1
        while i < len(rest) and depth:
            depth += {"[": 1, "]": -1}.get(rest[i], 0)
            i += 1
        value = rest[1:i - 1]
    else:
        value = re.match(r"[^,]*", rest).group(0)
    return re.findall(r"\b[A-Za-z_][A-Za-z0-9_]*\b", value)


@dataclass
class MesonModule:
    target_deps: list[str]   # dependencies: and link_with: of the static_library / executable
    exported: list[str]      # dependencies: of its declare_dependency
    found: bool


def parse_meson(path: Path) -> MesonModule:
    try:
        text = _strip_meson_comments(path.read_text())
    except OSError:
        return MesonModule([], [], False)
    targets = _calls(text, "static_library") + _calls(text, "executable")
    deps: list[str] = []
    for args in targets:
        deps += _keyword(args, "dependencies") + _keyword(args, "link_with")
    exported: list[str] = []
    for args in _calls(text, "declare_dependency"):
        exported += _keyword(args, "dependencies")
    return MesonModule(deps, exported, bool(targets))


# --- sources ------------------------------------------------------------------------------

@dataclass
class Include:
    file: str
    line: int
    quoted: bool
    target: str
    public: bool  # in include/aas_bundle/M/


def module_sources(root: Path, module: str) -> list[tuple[Path, bool]]:
    out = []
    for base, public in ((root / "src" / module, False), (root / "include" / "aas_bundle" / module, True)):
        if base.is_dir():
            out += [(p, public) for p in sorted(base.rglob("*")) if p.is_file() and p.suffix in SOURCE_SUFFIXES]
    return out


def includes_of(root: Path, module: str) -> list[Include]:
    out = []
    for path, public in module_sources(root, module):
        text = path.read_text(errors="replace")
        for m in INCLUDE_RE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            out.append(Include(str(path.relative_to(root)), line, m.group(1) == '"', m.group(2), public))
    return out


def _library_of(header: str, libraries: dict[str, Library]) -> Library | None:
    for lib in libraries.values():
        for h in lib.headers:
            if header == h or (h.endswith("/") and header.startswith(h)):
                return lib
    return None


def check(root: Path) -> list[str]:
    """Every violation of the layering in the tree at `root`, as "where: what" lines."""
    root = Path(root)
    t = parse_table(root / "ARCHITECTURE.md")
    problems = list(t.problems)
    if not t.modules:
        return problems or ["ARCHITECTURE.md: the ```layers block lists no module"]

    folders = {p.name for p in (root / "src").iterdir() if p.is_dir()} if (root / "src").is_dir() else set()
    inc_root = root / "include" / "aas_bundle"
    folders |= {p.name for p in inc_root.iterdir() if p.is_dir()} if inc_root.is_dir() else set()
    for f in sorted(folders - set(t.modules)):
        problems.append(f"src/{f} or include/aas_bundle/{f}: a module the ```layers table of ARCHITECTURE.md "
                        "does not list")

    by_meson = {lib.meson: lib for lib in t.libraries.values()}
    meson = {m: parse_meson(root / "src" / m / "meson.build") for m in t.modules}

    def module_of_var(var: str) -> str | None:
        for suffix in ("_dep", "_lib"):
            if var.endswith(suffix) and var[: -len(suffix)] in t.modules:
                return var[: -len(suffix)]
        return None

    def exports_closure(module: str) -> tuple[set[str], set[str]]:
        """Modules and libraries a user of module_dep gets (module_dep's own included)."""
        mods, libs, todo = {module}, set(), [module]
        while todo:
            for var in meson[todo.pop()].exported:
                m = module_of_var(var)
                if m and m not in mods:
                    mods.add(m)
                    todo.append(m)
                elif var in by_meson:
                    libs.add(by_meson[var].name)
        return mods, libs

    used_exceptions: set[tuple[str, str]] = set()
    for module, allowed in t.modules.items():
        mm = meson[module]
        where_meson = f"src/{module}/meson.build"
        if not mm.found:
            if (root / "src" / module).is_dir():
                problems.append(f"{where_meson}: no static_library or executable found")
            continue
        own_files = {p.name for p in (root / "src" / module).glob("*") if p.is_file()}
        used_modules: dict[str, Include] = {}
        used_libs: dict[str, Include] = {}
        public_modules: dict[str, Include] = {}
        for inc in includes_of(root, module):
            at = f"{inc.file}:{inc.line}"
            if inc.quoted:
                m = re.match(r"aas_bundle/([^/]+)/", inc.target)
                if m:
                    dep = m.group(1)
                    if dep == module:
                        continue
                    if dep not in t.modules:
                        problems.append(f'{at}: includes "{inc.target}" of {dep}, which is no module of the table')
                    elif dep not in allowed:
                        problems.append(f'{at}: {module} includes "{inc.target}": {module} may not use {dep} '
                                        f"(ARCHITECTURE.md allows: {' '.join(allowed) or 'nothing'})")
                    used_modules.setdefault(dep, inc)
                    if inc.public:
                        public_modules.setdefault(dep, inc)
                elif inc.target in GENERATED_HEADERS:
                    continue
                elif "/" in inc.target or inc.target not in own_files:
                    problems.append(f'{at}: includes "{inc.target}", which is not a header of src/{module}/ '
                                    "(another module's private header?): include its public header instead")
                continue
            lib = _library_of(inc.target, t.libraries)
            if lib is None:
                continue  # the standard library, POSIX and Linux headers
            used_libs.setdefault(lib.name, inc)
            if not t.may_use(lib, module):
                owners = "every module" if lib.modules is None else (" ".join(sorted(lib.modules)) or "no module")
                problems.append(f"{at}: {module} includes <{inc.target}> of {lib.name}, which only {owners} may use "
                                "(ARCHITECTURE.md)")
            elif inc.public and not t.may_expose(lib, module):
                problems.append(f"{at}: the public header includes <{inc.target}>: {lib.name} may not appear in "
                                f"{module}'s public headers")
            if (lib.name, module) in t.exceptions:
                used_exceptions.add((lib.name, module))

        declared_modules: set[str] = set()
        declared_libs: set[str] = set()
        through: set[str] = set()  # libraries that come with a declared module's dependency
        for var in mm.target_deps:
            m = module_of_var(var)
            if m == module:
                continue
            if m:
                declared_modules.add(m)
                through |= exports_closure(m)[1]
            elif var in by_meson:
                declared_libs.add(by_meson[var].name)
            else:
                problems.append(f"{where_meson}: {module}'s target depends on {var}, which the table of "
                                "ARCHITECTURE.md does not know (add its library line)")

        for dep, inc in sorted(used_modules.items()):
            if dep in t.modules and dep not in declared_modules:
                problems.append(f"{where_meson}: {module} includes {dep}'s headers ({inc.file}:{inc.line}) but does "
                                f"not declare {dep}_dep in its target's dependencies")
        for dep in sorted(declared_modules - set(used_modules)):
            problems.append(f"{where_meson}: {module} declares {dep}_dep but includes no header of {dep}: "
                            "remove it")
        for name, inc in sorted(used_libs.items()):
            lib = t.libraries[name]
            if name not in declared_libs and name not in through:
                problems.append(f"{where_meson}: {module} includes <{inc.target}> ({inc.file}:{inc.line}) but does "
                                f"not declare {lib.meson}")
        for name in sorted(declared_libs):
            lib = t.libraries[name]
            if not t.may_use(lib, module):
                problems.append(f"{where_meson}: {module} declares {lib.meson} ({name}), which it may not use "
                                "(ARCHITECTURE.md)")
            elif lib.headers and name not in used_libs:
                problems.append(f"{where_meson}: {module} declares {lib.meson} but includes no header of {name}: "
                                "remove it")
        carried = exports_closure(module)[0]
        for dep, inc in sorted(public_modules.items()):
            if dep in t.modules and dep not in carried:
                problems.append(f"{where_meson}: {module}'s public header {inc.file}:{inc.line} includes {dep}, but "
                                f"{module}_dep (declare_dependency) does not carry {dep}_dep to its users")
        for dep in allowed:
            if dep not in used_modules:
                problems.append(f"ARCHITECTURE.md:{t.module_lines[module]}: the table lets {module} use {dep}, "
                                "which it no longer does: remove the edge (the table must stay true)")

    for key, n in sorted(t.exceptions.items()):
        if key not in used_exceptions and key[1] in t.modules:
            problems.append(f"ARCHITECTURE.md:{n}: exception {key[0]} in {key[1]} is no longer needed: remove it")
    return problems


def main(argv: list[str]) -> int:
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1]
    problems = check(root)
    for p in problems:
        print(p)
    if problems:
        print(f"{len(problems)} layering problem(s); the rules are in ARCHITECTURE.md")
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
