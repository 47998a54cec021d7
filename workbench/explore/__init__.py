"""Explorers for analysts in JupyterLab (ipywidgets and plotly ``FigureWidget``), each one call from a notebook cell.

They work on a finished :class:`~workbench.investigation.Investigation` (its records, tables and conclusions) and
never re-read or re-hash the evidence, except the tensor explorer (the two tensors picked, bounded) and the
indicator explorer's bounded log search. Under papermill or nbconvert each shows a static view of its first state
(:class:`~workbench.explore.common.Explorer`).
"""
