"""golflab.train"""
