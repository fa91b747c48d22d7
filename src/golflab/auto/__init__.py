"""golflab.auto"""
