"""The module layering of ARCHITECTURE.md holds in the tree (scripts/check_layers.py), and
the checker finds each kind of violation in a small tree made for it. Needs no build."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def load_checker():
    spec = importlib.util.spec_from_file_location("check_layers", REPO / "scripts" / "check_layers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


checker = load_checker()


def test_the_tree_follows_architecture_md():
    problems = checker.check(REPO)
    assert problems == [], "\n".join(problems)


# --- the checker on small trees ----------------------------------------------------------

TABLE = """# Architecture of a tiny tree

```layers
module base:
module mid: base
module top: base mid

library fmt     meson=fmt_dep     headers=fmt/            modules=*  public=base
library json    meson=json_dep    headers=nlohmann/       modules=*  public=-
library curl    meson=curl_dep    headers=curl/           modules=mid
library archive meson=archive_dep headers=archive.h       modules=mid
exception archive top   # top reads tars itself today
```
"""

MESON = {
    "base": "base_lib = static_library('base', 'base.cpp', dependencies : [fmt_dep])\n"
            "base_dep = declare_dependency(link_with : base_lib, dependencies : [fmt_dep])\n",
    "mid": "mid_lib = static_library('mid', 'mid.cpp',\n"
           "  dependencies : [base_dep, curl_dep, archive_dep])  # the client\n"
           "mid_dep = declare_dependency(link_with : mid_lib, dependencies : [base_dep])\n",
    "top": "top_lib = static_library('top', 'top.cpp', dependencies : [base_dep, mid_dep, archive_dep, json_dep])\n"
           "top_dep = declare_dependency(link_with : top_lib, dependencies : [mid_dep])\n",
}

SOURCES = {
    "include/aas_bundle/base/base.hpp": '#pragma once\n#include <fmt/format.h>\n#include <string>\n',
    "src/base/base.cpp": '#include "aas_bundle/base/base.hpp"\n',
    "include/aas_bundle/mid/mid.hpp": '#pragma once\n#include "aas_bundle/base/base.hpp"\n',
    "src/mid/mid.cpp": '#include "aas_bundle/mid/mid.hpp"\n#include "http.hpp"\n#include <archive.h>\n',
    "src/mid/http.hpp": '#pragma once\n#include <curl/curl.h>\n',
    "include/aas_bundle/top/top.hpp": '#pragma once\n#include "aas_bundle/mid/mid.hpp"\n',
    "src/top/top.cpp": ('#include "aas_bundle/top/top.hpp"\n#include "aas_bundle/base/base.hpp"\n'
                        '#include <archive.h>\n#include <nlohmann/json.hpp>\n#include <fmt/format.h>\n'
                        '#include <vector>\n#include <unistd.h>\n'),
}


@pytest.fixture
def tree(tmp_path):
    """A tree that follows its table; tests break one rule each."""
    (tmp_path / "ARCHITECTURE.md").write_text(TABLE)
    for module, text in MESON.items():
        (tmp_path / "src" / module).mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / module / "meson.build").write_text(text)
    for rel, text in SOURCES.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return tmp_path


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new))


def test_the_tiny_tree_passes(tree):
    assert checker.check(tree) == []


def test_an_include_against_the_order_is_reported(tree):
    edit(tree / "src/mid/mid.cpp", '#include "http.hpp"\n', '#include "http.hpp"\n#include "aas_bundle/top/top.hpp"\n')
    problems = checker.check(tree)
    assert any(p.startswith("src/mid/mid.cpp:3: mid includes \"aas_bundle/top/top.hpp\": mid may not use top")
               for p in problems), problems


def test_an_include_of_an_unknown_module_is_reported(tree):
    edit(tree / "src/top/top.cpp", "#include <vector>\n", '#include "aas_bundle/other/x.hpp"\n')
    problems = checker.check(tree)
    assert any("src/top/top.cpp:6" in p and "other, which is no module of the table" in p for p in problems), problems


def test_another_modules_private_header_is_reported(tree):
    edit(tree / "src/top/top.cpp", "#include <vector>\n", '#include "../mid/http.hpp"\n')
    problems = checker.check(tree)
    assert any(p.startswith('src/top/top.cpp:6: includes "../mid/http.hpp", which is not a header of src/top/')
               for p in problems), problems


def test_a_third_party_header_outside_its_module_is_reported(tree):
    edit(tree / "src/top/top.cpp", "#include <vector>\n", "#include <curl/curl.h>\n")
    edit(tree / "src/top/meson.build", "json_dep]", "json_dep, curl_dep]")
    problems = checker.check(tree)
    assert any(p.startswith("src/top/top.cpp:6: top includes <curl/curl.h> of curl, which only mid may use")
               for p in problems), problems
    assert any(p.startswith("src/top/meson.build: top declares curl_dep (curl), which it may not use")
               for p in problems), problems


def test_a_library_in_a_public_header_it_may_not_cross_is_reported(tree):
    edit(tree / "include/aas_bundle/mid/mid.hpp", "#pragma once\n", "#pragma once\n#include <nlohmann/json.hpp>\n")
    problems = checker.check(tree)
    assert any(p.startswith("include/aas_bundle/mid/mid.hpp:2: the public header includes <nlohmann/json.hpp>")
               for p in problems), problems


def test_an_include_without_its_meson_dependency_is_reported(tree):
    edit(tree / "src/top/meson.build", "[base_dep, mid_dep,", "[mid_dep,")
    problems = checker.check(tree)
    assert problems == ["src/top/meson.build: top includes base's headers (src/top/top.cpp:2) but does not "
                        "declare base_dep in its target's dependencies"], problems


def test_a_library_header_without_its_meson_dependency_is_reported(tree):
    edit(tree / "src/top/meson.build", ", json_dep]", "]")
    problems = checker.check(tree)
    assert problems == ["src/top/meson.build: top includes <nlohmann/json.hpp> (src/top/top.cpp:4) but does not "
                        "declare json_dep"], problems


def test_a_library_through_a_declared_module_counts_as_declared(tree):
    # fmt comes with base_dep's declare_dependency; without it there, top's <fmt/…> is undeclared.
    assert not any("fmt_dep" in p for p in checker.check(tree))
    edit(tree / "src/base/meson.build", "link_with : base_lib, dependencies : [fmt_dep]", "link_with : base_lib")
    problems = checker.check(tree)
    assert any(p.startswith("src/top/meson.build: top includes <fmt/format.h>") for p in problems), problems


def test_an_unused_dependency_is_reported(tree):
    edit(tree / "src/mid/mid.cpp", "#include <archive.h>\n", "")
    edit(tree / "src/top/meson.build", "json_dep]", "json_dep, top_dep_unused]")
    problems = checker.check(tree)
    assert "src/mid/meson.build: mid declares archive_dep but includes no header of archive: remove it" in problems
    assert any("top_dep_unused, which the table of ARCHITECTURE.md does not know" in p for p in problems), problems


def test_an_unused_module_dependency_is_reported(tree):
    edit(tree / "src/mid/meson.build", "[base_dep, curl_dep", "[base_dep, top_dep, curl_dep")
    problems = checker.check(tree)
    assert "src/mid/meson.build: mid declares top_dep but includes no header of top: remove it" in problems


def test_a_public_include_the_declared_dependency_does_not_carry_is_reported(tree):
    edit(tree / "src/top/meson.build", "link_with : top_lib, dependencies : [mid_dep]", "link_with : top_lib")
    problems = checker.check(tree)
    assert problems == ["src/top/meson.build: top's public header include/aas_bundle/top/top.hpp:2 includes mid, "
                        "but top_dep (declare_dependency) does not carry mid_dep to its users"], problems


def test_a_stale_edge_or_exception_is_reported(tree):
    edit(tree / "src/top/top.cpp", "#include <archive.h>\n", "")
    edit(tree / "src/top/meson.build", "archive_dep, ", "")
    edit(tree / "src/top/top.cpp", '#include "aas_bundle/base/base.hpp"\n', "")
    edit(tree / "src/top/meson.build", "[base_dep, ", "[")
    problems = checker.check(tree)
    assert any(p.startswith("ARCHITECTURE.md:12: exception archive in top is no longer needed") for p in problems), \
        problems
    assert any(p.startswith("ARCHITECTURE.md:6: the table lets top use base, which it no longer does")
               for p in problems), problems


def test_a_module_missing_from_the_table_and_a_cycle_are_reported(tree):
    (tree / "src" / "extra").mkdir()
    edit(tree / "ARCHITECTURE.md", "module base:\n", "module base: mid\n")
    problems = checker.check(tree)
    assert any(p.startswith("src/extra or include/aas_bundle/extra: a module the ```layers table") for p in problems)
    assert any(p.startswith("ARCHITECTURE.md:4: module base may include mid, which is not on an earlier line")
               for p in problems), problems


def test_an_exception_needs_its_comment(tree):
    edit(tree / "ARCHITECTURE.md", "exception archive top   # top reads tars itself today", "exception archive top")
    assert checker.check(tree) == ["ARCHITECTURE.md:12: exception archive top needs a comment saying why"]


def test_the_repository_checker_fails_on_a_new_edge(tmp_path):
    """A copy of this repository's sources with one new include of a higher module fails."""
    for name in ("ARCHITECTURE.md",):
        shutil.copy(REPO / name, tmp_path / name)
    shutil.copytree(REPO / "src", tmp_path / "src")
    shutil.copytree(REPO / "include", tmp_path / "include")
    assert checker.check(tmp_path) == []
    edit(tmp_path / "src/ref/reference.cpp", '#include "aas_bundle/ref/reference.hpp"\n',
         '#include "aas_bundle/ref/reference.hpp"\n#include "aas_bundle/registry/client.hpp"\n')
    problems = checker.check(tmp_path)
    assert any("ref includes \"aas_bundle/registry/client.hpp\": ref may not use registry" in p for p in problems)
    assert any("ref includes registry's headers" in p and "does not declare registry_dep" in p for p in problems)
