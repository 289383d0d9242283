"""The SoQL subset the stand-in understands: a tokenizer, a recursive-descent parser, an evaluator.

Supported: `$select` (`*`, `:*`, columns with optional `AS`, `count(*)`, `count(col)`,
`max(col)`, `min(col)`, `date_trunc_ymd|ym|y(col)`), `$group` (columns, `date_trunc_*` calls
or select aliases), `$where` (AND/OR/NOT, parentheses, `= == != <> < <= > >=`,
`IS [NOT] NULL`, `[NOT] IN (...)`, `[NOT] BETWEEN a AND b`, `[NOT] LIKE '...'`), `$order`
(`col [ASC|DESC]`, comma separated; aliases of an aggregate query), `$limit`, `$offset`,
`$$exclude_system_fields` and plain `column=value` equality filters.
Errors are raised as `SoqlError` carrying the JSON body Socrata would send.
"""

from __future__ import annotations

import operator
import re
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SYSTEM_FIELDS: tuple[str, ...] = (":id", ":created_at", ":updated_at")
_SYSTEM_SET = frozenset(SYSTEM_FIELDS)
SYSTEM_TYPES: dict[str, str] = {
    ":id": "text",
    ":created_at": "timestamp",
    ":updated_at": "timestamp",
}
COLUMN_TYPES: tuple[str, ...] = ("number", "text", "timestamp", "boolean", "location")
# Socrata's own type names, so callers may declare columns the way the portal reports them.
TYPE_ALIASES: dict[str, str] = {
    "double": "number",
    "money": "number",
    "percent": "number",
    "floating_timestamp": "timestamp",
    "fixed_timestamp": "timestamp",
    "calendar_date": "timestamp",
    "checkbox": "boolean",
    "point": "location",
    "url": "text",
}
DEFAULT_LIMIT = 1000
MAX_LIMIT = 50000

MALFORMED = "query.compiler.malformed"
NO_SUCH_COLUMN = "query.soql.no-such-column"
NO_SUCH_FUNCTION = "query.soql.no-such-function"
TYPE_MISMATCH = "query.soql.type-mismatch"

Row = Mapping[str, Any]
Predicate = Callable[[Row], "bool | None"]

_KEYWORDS = frozenset({"and", "or", "not", "is", "null", "in", "between", "like", "true", "false"})
# Functions of one column the stand-in evaluates in `$select` and `$group`.
_TRUNCATIONS = {"date_trunc_ymd": 10, "date_trunc_ym": 7, "date_trunc_y": 4}
_AGGREGATES = frozenset({"count", "max", "min"})
_ONE_COLUMN_CALLS = frozenset({"max", "min", *_TRUNCATIONS})
_COMPARE_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "==": operator.eq,
    "!=": operator.ne,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    |(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<string>'(?:[^']|'')*')
    |(?P<sysident>:\*|:[A-Za-z_@][A-Za-z0-9_]*)
    |(?P<ident>[A-Za-z_@][A-Za-z0-9_]*)
    |(?P<qident>`[^`]*`)
    |(?P<op><=|>=|<>|!=|==|=|<|>)
    |(?P<punct>[(),*+-])
    """,
    re.VERBOSE,
)


class SoqlError(Exception):
    """A query Socrata would refuse; `body()` is the JSON error document it would send."""

    def __init__(
        self, code: str, message: str, data: dict[str, Any] | None = None, status: int = 400
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}
        self.status = status

    def body(self) -> dict[str, Any]:
        """Return the error as Socrata's JSON error object."""
        return {"code": self.code, "error": True, "message": self.message, "data": self.data}


def normalise_type(type_name: str) -> str:
    """Map a declared column type (ours or Socrata's name) to one of COLUMN_TYPES."""
    name = TYPE_ALIASES.get(type_name.strip().lower(), type_name.strip().lower())
    if name not in COLUMN_TYPES:
        raise ValueError(f"unknown column type {type_name!r}; expected one of {COLUMN_TYPES}")
    return name


# ---------------------------------------------------------------------------------------------
# Positions and errors


def _position(text: str, pos: int) -> dict[str, Any]:
    """Return Socrata's 1-based row/column of `pos` in `text` plus the line it sits on."""
    pos = max(0, min(pos, len(text)))
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    return {"row": row, "column": pos - line_start + 1, "line": line}


def _error(code: str, message: str, text: str, pos: int, **data: Any) -> SoqlError:
    """Build an error whose message ends with Socrata's `position: Map(...)` suffix."""
    where = _position(text, pos)
    suffix = (
        f"; position: Map(row -> {where['row']}, column -> {where['column']}, "
        f'line -> "{where["line"]}")'
    )
    return SoqlError(code, message + suffix, {**data, "position": where})


# ---------------------------------------------------------------------------------------------
# Tokenizer


@dataclass(frozen=True)
class Token:
    """One lexical token; `pos` is its 0-based offset in the parameter text."""

    kind: str  # number | string | sysident | ident | qident | op | punct | eof
    value: str
    pos: int

    def is_keyword(self, *words: str) -> bool:
        """True when the token is an unquoted identifier spelling one of `words`."""
        return self.kind == "ident" and self.value.lower() in words

    def describe(self) -> str:
        """Render the token the way an error message should quote it."""
        return "end of input" if self.kind == "eof" else f"`{self.value}'"


