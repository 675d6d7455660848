"""A code-hosting MCP server on the `mcp` package for the embedded model's end-to-end test.

No authentication. Seven tools: `search_code` (fake but plausible file hits that repeat the query)
and six others a code-search question must not pick: repository search and creation, reading a
file, listing pull requests, opening an issue, a build's status. Every call is appended to the
file named by CODE_SERVER_CALLS (one JSON object a line: tool and arguments), so a test can read
exactly what the server received.

    python code_server.py --port N
"""

import argparse
import json
import os

from mcp.server.mcpserver import MCPServer
from mcp.types import ToolAnnotations

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False)


def record(tool: str, arguments: dict) -> None:
    path = os.environ.get("CODE_SERVER_CALLS")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"tool": tool, "arguments": arguments}) + "\n")


def build() -> MCPServer:
    server = MCPServer(name="portico-test-code", version="1.0.0")

    @server.tool(annotations=READ_ONLY)
    def search_code(query: str) -> str:
        """Search the source code of every repository for files, symbols and text matching a query."""
        record("search_code", {"query": query})
        hits = [
            "plugins/catalog-import/src/plugin.ts:12: export const catalogImportPlugin = createPlugin({",
            "plugins/techdocs/src/plugin.ts:30: export const techdocsPlugin = createPlugin({",
            "packages/app/src/plugins.ts:3: export { scaffolderPlugin } from '@backstage/plugin-scaffolder';",
        ]
        return f"3 files match {query!r}:\n" + "\n".join(hits)

    @server.tool(annotations=READ_ONLY)
    def search_repositories(query: str) -> str:
        """Search repositories by name, topic or description."""
        record("search_repositories", {"query": query})
        return f"2 repositories match {query!r}: acme/portal, acme/backstage-plugins"

    @server.tool()
    def create_repository(name: str, private: bool = True) -> str:
        """Create a new repository."""
        record("create_repository", {"name": name, "private": private})
        return f"created acme/{name}"

    @server.tool(annotations=READ_ONLY)
    def read_file(repository: str, path: str) -> str:
        """Read one file of a repository."""
        record("read_file", {"repository": repository, "path": path})
        return f"{repository}/{path}: export {{}};"

    @server.tool(annotations=READ_ONLY)
    def list_pull_requests(repository: str) -> str:
        """List the open pull requests of a repository."""
        record("list_pull_requests", {"repository": repository})
        return f"{repository}: #12 Bump dependencies, #15 Add the search page"

    @server.tool()
    def create_issue(repository: str, title: str) -> str:
        """Open an issue in a repository."""
        record("create_issue", {"repository": repository, "title": title})
        return f"{repository}#16 opened: {title}"

    @server.tool(annotations=READ_ONLY)
    def get_build_status(repository: str) -> str:
        """Tell whether the latest build of a repository passed."""
        record("get_build_status", {"repository": repository})
        return f"{repository}: the latest build passed"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    build().run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
