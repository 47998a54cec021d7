"""CLI commands beyond ``custody``: one module per command, each defining ``command``.

Every module in this package that defines a click command named ``command`` is added to the ``workbench`` group.
"""