def tokenize(text: str) -> list[Token]:
    """Split SoQL text into tokens ending with an `eof` token; raise SoqlError on stray input."""
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            what = "Unterminated string literal" if text[pos] == "'" else "Unexpected character"
            raise _error(MALFORMED, f"{what} `{text[pos]}'", text, pos)
        kind = match.lastgroup or ""
        if kind != "ws":
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    tokens.append(Token("eof", "", len(text)))
    return tokens


# ---------------------------------------------------------------------------------------------
# AST


@dataclass(frozen=True)
class Column:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    value: Any
    kind: str  # text | number | boolean | null
    pos: int


@dataclass(frozen=True)
class Compare:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class IsNull:
    operand: Node
    negated: bool
    pos: int


@dataclass(frozen=True)
class InList:
    operand: Node
    items: tuple[Node, ...]
    negated: bool
    pos: int


@dataclass(frozen=True)
class Between:
    operand: Node
    low: Node
    high: Node
    negated: bool
    pos: int


@dataclass(frozen=True)
class Like:
    operand: Node
    pattern: Node
    negated: bool
    pos: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class Not:
    operand: Node
    pos: int


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Node, ...]
    star: bool
    pos: int


Node = Column | Literal | Compare | IsNull | InList | Between | Like | BoolOp | Not | Call


@dataclass(frozen=True)
class SelectItem:
    """One `$select` entry: `*`, `:*`, a column or an aggregate, with its output name."""

    kind: str  # star | system_star | column | count | max | min | date_trunc_ymd|ym|y
    column: str | None
    alias: str | None
    pos: int


@dataclass(frozen=True)
class OrderItem:
    column: Column
    descending: bool


# ---------------------------------------------------------------------------------------------
# Parser


