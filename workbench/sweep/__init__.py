"""Fleet sweep: every model of one or more registries checked in one command, on Dask (``workbench sweep``)."""
