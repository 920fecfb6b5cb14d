"""The layering rules of docs/architecture.md, checked on the source (static: nothing is imported).

- dependencies point one way: no mtkit library module imports data_prep (only the CLI layer,
  mtkit/cli/, sees both);
- argument parsing lives in mtkit/cli/ only;
- mtkit changes fairseq, torch, numpy and transformers behaviour in mtkit/patches.py only;
- no user-facing ``python -m`` programs besides ``python -m mtkit.cli`` (private worker modules,
  ``_name.py``, may be started as child processes);
- benchmarks import neither tests nor private (``_name``) functions of the product.
"""
from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOREIGN = ("fairseq", "fairseq_cli", "torch", "numpy", "transformers")


def _modules(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py") if "__pycache__" not in p.parts)


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _imported_modules(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def _rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def _in_cli(path: Path) -> bool:
    return (REPO / "mtkit" / "cli") in path.parents


def test_mtkit_library_does_not_import_data_prep() -> None:
    bad = [_rel(p) for p in _modules("mtkit") if not _in_cli(p)
           and any(m == "data_prep" or m.startswith("data_prep.") for m in _imported_modules(_tree(p)))]
    assert bad == [], f"mtkit library modules import data_prep (only mtkit/cli/ may): {bad}"


def test_argument_parsing_only_in_the_cli_layer() -> None:
    bad = []
    for p in _modules("mtkit", "data_prep"):
        if _in_cli(p):
            continue
        tree = _tree(p)
        # fairseq's registries (tasks, models, criterions) declare their options in a static
        # `add_args(parser)` that fairseq's own parser calls: that is the plugin interface, not a CLI
        hooks = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) and f.name == "add_args"
                 for n in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in hooks:
                continue
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "ArgumentParser", "add_argument", "add_subparsers", "add_argument_group"):
                bad.append(f"{_rel(p)}:{node.lineno}")
    assert bad == [], f"argument parsing outside mtkit/cli/: {bad}"


def _foreign_names(tree: ast.Module) -> set[str]:
    """Local names bound to fairseq/torch/numpy/transformers modules or their members."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in FOREIGN:
                    names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in FOREIGN:
            names |= {a.asname or a.name for a in node.names}
    return names


def test_foreign_code_is_patched_only_in_patches_module() -> None:
    bad = []
    for p in _modules("mtkit", "data_prep"):
        if p == REPO / "mtkit" / "patches.py":
            continue
        tree = _tree(p)
        foreign = _foreign_names(tree)
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(
                node, (ast.AugAssign, ast.AnnAssign)) else []
            for t in targets:
                base = t
                while isinstance(base, ast.Attribute):
                    base = base.value
                if isinstance(t, ast.Attribute) and isinstance(base, ast.Name) and base.id in foreign:
                    bad.append(f"{_rel(p)}:{node.lineno} ({ast.unparse(t)})")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr" \
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id in foreign:
                bad.append(f"{_rel(p)}:{node.lineno} (setattr)")
    assert bad == [], f"fairseq/torch/numpy/transformers changed outside mtkit/patches.py: {bad}"


def test_no_user_facing_module_programs() -> None:
    """(private worker modules, ``_name.py``, that a step starts as a child process are not programs)"""
    bad = []
    for p in _modules("mtkit", "data_prep"):
        if p.name.startswith("_"):
            continue
        for node in _tree(p).body:
            if isinstance(node, ast.If) and "__name__" in ast.unparse(node.test) and "__main__" in ast.unparse(node.test):
                bad.append(_rel(p))
    assert bad == [], f"`python -m` entry points outside mtkit/cli/__main__.py: {bad}"


def test_benchmarks_use_only_public_product_code() -> None:
    bad = []
    for p in _modules("benchmarks"):
        tree = _tree(p)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in ("mtkit", "data_prep"):
                bad += [f"{_rel(p)}:{node.lineno} imports private {a.name}" for a in node.names if a.name.startswith("_")]
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{_rel(p)}:{node.lineno} imports tests" for m in mods if m.split(".")[0] in ("tests", "tiny")]
        if '"tests"' in p.read_text(encoding="utf-8") and "sys.path" in p.read_text(encoding="utf-8"):
            bad.append(f"{_rel(p)}: puts tests/ on sys.path")
    assert bad == [], f"benchmarks reach into tests or private functions: {bad}"
