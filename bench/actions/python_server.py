"""bench/actions' Python peer: Backstage's `query-catalog-entities` action as an MCP tool on the
`mcp` package (2.x, `MCPServer`, pinned in tests/mcp-servers/requirements.txt).

Serves one tool, `catalog_query_catalog_entities`, over streamable HTTP on 127.0.0.1, stateless
(every POST stands alone, no initialize needed) with plain JSON responses, and no auth. The
entities come from a JSON array (bench/actions/out/entities.json), loaded once at start and kept
in memory, indexed the way a careful Python implementation would: every entity flattened once
into Backstage's search form (dotted lower-cased keys -> lower-cased values, arrays contributing
each element, `relations.<type>` -> target refs), an inverted index key -> value -> entity ids for
the filter, and for each ordering asked for, the entities ranked in that order once (an index), so
a page of a large result is a short walk rather than a sort.

Semantics of the arguments (those of Backstage's action and catalog `queryEntities`):
  filter          {path: value | [values]} (AND over keys, OR over values, case-insensitive
                  equality) or a list of such objects (OR)
  fields          dotted paths to keep (the rest of the entity is dropped)
  orderFields     {field, order: asc|desc} or a list; entities lacking the field come last;
                  ties broken by entity reference, in the first field's direction
  fullTextFilter  {term, fields?}: case-insensitive substring of a value of one of the fields
                  (default: the first order field, else metadata.uid)
  limit (20), offset, cursor (opaque; takes precedence over filter/order/offset)
Result: {items, totalItems, hasMoreEntities, nextPageCursor?} as text content and as
structuredContent.

One uvicorn worker by default (the package's own `run()` setup, minus access logs); with
--workers N, N processes forked after loading, each listening on the port with SO_REUSEPORT.

    python python_server.py --entities out/entities.json --port N [--workers N]
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import multiprocessing
import signal
import socket
import sys
from typing import Any, Iterable, Literal, Union

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from typing_extensions import NotRequired, TypedDict

DEFAULT_LIMIT = 20


class OrderField(TypedDict):
    field: str
    order: NotRequired[Literal["asc", "desc"]]


class FullTextFilter(TypedDict):
    term: str
    fields: NotRequired[list[str]]


FilterObject = dict[str, Union[str, list[str]]]


def _flatten(value: Any, path: str, out: dict[str, list[str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(v, f"{path}.{k}" if path else k, out)
    elif isinstance(value, list):
        for v in value:
            _flatten(v, path, out)
    elif value is None:
        return
    else:
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        out.setdefault(path.lower(), []).append(text.lower())


def search_form(entity: dict[str, Any]) -> dict[str, list[str]]:
    """Backstage's search rows of an entity: dotted keys and values, both lower-cased."""
    out: dict[str, list[str]] = {}
    for key, value in entity.items():
        if key == "relations":
            for rel in value or []:
                target = rel.get("targetRef")
                if target:
                    out.setdefault(f"relations.{rel['type']}".lower(), []).append(target.lower())
        else:
            _flatten(value, key, out)
    return out


class Catalog:
    def __init__(self, entities: list[dict[str, Any]]) -> None:
        self.entities = entities
        self.refs: list[str] = []
        self.search: list[dict[str, list[str]]] = []
        self.index: dict[str, dict[str, set[int]]] = {}
        for i, entity in enumerate(entities):
            meta = entity.get("metadata", {})
            ref = f"{entity.get('kind', '')}:{meta.get('namespace', 'default')}/{meta.get('name', '')}"
            self.refs.append(ref.lower())
            form = search_form(entity)
            self.search.append(form)
            for key, values in form.items():
                by_value = self.index.setdefault(key, {})
                for v in values:
                    by_value.setdefault(v, set()).add(i)
        self.all_ids = frozenset(range(len(entities)))
        self._sort_keys: dict[str, list[str | None]] = {}
        self._rankings: dict[str, tuple[list[int], list[int]]] = {}

    def _match_object(self, filter_object: FilterObject) -> set[int] | frozenset[int]:
        result: set[int] | frozenset[int] | None = None
        for key, wanted in filter_object.items():
            by_value = self.index.get(key.lower(), {})
            values = [wanted] if isinstance(wanted, str) else wanted
            ids: set[int] = set()
            for v in values:
                ids |= by_value.get(v.lower(), set())
            result = ids if result is None else result & ids
            if not result:
                return set()
        return self.all_ids if result is None else result

    def matching(self, filter_: FilterObject | list[FilterObject] | None) -> set[int] | frozenset[int]:
        if filter_ is None:
            return self.all_ids
        if isinstance(filter_, dict):
            return self._match_object(filter_)
        out: set[int] = set()
        for f in filter_:
            out |= self._match_object(f)
        return out

    def sort_keys(self, field: str) -> list[str | None]:
        keys = self._sort_keys.get(field)
        if keys is None:
            key = field.lower()
            keys = [(form.get(key) or [None])[0] for form in self.search]
            self._sort_keys[field] = keys
        return keys

    def _sorted(self, ids: Iterable[int], order: list[dict[str, Any]]) -> list[int]:
        # Stable sorts from the last criterion to the first, on top of reference order (in the
        # direction of the first criterion, as the catalog breaks ties); entities without the
        # field come last either way.
        desc = bool(order) and order[0].get("order", "asc") == "desc"
        result = sorted(ids, key=self.refs.__getitem__, reverse=desc)
        for o in reversed(order):
            keys = self.sort_keys(o["field"])
            if o.get("order", "asc") == "desc":
                result.sort(key=lambda i: (keys[i] is not None, keys[i] or ""), reverse=True)
            else:
                result.sort(key=lambda i: (keys[i] is None, keys[i] or ""))
        return result

    def _ranking(self, order: list[dict[str, Any]]) -> tuple[list[int], list[int]]:
        """Every entity in the given order, and each entity's rank in it: built once per order,
        like a database index."""
        key = json.dumps(order, sort_keys=True)
        cached = self._rankings.get(key)
        if cached is None:
            ranked = self._sorted(range(len(self.refs)), order)
            rank = [0] * len(ranked)
            for position, i in enumerate(ranked):
                rank[i] = position
            cached = self._rankings[key] = (ranked, rank)
        return cached

    def page(self, ids: set[int] | frozenset[int], order: list[dict[str, Any]], start: int, size: int) -> list[int]:
        """Entries start..start+size of the matching ids in the given order."""
        ranked, rank = self._ranking(order)
        end = start + size
        if len(ids) * 16 < len(ranked):
            return sorted(ids, key=rank.__getitem__)[start:end]
        # A large share matches: walk the ranking until the page is complete.
        out: list[int] = []
        for i in ranked:
            if i in ids:
                out.append(i)
                if len(out) == end:
                    break
        return out[start:]

    def full_text(self, ids: set[int] | frozenset[int], term: str, fields: list[str]) -> set[int]:
        term = term.strip().lower()
        keys = [f.lower() for f in fields]
        return {i for i in ids if any(term in v for k in keys for v in self.search[i].get(k, ()))}