class _Parser:
    """Recursive-descent parser over the tokens of one SoQL parameter."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0

    # -- token helpers --------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        return self.tokens[min(self.index + ahead, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.peek()
        self.index = min(self.index + 1, len(self.tokens) - 1)
        return token

    def accept_keyword(self, *words: str) -> Token | None:
        if self.peek().is_keyword(*words):
            return self.advance()
        return None

    def accept_punct(self, value: str) -> Token | None:
        token = self.peek()
        if token.kind == "punct" and token.value == value:
            return self.advance()
        return None

    def expect_keyword(self, word: str) -> Token:
        token = self.accept_keyword(word)
        if token is None:
            raise self.unexpected(f"`{word.upper()}'")
        return token

    def expect_punct(self, value: str) -> Token:
        token = self.accept_punct(value)
        if token is None:
            raise self.unexpected(f"`{value}'")
        return token

    def expect_end(self) -> None:
        if self.peek().kind != "eof":
            raise self.unexpected("end of input")

    def unexpected(self, expected: str) -> SoqlError:
        token = self.peek()
        return _error(
            MALFORMED, f"Expected {expected}, but got {token.describe()}", self.text, token.pos
        )

    # -- $where expressions -----------------------------------------------------------------

    def expression(self) -> Node:
        left = self.conjunction()
        while (token := self.accept_keyword("or")) is not None:
            left = BoolOp("or", left, self.conjunction(), token.pos)
        return left

    def conjunction(self) -> Node:
        left = self.negation()
        while (token := self.accept_keyword("and")) is not None:
            left = BoolOp("and", left, self.negation(), token.pos)
        return left

    def negation(self) -> Node:
        token = self.accept_keyword("not")
        if token is not None:
            return Not(self.negation(), token.pos)
        return self.predicate()

    def predicate(self) -> Node:
        left = self.primary()
        token = self.peek()
        if token.kind == "op":
            self.advance()
            return Compare(token.value, left, self.primary(), token.pos)
        if self.accept_keyword("is"):
            negated = self.accept_keyword("not") is not None
            self.expect_keyword("null")
            return IsNull(left, negated, token.pos)
        negated = False
        if token.is_keyword("not") and self.peek(1).is_keyword("in", "between", "like"):
            self.advance()
            negated = True
        if self.accept_keyword("in"):
            return InList(left, self.in_items(), negated, token.pos)
        if self.accept_keyword("between"):
            low = self.primary()
            self.expect_keyword("and")
            return Between(left, low, self.primary(), negated, token.pos)
        if self.accept_keyword("like"):
            return Like(left, self.primary(), negated, token.pos)
        return left

    def in_items(self) -> tuple[Node, ...]:
        self.expect_punct("(")
        items = [self.primary()]
        while self.accept_punct(","):
            items.append(self.primary())
        self.expect_punct(")")
        return tuple(items)

    def primary(self) -> Node:
        token = self.peek()
        if self.accept_punct("("):
            inner = self.expression()
            self.expect_punct(")")
            return inner
        if token.kind == "punct" and token.value == "-":
            self.advance()
            number = self.peek()
            if number.kind != "number":
                raise self.unexpected("a number")
            self.advance()
            return Literal(-_number(number.value), "number", token.pos)
        if token.kind == "number":
            self.advance()
            return Literal(_number(token.value), "number", token.pos)
        if token.kind == "string":
            self.advance()
            return Literal(token.value[1:-1].replace("''", "'"), "text", token.pos)
        if token.is_keyword("true", "false"):
            self.advance()
            return Literal(token.value.lower() == "true", "boolean", token.pos)
        if token.is_keyword("null"):
            self.advance()
            return Literal(None, "null", token.pos)
        name = self.column_name()
        if name is not None:
            if self.peek().kind == "punct" and self.peek().value == "(":
                return self.call(name, token.pos)
            return Column(name, token.pos)
        raise self.unexpected("an expression")

    def column_name(self) -> str | None:
        """Consume and return a column name, or None when the next token is not one."""
        token = self.peek()
        if token.kind == "ident" and token.value.lower() not in _KEYWORDS:
            self.advance()
            return token.value
        if token.kind == "qident":
            self.advance()
            return token.value[1:-1]
        if token.kind == "sysident" and token.value != ":*":
            self.advance()
            return token.value
        return None

    def call(self, name: str, pos: int) -> Call:
        self.expect_punct("(")
        if self.accept_punct("*"):
            self.expect_punct(")")
            return Call(name.lower(), (), True, pos)
        args: list[Node] = []
        if not self.accept_punct(")"):
            args.append(self.expression())
            while self.accept_punct(","):
                args.append(self.expression())
            self.expect_punct(")")
        return Call(name.lower(), tuple(args), False, pos)

    # -- $select and $order ---------------------------------------------------------------

    def select_list(self) -> list[SelectItem]:
        items = [self.select_item()]
        while self.accept_punct(","):
            items.append(self.select_item())
        self.expect_end()
        return items

    def select_item(self) -> SelectItem:
        token = self.peek()
        if self.accept_punct("*"):
            return SelectItem("star", None, None, token.pos)
        if token.kind == "sysident" and token.value == ":*":
            self.advance()
            return SelectItem("system_star", None, None, token.pos)
        node = self.primary()
        alias = self.alias()
        if isinstance(node, Column):
            return SelectItem("column", node.name, alias, token.pos)
        if isinstance(node, Call) and node.name == "count":
            return self.count_item(node, alias)
        if isinstance(node, Call) and node.name in _ONE_COLUMN_CALLS:
            if len(node.args) != 1 or not isinstance(node.args[0], Column):
                raise _error(MALFORMED, f"{node.name}() takes one column", self.text, node.pos)
            column = node.args[0].name
            return SelectItem(node.name, column, alias or f"{node.name}_{column}", node.pos)
        if isinstance(node, Call):
            raise _error(NO_SUCH_FUNCTION, f"No such function '{node.name}'", self.text, node.pos)
        raise _error(
            MALFORMED,
            "The stand-in only selects columns, `*', `:*', count(), max(), min() and "
            "date_trunc_*()",
            self.text,
            token.pos,
        )

    def count_item(self, node: Call, alias: str | None) -> SelectItem:
        if node.star:
            return SelectItem("count", None, alias or "count", node.pos)
        if len(node.args) == 1 and isinstance(node.args[0], Column):
            column = node.args[0].name
            return SelectItem("count", column, alias or f"count_{column}", node.pos)
        raise _error(MALFORMED, "count() takes `*' or one column", self.text, node.pos)

    def alias(self) -> str | None:
        if self.accept_keyword("as") is None:
            return None
        name = self.column_name()
        if name is None:
            raise self.unexpected("an alias")
        return name

    def order_list(self) -> list[OrderItem]:
        items = [self.order_item()]
        while self.accept_punct(","):
            items.append(self.order_item())
        self.expect_end()
        return items

    def order_item(self) -> OrderItem:
        token = self.peek()
        name = self.column_name()
        if name is None:
            raise self.unexpected("a column name")
        if self.peek().kind == "punct" and self.peek().value == "(":
            raise _error(MALFORMED, "The stand-in orders by columns only", self.text, token.pos)
        direction = self.accept_keyword("asc", "desc")
        descending = direction is not None and direction.value.lower() == "desc"
        return OrderItem(Column(name, token.pos), descending)


def _number(text: str) -> int | float:
    """Parse a numeric literal, keeping integers exact."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def parse_where(text: str) -> Node:
    """Parse a `$where` expression into an AST."""
    parser = _Parser(text)
    node = parser.expression()
    parser.expect_end()
    return node


def parse_select(text: str) -> list[SelectItem]:
    """Parse a `$select` list."""
    return _Parser(text).select_list()


def parse_group(text: str) -> list[SelectItem]:
    """`$group`: columns, `date_trunc_*` calls or aliases of the select list."""
    return _Parser(text).select_list()


