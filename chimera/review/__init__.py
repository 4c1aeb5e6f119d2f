"""The review page: frames beside their labels and models' predictions, for people (chimera/review/page.py)."""
