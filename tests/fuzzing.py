"""Helpers the parser fuzz tests share: walk a JSON document and mutate one node of it."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

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
