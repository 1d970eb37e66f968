"""mcp_clients"""
