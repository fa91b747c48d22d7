"""golflab.data"""