def parse_order(text: str) -> list[OrderItem]:
    """Parse an `$order` list."""
    return _Parser(text).order_list()


# ---------------------------------------------------------------------------------------------
# Value conversion: stored wire values to comparable Python values (None means NULL)


def _as_text(value: Any) -> Any:
    return value if type(value) is str else None


def _as_number(value: Any) -> Any:
    if type(value) is str:
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    if type(value) in (int, float):
        return value
    return None


def _as_timestamp(value: Any) -> Any:
    """Return a sortable `YYYY-MM-DDTHH:MM:SS.mmm` string (UTC for fixed timestamps)."""
    if type(value) is not str:
        return None
    # Socrata's own formats are already canonical: skip parsing for the hot path.
    if len(value) == 23 and value[10] == "T":
        return value
    if len(value) == 24 and value[23] == "Z" and value[10] == "T":
        return value[:23]
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}"


def _as_boolean(value: Any) -> Any:
    if type(value) is bool:
        return value
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _as_text,
    "number": _as_number,
    "timestamp": _as_timestamp,
    "boolean": _as_boolean,
}


# ---------------------------------------------------------------------------------------------
# Schema and compilation of $where to closures


@dataclass(frozen=True)
class Schema:
    """What a dataset's queries may reference: its known columns and their types."""

    dataset_id: str
    columns: Collection[str]
    declared: Mapping[str, str] = field(default_factory=dict)
    inferred: Mapping[str, str] = field(default_factory=dict)

    def resolve(self, name: str, text: str, pos: int) -> str:
        """Return the stored name of column `name`, or raise Socrata's no-such-column error."""
        if name in SYSTEM_TYPES or name in self.columns or name in self.declared:
            return name
        lowered = name.lower()
        if lowered in SYSTEM_TYPES or lowered in self.columns or lowered in self.declared:
            return lowered
        raise _error(
            NO_SUCH_COLUMN,
            f"No such column: {name}",
            text,
            pos,
            column=name,
            dataset=self.dataset_id,
        )

    def type_of(self, name: str) -> str:
        """Return the column's type: declared, system, inferred from values, else text."""
        return (
            self.declared.get(name) or SYSTEM_TYPES.get(name) or self.inferred.get(name) or "text"
        )

    def is_declared(self, name: str) -> bool:
        """True when the column's type was declared (or is a system field), not guessed."""
        return name in self.declared or name in SYSTEM_TYPES


Getter = Callable[[Row], Any]


