"""golflab.record: read parameter-golf record folders and check the challenge's rules on them."""
