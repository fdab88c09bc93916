"""The MCP server over stdio and its tools."""
