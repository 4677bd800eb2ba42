"""Evaluation: ``python -m evaluation.compare``, metrics, plots and benchmarks."""
