"""golflab.lab"""
