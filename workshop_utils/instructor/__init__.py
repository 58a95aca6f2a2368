"""What an instructor runs around the labs: ``doctor`` (is this machine ready), ``runner`` (execute the labs,
``make run``), ``report`` (results as HTML), ``student`` (attendee copies without solutions), ``slides`` (offline
decks, filled by ``deck_data`` with the room's figures and numbers) and ``notebooks`` (strip outputs before a
commit). Reached from the command line:
``python -m workshop_utils <command>``.
"""
