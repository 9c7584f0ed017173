"""Emergency-response practices (SPEC §6): on-call rotation, escalation,
check-ins and drills.

The machines and formats (``escalation``, ``rotation``, ``checkin_plan``,
``drill``) read no clock and do no I/O: time comes in as Unix ms, so tests move
time forward instead of sleeping, and a node restart is just "load the
persisted state and feed it the current time". The desks (``desk``,
``checkin_desk``) and the drill runner (``drill_runner``) carry them out
through the host (``node.host``), whose clock is injected; ``api`` and
``checkin_routes`` are their local API routes."""
