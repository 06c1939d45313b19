"""Example downstream consumers of newswire's topics, built on ``schemas.consumer``."""
