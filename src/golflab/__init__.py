"""golflab: a fast composable GPT trainer and a statistically honest experiment lab."""

__version__ = "0.1.0"
