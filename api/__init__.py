"""Yima service: FastAPI app factory, service layer, store and the `yima` command line."""
