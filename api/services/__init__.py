"""The service layer: one module per use-case group, each public function one transaction.

Routers call these functions and shape their results; services raise
:class:`api.errors.ServiceError` subclasses or :mod:`ledger.errors` — never HTTP exceptions.
"""
