"""golflab.artifact"""
