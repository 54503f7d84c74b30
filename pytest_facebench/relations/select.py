"""The `models = "..."` selection of a relation: a `-k`-like expression over model names and tags.

`and`, `or`, `not` and parentheses combine words. A word matches a model when it is part of the model's name
(as `-k` matches test ids), equals one of its text tags, names a boolean tag that is true, or reads
`tag=value` (`diet=faces`, `parameters=138000000.0` compares numbers). Examples: `"diet=faces and not
untrained"`, `"vgg16 or pixels"`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")
_KEYWORDS = ("and", "or", "not")


class SelectionError(ValueError):
    """A selection expression that cannot be parsed (the message says where)."""


@dataclass(frozen=True)
class Selection:
    """A compiled selection expression."""

    text: str
    tree: Any

    def matches(self, model: str, tags: Mapping[str, Any]) -> bool:
        return bool(_evaluate(self.tree, model, tags))


def compile_selection(text: str) -> Selection:
    """Parse `text`; raise `SelectionError` naming the position of a problem."""
    tokens = [(m.group(1), m.start(1)) for m in _TOKEN.finditer(text)]
    if not tokens:
        raise SelectionError("the selection is empty; write model names or tags joined by and/or/not")
    position = 0

    def peek() -> str | None:
        return tokens[position][0] if position < len(tokens) else None

    def take() -> tuple[str, int]:
        nonlocal position
        if position >= len(tokens):
            raise SelectionError(f"unexpected end of {text!r}; expected a model name, a tag or '('")
        token = tokens[position]
        position += 1
        return token

    def expression() -> Any:
        node = term()
        while peek() == "or":
            take()
            node = ("or", node, term())
        return node

    def term() -> Any:
        node = factor()
        while peek() == "and":
            take()
            node = ("and", node, factor())
        return node

    def factor() -> Any:
        token, at = take()
        if token == "not":
            return ("not", factor())
        if token == "(":
            node = expression()
            closing, where = take() if peek() is not None else (None, len(text))
            if closing != ")":
                raise SelectionError(f"expected ')' at column {where + 1} of {text!r}")
            return node
        if token in (")", "and", "or"):
            raise SelectionError(f"unexpected '{token}' at column {at + 1} of {text!r}")
        return ("word", token)

    tree = expression()
    if position < len(tokens):
        token, at = tokens[position]
        raise SelectionError(f"unexpected '{token}' at column {at + 1} of {text!r}; join words with and/or")
    return Selection(text, tree)


def _evaluate(node: Any, model: str, tags: Mapping[str, Any]) -> bool:
    kind = node[0]
    if kind == "and":
        return _evaluate(node[1], model, tags) and _evaluate(node[2], model, tags)
    if kind == "or":
        return _evaluate(node[1], model, tags) or _evaluate(node[2], model, tags)
    if kind == "not":
        return not _evaluate(node[1], model, tags)
    return _word(node[1], model, tags)


def _word(word: str, model: str, tags: Mapping[str, Any]) -> bool:
    if "=" in word:
        name, _, wanted = word.partition("=")
        if name not in tags:
            return False
        value = tags[name]
        if isinstance(value, bool):
            return wanted.lower() == str(value).lower()
        if isinstance(value, (int, float)):
            try:
                return float(wanted) == float(value)
            except ValueError:
                return False
        return str(value) == wanted
    if tags.get(word) is True:
        return True
    return word in model or any(isinstance(v, str) and v == word for v in tags.values())
