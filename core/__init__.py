"""ERL-Re²: evolutionary RL with a shared state representation and linear policy heads."""
