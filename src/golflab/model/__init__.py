"""golflab.model"""
