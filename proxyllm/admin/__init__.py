"""Admin services: each admin mutation is one call that validates, changes the database, links billing,
writes its audit row and invalidates caches in one transaction (``unit.py``); who may call what is the
permission table (``permissions.py``); routes in ``server/routes`` only parse, call and respond."""
