"""MCP servers run by Responsa on the model's behalf: both the OpenAI form
(``tools: [{"type": "mcp", ...}]``) and the reference form (``mcp_servers``
plus ``credentials``)."""
