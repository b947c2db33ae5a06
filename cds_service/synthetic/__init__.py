"""Synthetic population with an answer key, for the backtest, the benchmark and demos."""
