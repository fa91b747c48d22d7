"""The autonomous mode: proposers (a search space with Optuna, a coding agent in a git worktree), the
agent's brief and worktrees, and the search's outputs. The engine that runs them is golflab.engine."""
