from __future__ import annotations

import ast
import doctest
from pathlib import Path
from types import ModuleType

import pytest

import agentwatch.detectors
from agentwatch.detectors import _census, _loop, _pace, _pipeline, _rate, _sequence, _series


def _source(module: ModuleType) -> Path:
    """The module's .py file, also when it runs compiled (setup.py): doctest cannot find the
    docstrings of compiled functions, so the examples are read from the source."""
    assert agentwatch.detectors.__file__  # interpreted: its own __file__ is the package's
    return Path(agentwatch.detectors.__file__).with_name(module.__name__.rpartition(".")[2] + ".py")


def _run_examples(module: ModuleType) -> doctest.TestResults:
    path = _source(module)
    tree = ast.parse(path.read_text())
    parser, runner = (
        doctest.DocTestParser(),
        doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE),
    )
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            docstring = ast.get_docstring(node, clean=True)
            if docstring and ">>>" in docstring:
                name = getattr(node, "name", module.__name__)
                globs = dict(
                    vars(module)
                )  # as doctest.testmod: the module's names, fresh per docstring
                test = parser.get_doctest(docstring, globs, name, str(path), node.lineno)
                runner.run(test)
    return runner.summarize(verbose=False)


@pytest.mark.parametrize(
    "module",
    [_census, _loop, _pace, _rate, _pipeline, _series, _sequence],
    ids=lambda m: m.__name__,
)
def test_doctests(module: ModuleType) -> None:
    result = _run_examples(module)
    assert result.attempted > 0
    assert result.failed == 0


def test_public_names() -> None:
    exported = agentwatch.detectors.__all__
    assert exported == sorted(exported)
    assert all(hasattr(agentwatch.detectors, name) for name in exported)
    assert agentwatch.detectors.__doc__
