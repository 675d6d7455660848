"""A Bearer-protected MCP server on the `mcp` package (2.x, class MCPServer) for Portico's tests.

Serves streamable HTTP or the legacy SSE transport on 127.0.0.1. Without a valid token every
request gets 401 with a WWW-Authenticate challenge. Tools: a read-only one, a destructive one
(annotated), `whoami` (who the token belongs to) and `count_slowly` (sends progress).

    python server.py --transport streamable-http|sse --port N
    MCP_TEST_TOKENS="token1=alice,token2=bob"
"""

import argparse
import os

import anyio
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations


def tokens() -> dict[str, str]:
    pairs = (p.split("=", 1) for p in os.environ.get("MCP_TEST_TOKENS", "").split(",") if "=" in p)
    return {token: user for token, user in pairs}


class StaticTokens:
    """Accepts the tokens from MCP_TEST_TOKENS; the subject is the user they belong to."""

    def __init__(self) -> None:
        self.table = tokens()

    async def verify_token(self, token: str) -> AccessToken | None:
        user = self.table.get(token)
        if user is None:
            return None
        return AccessToken(token=token, client_id=user, scopes=[], subject=user)


def build(port: int) -> MCPServer:
    base = f"http://127.0.0.1:{port}"
    server = MCPServer(
        name="portico-test-python",
        version="1.0.0",
        token_verifier=StaticTokens(),
        auth=AuthSettings(
            issuer_url=base,
            resource_server_url=f"{base}/mcp",
            validate_token_resource=False,
        ),
    )

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True, destructiveHint=False))
    def list_services() -> str:
        """Lists the services in the test catalog (read-only)."""
        return "billing, search, checkout"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=False, destructiveHint=True))
    def delete_service(name: str) -> str:
        """Deletes a service from the test catalog (destructive; nothing is really deleted)."""
        return f"deleted {name}"

    @server.tool(annotations=ToolAnnotations(readOnlyHint=True))
    def whoami() -> str:
        """Says who the caller's token belongs to."""
        token = get_access_token()
        return token.subject if token and token.subject else "anonymous"

    @server.tool()
    async def count_slowly(steps: int, ctx: Context, delay_ms: int = 100) -> str:
        """Counts to `steps`, reporting progress after each step."""
        for i in range(1, steps + 1):
            await anyio.sleep(delay_ms / 1000)
            await ctx.report_progress(i, steps, f"step {i}")
        return f"counted to {steps}"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable-http", "sse"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = build(args.port)
    if args.transport == "sse":
        server.run("sse", host="127.0.0.1", port=args.port)
    else:
        server.run("streamable-http", host="127.0.0.1", port=args.port)


if __name__ == "__main__":
    main()
