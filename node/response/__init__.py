"""Emergency-response practices (SPEC §6) as pure logic: on-call rotation and
escalation. No clock reads and no I/O here: time comes in as Unix ms, so tests
move time forward instead of sleeping, and a node restart is just "load the
persisted state and feed it the current time"."""
