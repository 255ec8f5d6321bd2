"""LLM rephrasing of Passages (flashcards, WikiDoc textbook sections) into Q/A Records.

Not part of this release yet: a recipe whose sources yield Passages stops with a clear
message (see meadow.build) instead of skipping them.
"""
