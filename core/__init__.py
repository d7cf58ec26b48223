"""Helpers every app may import: the bottom of the house. Nothing here
imports an app."""
