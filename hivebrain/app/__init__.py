"""The application services a program uses through the brain: memories, agents, spaces and
consolidation, ingest and chat-log import, session context, the interaction log, redaction."""
