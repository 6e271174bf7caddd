"""tinyllm: the kid's corpus, model, training, sampling and export.

This package never imports streamlit: the app (streamlit_app.py, pages/, ui/)
draws what these modules compute, and the CLI (tinyllm/cli.py) calls the same
functions.
"""
