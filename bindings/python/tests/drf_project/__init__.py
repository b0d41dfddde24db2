"""A tiny Django + DRF project (test_contrib_drf.py): served in-process by Django's test
client and, with 2 gunicorn workers, over real HTTP."""
