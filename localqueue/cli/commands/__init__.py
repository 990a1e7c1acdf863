"""The command groups of ``localqueue``, one module per group."""
