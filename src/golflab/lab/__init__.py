"""The experiment lab: plans (files), the plan proposer that feeds them to the engine, statistics, summaries
and reports. The engine that runs them is golflab.engine."""
