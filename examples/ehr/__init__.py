"""A small hospital EHR, instrumented only through trailseal's public API.

- :mod:`ehr.model`: patients, staff with units and shifts, roles (many-to-many),
  clinical notes and exports, in SQLAlchemy;
- :mod:`ehr.app`: the FastAPI application, with the audit wiring in one place
  (:func:`ehr.app.instrument`);
- :mod:`ehr.hospital`: the hospital's people and places (a seeded roster);
- :mod:`ehr.traffic`: a month of staff activity with four planted incidents;
- :mod:`ehr.demo`: runs it all against a trailseal service (``trailseal demo``).
"""