def project(entity: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
    if not fields:
        return entity
    out: dict[str, Any] = {}
    for path in fields:
        parts = path.split(".")
        value: Any = entity
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                break
            value = value[part]
        else:
            target = out
            for part in parts[:-1]:
                target = target.setdefault(part, {})
            target[parts[-1]] = value
    return out


def encode_cursor(state: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(state, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as e:
        raise ToolError("Malformed cursor") from e


def build_server(catalog: Catalog) -> MCPServer:
    server = MCPServer(name="bench-actions-python", version="1.0.0", log_level="WARNING")

    @server.tool(
        name="catalog_query_catalog_entities",
        title="Query Catalog Entities",
        annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True),
    )
    async def query_catalog_entities(
        filter: FilterObject | list[FilterObject] | None = None,
        fields: list[str] | None = None,
        limit: int | None = None,
        offset: int | None = None,
        orderFields: OrderField | list[OrderField] | None = None,
        fullTextFilter: FullTextFilter | None = None,
        cursor: str | None = None,
    ) -> CallToolResult:
        """Query entities from the software catalog: filter on dotted field paths, choose the
        fields to return, order, full-text filter, and page with limit and the returned cursor."""
        if cursor:
            state = decode_cursor(cursor)
        else:
            order = [] if orderFields is None else [orderFields] if isinstance(orderFields, dict) else orderFields
            state = {"filter": filter, "order": order, "text": fullTextFilter, "offset": offset or 0}
        ids = catalog.matching(state["filter"])
        text = state["text"]
        if text and text.get("term", "").strip():
            order_fields = state["order"]
            fields_ = text.get("fields") or [order_fields[0]["field"] if order_fields else "metadata.uid"]
            ids = catalog.full_text(ids, text["term"], fields_)
        total = len(ids)
        start = state["offset"]
        size = DEFAULT_LIMIT if limit is None else limit
        page = catalog.page(ids, state["order"], start, size)
        out: dict[str, Any] = {
            "items": [project(catalog.entities[i], fields) for i in page],
            "totalItems": total,
            "hasMoreEntities": start + size < total,
        }
        if start + size < total:
            out["nextPageCursor"] = encode_cursor({**state, "offset": start + size})
        return CallToolResult(
            content=[TextContent(type="text", text=json.dumps(out, separators=(",", ":")))],
            structured_content=out,
        )

    return server


def load(path: str) -> Catalog:
    with open(path, encoding="utf-8") as f:
        catalog = Catalog(json.load(f))
    # The catalog is millions of long-lived objects: keep them out of the cyclic GC, whose full
    # collections would otherwise stall the server for a few hundred milliseconds now and then.
    gc.collect()
    gc.freeze()
    return catalog


def app(catalog: Catalog):
    return build_server(catalog).streamable_http_app(stateless_http=True, json_response=True, host="127.0.0.1")


UVICORN = dict(log_level="warning", access_log=False)


def serve_worker(catalog: Catalog, port: int) -> None:
    """One of several worker processes: its own listening socket on the shared port
    (SO_REUSEPORT), so that the kernel spreads the connections over the workers. (uvicorn's
    --workers shares one socket, and the first worker to wake accepts a whole burst of
    connections; that socket also lacks IPPROTO_TCP, so asyncio leaves Nagle on and keep-alive
    responses wait ~40 ms for delayed ACKs.)"""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    uvicorn.Server(uvicorn.Config(app(catalog), **UVICORN)).run(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    catalog = load(args.entities)
    if args.workers <= 1:
        uvicorn.run(app(catalog), host="127.0.0.1", port=args.port, **UVICORN)
        return
    # Several workers: forked after loading, so they share the catalog's pages.
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=serve_worker, args=(catalog, args.port)) for _ in range(args.workers)]
    for w in workers:
        w.start()

    def stop(*_: object) -> None:
        for w in workers:
            w.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for w in workers:
        w.join()


if __name__ == "__main__":
    sys.exit(main())
