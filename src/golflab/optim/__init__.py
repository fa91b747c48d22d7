"""Optimizers: Muon/NorMuon (Newton-Schulz or Polar Express) and AdamW, chosen per parameter by one table."""

from golflab.optim.table import ParamRow, TableOptimizer, build_table

__all__ = ["ParamRow", "TableOptimizer", "build_table"]
