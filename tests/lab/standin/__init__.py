"""The RKE2 stand-in: a test double of RKE2's registration contract for the lab hosts (see installer.py)."""
