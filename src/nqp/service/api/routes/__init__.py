"""One router per resource; assembled in :func:`nqp.service.app.create_app`."""
