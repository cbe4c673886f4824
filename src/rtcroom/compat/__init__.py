"""Compatibility with clients written for other signaling servers."""
