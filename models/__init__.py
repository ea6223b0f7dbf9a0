"""The shipped model: installed as package data of ``classifier.models``.

This folder is the top-level home of the trained artefacts (written by ``classifier train``):
``theme-classifier.npz`` (what tagging loads), ``theme-classifier.skops`` (the fitted
estimators), and the model card. pyproject.toml maps it into the package so that a wheel or a
plain ``pip install .`` carries the model.
"""