class _Compiler:
    """Type-checks a `$where` AST and turns it into a row predicate (three-valued logic)."""

    def __init__(self, schema: Schema, text: str) -> None:
        self.schema = schema
        self.text = text

    def error(self, code: str, message: str, pos: int) -> SoqlError:
        return _error(code, message, self.text, pos)

    # -- boolean nodes --------------------------------------------------------------------

    def predicate(self, node: Node) -> Predicate:
        if isinstance(node, BoolOp):
            return self.bool_op(node)
        if isinstance(node, Not):
            return _negate(self.predicate(node.operand))
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, IsNull):
            return self.is_null(node)
        if isinstance(node, InList):
            return self.in_list(node)
        if isinstance(node, Between):
            return self.between(node)
        if isinstance(node, Like):
            return self.like(node)
        if isinstance(node, Call):
            raise self.error(NO_SUCH_FUNCTION, f"No such function '{node.name}'", node.pos)
        getter, kind = self.operand(node, None)
        if kind not in ("boolean", "null"):
            raise self.error(
                TYPE_MISMATCH, f"Type mismatch: expected a boolean expression, is {kind}", node.pos
            )
        return getter

    def bool_op(self, node: BoolOp) -> Predicate:
        left, right = self.predicate(node.left), self.predicate(node.right)
        if node.op == "and":
            return _and(left, right)
        return _or(left, right)

    # -- comparisons ------------------------------------------------------------------------

    def operand_type(self, *nodes: Node) -> str:
        """Pick the type a comparison runs in: the first column's, else the literals' own."""
        literal_kinds = [n.kind for n in nodes if isinstance(n, Literal) and n.kind != "null"]
        for node in nodes:
            if isinstance(node, Column):
                name = self.schema.resolve(node.name, self.text, node.pos)
                kind = self.schema.type_of(name)
                # An undeclared column compared with a bare number is taken as numeric: the
                # client evidently knows it is a number column even if nobody declared it.
                if (
                    kind == "text"
                    and not self.schema.is_declared(name)
                    and "number" in literal_kinds
                ):
                    return "number"
                return kind
            if isinstance(node, Call):
                raise self.error(NO_SUCH_FUNCTION, f"No such function '{node.name}'", node.pos)
            if not isinstance(node, Literal):
                raise self.error(MALFORMED, "Expected a column or a literal value", _pos(node))
        return literal_kinds[0] if literal_kinds else "null"

    def operand(self, node: Node, kind: str | None) -> tuple[Getter, str]:
        """Compile a column or literal to a getter returning values of type `kind`."""
        if isinstance(node, Column):
            name = self.schema.resolve(node.name, self.text, node.pos)
            own = self.schema.type_of(name)
            target = kind or own
            if kind is not None and own != kind and not (own == "text" and kind == "number"):
                raise self.error(
                    TYPE_MISMATCH, f"Type mismatch: {name} is {own}, compared with {kind}", node.pos
                )
            if target == "location":
                raise self.error(
                    TYPE_MISMATCH,
                    f"Type mismatch: location column {name} is not comparable",
                    node.pos,
                )
            convert = _CONVERTERS[target]
            return (lambda row: convert(row.get(name))), target
        if isinstance(node, Literal):
            value = self.coerce(node, kind or node.kind)
            return (lambda row: value), (kind or node.kind)
        if isinstance(node, Call):
            raise self.error(NO_SUCH_FUNCTION, f"No such function '{node.name}'", node.pos)
        raise self.error(MALFORMED, "Expected a column or a literal value", _pos(node))

    def coerce(self, literal: Literal, kind: str) -> Any:
        """Convert a literal to `kind` as Socrata would, or raise a type-mismatch error."""
        if literal.kind == "null" or literal.kind == kind:
            return literal.value
        if literal.kind == "text" and kind in ("number", "timestamp", "boolean"):
            value = _CONVERTERS[kind](literal.value)
            if value is not None:
                return value
            raise self.error(
                TYPE_MISMATCH,
                f"Type mismatch: '{literal.value}' is not a valid {kind}",
                literal.pos,
            )
        raise self.error(
            TYPE_MISMATCH,
            f"Type mismatch: {literal.kind} literal used where {kind} is expected",
            literal.pos,
        )

    def compare(self, node: Compare) -> Predicate:
        kind = self.operand_type(node.left, node.right)
        left, _ = self.operand(node.left, kind)
        right, _ = self.operand(node.right, kind)
        compare = _COMPARE_OPS[node.op]
        if kind == "boolean" and node.op not in ("=", "==", "!=", "<>"):
            raise self.error(
                TYPE_MISMATCH, f"Type mismatch: cannot order booleans with {node.op}", node.pos
            )
        if isinstance(node.left, Column) and isinstance(node.right, Literal):
            return self.compare_to_constant(node.left, kind, compare, right({}))

        def check(row: Row) -> bool | None:
            a, b = left(row), right(row)
            if a is None or b is None:
                return None
            return compare(a, b)

        return check

    def compare_to_constant(
        self, column: Column, kind: str, compare: Callable[[Any, Any], bool], constant: Any
    ) -> Predicate:
        """The common `column <op> literal` case in one closure: it runs once per row."""
        name = self.schema.resolve(column.name, self.text, column.pos)
        convert = _CONVERTERS[kind]
        if constant is None:
            return lambda row: None

        def check(row: Row) -> bool | None:
            value = convert(row.get(name))
            return None if value is None else compare(value, constant)

        return check

    def is_null(self, node: IsNull) -> Predicate:
        operand = node.operand
        if isinstance(operand, Column):
            name = self.schema.resolve(operand.name, self.text, operand.pos)
            # Presence, not convertibility, decides NULL: the field is simply omitted.
            if node.negated:
                return lambda row: row.get(name) is not None
            return lambda row: row.get(name) is None
        getter, _ = self.operand(operand, None)
        return lambda row: (getter(row) is None) != node.negated

    def in_list(self, node: InList) -> Predicate:
        kind = self.operand_type(node.operand, *node.items)
        value, _ = self.operand(node.operand, kind)
        if not all(isinstance(item, Literal) for item in node.items):
            raise self.error(MALFORMED, "IN (...) takes literal values only", node.pos)
        choices = frozenset(self.operand(item, kind)[0]({}) for item in node.items) - {None}
        negated = node.negated

        def check(row: Row) -> bool | None:
            found = value(row)
            if found is None:
                return None
            return (found in choices) != negated

        return check

    def between(self, node: Between) -> Predicate:
        kind = self.operand_type(node.operand, node.low, node.high)
        value, _ = self.operand(node.operand, kind)
        low, _ = self.operand(node.low, kind)
        high, _ = self.operand(node.high, kind)
        negated = node.negated

        def check(row: Row) -> bool | None:
            a, lo, hi = value(row), low(row), high(row)
            if a is None or lo is None or hi is None:
                return None
            return bool(lo <= a <= hi) != negated

        return check

    def like(self, node: Like) -> Predicate:
        value, _ = self.operand(node.operand, "text")
        pattern = node.pattern
        if not (isinstance(pattern, Literal) and pattern.kind == "text"):
            raise self.error(TYPE_MISMATCH, "LIKE takes a quoted pattern", _pos(pattern))
        regex = re.compile(
            "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern.value),
            re.DOTALL,
        )
        negated = node.negated

        def check(row: Row) -> bool | None:
            text = value(row)
            if text is None:
                return None
            return (regex.fullmatch(text) is not None) != negated

        return check


def _pos(node: Node) -> int:
    return node.pos


