"""Streamlit-side helpers: cached loaders, charts and shared widgets.

The pages draw with these; every number comes from tinyllm (the package
computes, never this folder).
"""
