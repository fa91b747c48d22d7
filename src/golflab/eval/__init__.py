"""golflab.eval"""
