"""Presentation: notebook display helpers, the offline plotly renderer, and report execution and rendering."""
