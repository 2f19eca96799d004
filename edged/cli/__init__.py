"""The ``edged`` command: the root parser and the daemon, config and status commands."""
