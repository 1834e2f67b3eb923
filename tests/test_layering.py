"""The layers show in the folders and a layer imports only from the layers below it."""

import ast
import pathlib

import sirnn

ORDER = ["errors", "transport", "ot", "protocols", "mathfn", "nn", "compiler", "cli"]
ROOT = pathlib.Path(sirnn.__file__).parent


def _layer(module: str) -> int | None:
    head = module.split(".")[0]
    return ORDER.index(head) if head in ORDER else None


def _imports(path: pathlib.Path):
    rel = path.relative_to(ROOT).with_suffix("")
    pkg = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                if node.module and node.module.startswith("sirnn."):
                    yield node.module[len("sirnn."):]
                continue
            base = pkg[: len(pkg) - (node.level - 1)] if node.level > 1 else pkg
            target = ".".join(base + ([node.module] if node.module else []))
            if target:
                yield target
            elif node.module is None:
                for alias in node.names:
                    yield alias.name
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("sirnn."):
                    yield alias.name[len("sirnn."):]


def test_layers_import_only_downwards():
    bad = []
    for path in ROOT.rglob("*.py"):
        own = _layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if own is None:
            continue
        for mod in _imports(path):
            other = _layer(mod)
            if other is not None and other > own:
                bad.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert not bad, "upward imports:\n" + "\n".join(bad)