def _negate(inner: Predicate) -> Predicate:
    def check(row: Row) -> bool | None:
        result = inner(row)
        return None if result is None else not result

    return check


def _and(left: Predicate, right: Predicate) -> Predicate:
    def check(row: Row) -> bool | None:
        a = left(row)
        if a is False:
            return False
        b = right(row)
        if b is False:
            return False
        return None if a is None or b is None else True

    return check


def _or(left: Predicate, right: Predicate) -> Predicate:
    def check(row: Row) -> bool | None:
        a = left(row)
        if a is True:
            return True
        b = right(row)
        if b is True:
            return True
        return None if a is None or b is None else False

    return check


def compile_where(text: str, schema: Schema) -> Predicate:
    """Parse and type-check a `$where` clause into a predicate returning True/False/None."""
    return _Compiler(schema, text).predicate(parse_where(text))


# ---------------------------------------------------------------------------------------------
# Whole queries


@dataclass(frozen=True)
class Query:
    """A validated SODA request: which rows, in which order, which page, which fields."""

    predicates: tuple[Predicate, ...]
    order: tuple[tuple[str, str, bool], ...]  # (column, type, descending)
    select: tuple[SelectItem, ...]
    limit: int
    offset: int
    include_system: bool
    row_key: tuple[Any, ...]  # identifies the filtered+sorted rows, for caching across pages
    group: tuple[tuple[str, str], ...] = ()  # (kind, column) of each `$group` item
    types: Mapping[str, str] = field(default_factory=dict)  # column -> type, for aggregates
    # An aggregate query's order: (output name, type, descending).
    output_order: tuple[tuple[str, str, bool], ...] = ()

    @property
    def is_aggregate(self) -> bool:
        """True when `$select` asks for aggregates (or groups) rather than rows."""
        return bool(self.group) or any(item.kind in _AGGREGATES for item in self.select)

    def select_rows(self, rows: Sequence[Row]) -> list[Row]:
        """Filter and sort `rows` (the expensive part, independent of the page)."""
        selected = list(rows)
        for predicate in self.predicates:
            selected = [row for row in selected if predicate(row) is True]
        # Stable sorts from the last key to the first give a multi-key, mixed-direction order.
        for column, kind, descending in reversed(self.order):
            selected.sort(key=_sort_key(column, kind), reverse=descending)
        return selected

    def render(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """Cut the requested page out of already selected rows and project its fields."""
        if self.is_aggregate:
            return self._grouped(rows)[self.offset : self.offset + self.limit]
        if self.order:
            page: Sequence[Row] = rows[self.offset : self.offset + self.limit]
        else:
            page = _unstable_page(rows, self.offset, self.limit)
        project = self._projector()
        return [project(row) for row in page]

    def _grouped(self, rows: Sequence[Row]) -> list[dict[str, Any]]:
        """One output row per group (one in all without `$group`), in `output_order`."""
        if not self.group:
            results = [self._aggregate(rows, {})]
        else:
            buckets: dict[tuple[Any, ...], list[Row]] = {}
            for row in rows:
                key = tuple(self._value(kind, column, row) for kind, column in self.group)
                buckets.setdefault(key, []).append(row)
            results = [
                self._aggregate(members, dict(zip(self.group, key, strict=True)))
                for key, members in buckets.items()
            ]
        for name, kind, descending in reversed(self.output_order):
            results.sort(key=_sort_key(name, kind), reverse=descending)
        return results

    def _value(self, kind: str, column: str, row: Row) -> Any:
        """A group expression's value in the wire form Socrata answers with."""
        if kind in _TRUNCATIONS:
            stamp = _as_timestamp(row.get(column))
            if stamp is None:
                return None
            kept = _TRUNCATIONS[kind]
            return stamp[:kept] + "0001-01-01T00:00:00.000"[kept:]
        value = row.get(column)
        return None if value is None else str(value) if type(value) is not bool else value

    def _aggregate(
        self, rows: Sequence[Row], groups: Mapping[tuple[str, str], Any]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for item in self.select:
            name = item.alias or item.kind
            if item.kind == "count":
                column = item.column
                count = (
                    len(rows)
                    if column is None
                    else sum(1 for row in rows if row.get(column) is not None)
                )
                # Socrata returns aggregate numbers as strings like every other number.
                result[name] = str(count)
            elif item.kind in ("max", "min") and item.column is not None:
                value = _extreme(rows, item.column, self.types.get(item.column, "text"), item.kind)
                if value is not None:
                    result[name] = value
            elif item.column is not None:
                value = groups.get((item.kind, item.column))
                if value is not None:  # Socrata leaves NULLs out of a row
                    result[name] = value
        return result

    def _projector(self) -> Callable[[Row], dict[str, Any]]:
        items = self.select
        if len(items) == 1 and items[0].kind == "star":
            return dict if self.include_system else _without_system
        return lambda row: _project(row, items, self.include_system)


def _extreme(rows: Sequence[Row], column: str, kind: str, which: str) -> Any:
    """max() or min() of a column, as Socrata answers it (a string but for booleans)."""
    convert = _CONVERTERS.get(kind, _as_text)
    values = [v for v in (convert(row.get(column)) for row in rows) if v is not None]
    if not values:
        return None
    found = max(values) if which == "max" else min(values)
    return found if type(found) is bool else str(found)


def _without_system(row: Row) -> dict[str, Any]:
    """Copy a row minus the three system fields (`:@computed_region_*` keys are data)."""
    out = dict(row)
    for name in SYSTEM_FIELDS:
        out.pop(name, None)
    return out


def _project(row: Row, items: Sequence[SelectItem], include_system: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        if item.kind == "star":
            out.update((k, v) for k, v in row.items() if include_system or k not in _SYSTEM_SET)
        elif item.kind == "system_star":
            out.update((k, row[k]) for k in SYSTEM_FIELDS if k in row)
        elif item.column is not None and item.column in row:
            out[item.alias or item.column] = row[item.column]
    return out


def _sort_key(column: str, kind: str) -> Callable[[Row], tuple[Any, ...]]:
    convert = _CONVERTERS.get(kind, _as_text)

    def key(row: Row) -> tuple[Any, ...]:
        value = convert(row.get(column))
        # NULLs sort first ascending (and so last descending) without comparing None to values.
        return (0,) if value is None else (1, value)

    return key


def _unstable_page(rows: Sequence[Row], offset: int, limit: int) -> list[Row]:
    """Return a page of the right size whose rows depend on `offset` like an unordered scan.

    Socrata gives no order guarantee without `$order`, so consecutive pages repeat and miss
    rows. Each page here is a window into the rows rotated by an offset-dependent amount.
    """
    total = len(rows)
    size = max(0, min(limit, total - offset))
    if size == 0:
        return []
    start = (offset + zlib.crc32(f"page-{offset}".encode())) % total
    return [rows[(start + i) % total] for i in range(size)]


_KNOWN_PARAMS = frozenset(
    {
        "$select",
        "$where",
        "$order",
        "$group",
        "$limit",
        "$offset",
        "$$exclude_system_fields",
        "$$app_token",
    }
)
_UNSUPPORTED_PARAMS = frozenset({"$having", "$q", "$query", "$search"})


def compile_query(params: Mapping[str, str], schema: Schema) -> Query:
    """Validate SODA query parameters against `schema`; raise SoqlError as Socrata would."""
    _check_params(params)
    predicates: list[Predicate] = []
    where = params.get("$where", "").strip()
    if where:
        predicates.append(compile_where(where, schema))
    filters = _equality_filters(params, schema)
    predicates.extend(predicate for _, _, predicate in filters)
    order_text = params.get("$order", "").strip()
    select_text = params.get("$select", "").strip() or "*"
    group_text = params.get("$group", "").strip()
    select = _compile_select(select_text, schema, grouped=bool(group_text))
    group = _compile_group(group_text, select, schema) if group_text else ()
    aggregate = bool(group) or any(item.kind in _AGGREGATES for item in select)
    order: tuple[tuple[str, str, bool], ...] = ()
    output_order: tuple[tuple[str, str, bool], ...] = ()
    if order_text and aggregate:
        output_order = _compile_output_order(order_text, select, schema)
    elif order_text:
        order = _compile_order(order_text, schema)
    return Query(
        predicates=tuple(predicates),
        order=order,
        select=select,
        limit=_int_param(params, "$limit", DEFAULT_LIMIT),
        offset=_int_param(params, "$offset", 0),
        include_system=_exclude_flag(params) is False,
        row_key=(where, "" if aggregate else order_text, tuple((k, v) for k, v, _ in filters)),
        group=group,
        types={item.column: schema.type_of(item.column) for item in select if item.column},
        output_order=output_order,
    )


# A SoQL statement's clauses (SODA3 sends one statement) and the SODA 2 parameter of each.
_CLAUSES = {
    "select": "$select",
    "where": "$where",
    "group": "$group",
    "having": "$having",
    "order": "$order",
    "limit": "$limit",
    "offset": "$offset",
}


def statement_params(text: str) -> dict[str, str]:
    """The SODA 2 parameters of a whole SoQL statement (`SELECT ... WHERE ... GROUP BY ...
    ORDER BY ... LIMIT ... OFFSET ...`, as SODA3 sends it), split at its top-level clause
    keywords, so one engine answers both APIs."""
    tokens = tokenize(text)
    found: list[tuple[str, int, int]] = []  # clause, where its keyword starts, its body starts
    depth = 0
    for i, token in enumerate(tokens):
        if token.kind == "punct" and token.value in "()":
            depth += 1 if token.value == "(" else -1
        elif depth == 0 and token.kind == "ident" and token.value.lower() in _CLAUSES:
            word = token.value.lower()
            if word in ("group", "order"):
                if not tokens[i + 1].is_keyword("by"):
                    raise _error(MALFORMED, f"Expected `BY' after `{token.value}'", text, token.pos)
                found.append((word, token.pos, tokens[i + 1].pos + 2))
            else:
                found.append((word, token.pos, token.pos + len(token.value)))
    if not found or text[: found[0][1]].strip():
        raise _error(MALFORMED, "A SoQL statement starts with a clause (SELECT, WHERE...)", text, 0)
    params: dict[str, str] = {}
    for (word, _, body), following in zip(found, [*found[1:], ("", len(text), 0)], strict=True):
        if _CLAUSES[word] in params:
            raise _error(MALFORMED, f"`{word.upper()}' appears twice", text, following[1])
        params[_CLAUSES[word]] = text[body : following[1]].strip()
    return params


def execute(rows: Sequence[Row], params: Mapping[str, str], schema: Schema) -> list[dict[str, Any]]:
    """Run a SODA request over `rows` and return the JSON-ready result list."""
    query = compile_query(params, schema)
    return query.render(query.select_rows(rows))


def _check_params(params: Mapping[str, str]) -> None:
    for name in params:
        if not name.startswith("$") or name in _KNOWN_PARAMS:
            continue
        if name in _UNSUPPORTED_PARAMS:
            message = f"The SODA stand-in does not support {name}"
        else:
            message = f"Unrecognized parameter {name}"
        raise SoqlError(MALFORMED, message, {"parameter": name})


def _equality_filters(
    params: Mapping[str, str], schema: Schema
) -> list[tuple[str, str, Predicate]]:
    """Compile SODA's `?column=value` simple filters into predicates."""
    filters: list[tuple[str, str, Predicate]] = []
    for name, value in params.items():
        if name.startswith("$"):
            continue
        text = f"{name} = '{value}'"
        node = Compare("=", Column(name, 0), Literal(value, "text", len(name) + 3), len(name) + 1)
        filters.append((name, value, _Compiler(schema, text).compare(node)))
    return filters


def _compile_order(text: str, schema: Schema) -> tuple[tuple[str, str, bool], ...]:
    order = []
    for item in parse_order(text):
        name = schema.resolve(item.column.name, text, item.column.pos)
        order.append((name, schema.type_of(name), item.descending))
    return tuple(order)


def _compile_select(text: str, schema: Schema, grouped: bool = False) -> tuple[SelectItem, ...]:
    items = []
    for item in parse_select(text):
        if item.column is not None:
            name = schema.resolve(item.column, text, item.pos)
            item = SelectItem(item.kind, name, item.alias, item.pos)
        items.append(item)
    kinds = {item.kind in _AGGREGATES for item in items}
    if len(kinds) > 1 and not grouped:
        raise _error(MALFORMED, "Cannot mix aggregates and plain columns without $group", text, 0)
    return tuple(items)


def _compile_group(
    text: str, select: Sequence[SelectItem], schema: Schema
) -> tuple[tuple[str, str], ...]:
    """The (kind, column) of each `$group` item: an alias names its select item."""
    aliases = {item.alias: item for item in select if item.alias}
    group: list[tuple[str, str]] = []
    for item in parse_group(text):
        if item.kind in _AGGREGATES:
            raise _error(MALFORMED, "Cannot group by an aggregate", text, item.pos)
        named = aliases.get(item.column or "") if item.kind == "column" else None
        if named is not None and named.column is not None:
            group.append((named.kind, named.column))
        elif item.column is not None:
            group.append((item.kind, schema.resolve(item.column, text, item.pos)))
    for item in select:
        if item.kind not in _AGGREGATES and (item.kind, item.column) not in group:
            raise _error(
                MALFORMED,
                f"`{item.alias or item.column}' must appear in $group or in an aggregate",
                text,
                item.pos,
            )
    return tuple(group)


def _compile_output_order(
    text: str, select: Sequence[SelectItem], schema: Schema
) -> tuple[tuple[str, str, bool], ...]:
    """An aggregate query's `$order`: by output names (aliases) of the select list."""
    outputs = {
        (item.alias or item.kind): (
            "number"
            if item.kind == "count"
            else "timestamp"
            if item.kind in _TRUNCATIONS
            else schema.type_of(item.column or "")
        )
        for item in select
    }
    order = []
    for item in parse_order(text):
        name = item.column.name
        if name not in outputs:
            raise _error(
                NO_SUCH_COLUMN, f"No such column: {name}", text, item.column.pos, column=name
            )
        order.append((name, outputs[name], item.descending))
    return tuple(order)


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit():
        raise SoqlError(MALFORMED, f"{name} must be a non-negative integer, got '{raw}'")
    value = int(raw)
    if name == "$limit" and value > MAX_LIMIT:
        raise SoqlError(
            MALFORMED,
            f"$limit {value} exceeds the maximum of {MAX_LIMIT}; page with $offset instead",
            {"limit": value, "max": MAX_LIMIT},
        )
    return value


def _exclude_flag(params: Mapping[str, str]) -> bool:
    raw = params.get("$$exclude_system_fields", "true").strip().lower()
    if raw not in ("true", "false"):
        raise SoqlError(MALFORMED, f"$$exclude_system_fields must be true or false, got '{raw}'")
    return raw == "true"
