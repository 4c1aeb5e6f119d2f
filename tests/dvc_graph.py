"""What a stage script reads, derived from its code, against what its dvc.yaml stage declares.

- code: the stage script, stages/_common.py, and every chimera module it imports, transitively (imports inside
  functions count: they run);
- params: every `params("section")[key]` / `.get(key)` read (a section used whole must be declared whole);
- paths: every literal path under data/, models/, metrics/, plots/, dvclive/ the script names.
A declared dep covers a file under it (a folder dep covers its files), a declared params key covers its
sub-keys; a key read through a computed subscript (`p["runs"][name]`) is covered by any declared key under it.
A package `__init__.py` that holds only a docstring and constants is not code a stage depends on. Stages come from DVC's own resolved index, so foreach/matrix items are checked one by one.
"""

from __future__ import annotations

import ast
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATH_ROOTS = ("data/", "models/", "metrics/", "plots/", "dvclive/")


@dataclass
class Reads:
    code: set[str] = field(default_factory=set)      # repo-relative .py files
    params: set[str] = field(default_factory=set)    # dotted keys
    paths: set[str] = field(default_factory=set)     # literal paths (or literal prefixes of f-strings)


def _module_file(module: str) -> Path | None:
    base = ROOT / Path(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}  # `from chimera.x import module`
    return names


def _trivial_init(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and all(
        isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) or
        isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) for n in body)


def code_closure(script: Path) -> set[str]:
    """The script, _common.py when used, and every chimera module reached by imports."""
    seen: set[Path] = set()
    todo = [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in _imports(ast.parse(path.read_text())):
            if name == "_common":
                todo.append(ROOT / "stages" / "_common.py")
            elif name.split(".")[0] == "chimera":
                parts = name.split(".")
                for i in range(1, len(parts) + 1):  # a package's __init__ runs on the way down
                    found = _module_file(".".join(parts[:i]))
                    if found:
                        todo.append(found)
    return {str(p.relative_to(ROOT)) for p in seen if not _trivial_init(p)}


def _params_call(node: ast.AST) -> str | None:
    """'' for params(), 'section' for params("section"), None for anything else."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "params":
        if not node.args:
            return ""
        if isinstance(node.args[0], ast.Constant):
            return str(node.args[0].value)
    return None


def _key_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
        return str(node.slice.value)
    return None


def params_read(tree: ast.AST) -> set[str]:
    """Dotted params keys the script reads."""
    bound: dict[str, str] = {}
    for node in ast.walk(tree):  # p = params("x"); p, q = params("x"), params("y")
        if isinstance(node, ast.Assign):
            targets, values = node.targets[0], node.value
            pairs = (zip(targets.elts, values.elts) if isinstance(targets, ast.Tuple) and isinstance(values, ast.Tuple)
                     else [(targets, values)])
            for target, value in pairs:
                if isinstance(target, ast.Name) and _params_call(value) is not None:
                    bound[target.id] = _params_call(value)
    keys: set[str] = set()
    parents = {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}

    def chain(node: ast.AST, base: str) -> str:
        """Follow ["a"]["b"] and .get("a") up from `node`, joining keys onto `base`."""
        key = base
        while True:
            parent = parents.get(node)
            if isinstance(parent, ast.Subscript) and parent.value is node:
                part = _key_of(parent)
                if part is None:
                    return key + ".*"  # a computed key: the static prefix and "something under it"
                key, node = f"{key}.{part}" if key else part, parent
            elif (isinstance(parent, ast.Attribute) and parent.attr == "get" and isinstance(parents.get(parent), ast.Call)
                  and parents[parent].args and isinstance(parents[parent].args[0], ast.Constant)):
                part = str(parents[parent].args[0].value)
                key, node = f"{key}.{part}" if key else part, parents[parent]
            else:
                return key

    assigned = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)}
    assigned |= {id(v) for n in ast.walk(tree) if isinstance(n, ast.Assign) and isinstance(n.value, ast.Tuple)
                 for v in n.value.elts}
    for node in ast.walk(tree):
        section = _params_call(node)
        if section is not None:
            if id(node) not in assigned or not isinstance(parents.get(node), (ast.Assign, ast.Tuple)):
                keys.add(chain(node, section))  # a bound call is read through its name, below
        elif isinstance(node, ast.Name) and node.id in bound and isinstance(node.ctx, ast.Load):
            keys.add(chain(node, bound[node.id]))
    return {k for k in keys if k}  # params() used whole would be "", which no stage does


def paths_named(tree: ast.AST) -> set[str]:
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PATH_ROOTS):
            out.add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
            prefix = str(node.values[0].value)
            if prefix.startswith(PATH_ROOTS):
                out.add(prefix)
    return out


def script_reads(script: Path) -> Reads:
    tree = ast.parse(script.read_text())
    return Reads(code_closure(script), params_read(tree), paths_named(tree))


def _covered(path: str, declared: set[str]) -> bool:
    path = path.rstrip("/")
    return any(path == d or path.startswith(d.rstrip("/") + "/") or d.startswith(path + "/") for d in declared)


def undeclared(script: Path, deps: set[str], outs: set[str], params: set[str], argv: list[str]) -> list[str]:
    """Everything the script reads that its stage does not declare (empty when the stage is complete)."""
    reads = script_reads(script)
    problems = [f"code {c}" for c in sorted(reads.code) if not _covered(c, deps)]
    for key in sorted(reads.params):
        if key.endswith(".*"):
            prefix = key[:-2]
            ok = any(p == prefix or p.startswith(prefix + ".") or prefix.startswith(p + ".") for p in params)
        else:
            ok = any(key == p or key.startswith(p + ".") for p in params)
        if not ok:
            problems.append(f"params {key}")
    for path in sorted(reads.paths):  # an f-string counts by its literal prefix: f"data/predictions/{name}"
        if not (_covered(path, deps) or _covered(path, outs)):
            problems.append(f"path {path}")
    return problems


@dataclass
class StageDecl:
    name: str
    script: Path
    argv: list[str]
    deps: set[str]
    outs: set[str]
    params: set[str]


def declared_stages() -> list[StageDecl]:
    """Every command stage of dvc.yaml, resolved by DVC itself (foreach/matrix expanded)."""
    from dvc.dependency.param import ParamsDependency
    from dvc.repo import Repo

    out = []
    with Repo(str(ROOT)) as repo:
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue  # an import (.dvc file): no code of ours
            words = shlex.split(stage.cmd)
            script = next(w for w in words if w.endswith(".py"))
            argv = words[words.index(script) + 1:]
            deps, params = set(), set()
            for dep in stage.deps:
                if isinstance(dep, ParamsDependency):
                    params |= set(dep.params or [])
                else:
                    deps.add(str(dep.def_path))
            out.append(StageDecl(stage.addressing, ROOT / script, argv, deps, {str(o.def_path) for o in stage.outs},
                                 params))
    return out
