"""Helpers the parser fuzz tests share: walk a JSON document and mutate one node of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

DELETE = object()


def paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a node of `doc`, the root included."""
    yield prefix
    children = doc.items() if isinstance(doc, dict) else enumerate(doc) if isinstance(doc, list) else ()
    for key, child in children:
        yield from paths(child, (*prefix, key))


def mutate(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of `doc` with the node at `path` replaced by `value` (or removed, for DELETE)."""
    if not path:
        return None if value is DELETE else value
    doc = copy.deepcopy(doc)
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if value is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def json_values(keys: SearchStrategy[str], *specials: list[Any]) -> SearchStrategy[Any]:
    """Arbitrary JSON biased towards a parser's own keys and the values its platform sends."""
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    for values in specials:
        scalars |= st.sampled_from(values)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=6),
        max_leaves=25,
    )
