"""Subcommands of ``mdrn-fast``; the module name is the command name."""
