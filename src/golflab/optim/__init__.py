"""golflab.optim"""
