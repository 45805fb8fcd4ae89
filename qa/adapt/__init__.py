"""Adaptation in the background: the trained parts become the default without a slow
first command (docs/adapt.md).

`qa serve` answers at once with the build it has and starts `qa adapt` beside it, at
the lowest priority on one thread. The job trains the parts of `steps.DEFAULT_PARTS`
on the corpus (never on dev.jsonl or the members' set), exports them for serving
without torch, ingests a candidate build that carries them, and makes it current only
if it answers the corpus's held-out phrasings better than the current build.
Replicas sharing the index folder share one job (a lock) and move to the new build as
to any new build.

    status.py   the status file (/readyz, `qa adapt --status`), the lock, the heartbeat
    changes.py  the corpus fingerprint: has it changed enough to train again?
    gate.py     held-out phrasings, the two systems scored on them, the margin
    steps.py    the named steps and the trained parts they make (the pipeline)
    job.py      one adaptation: lock, decide, run the steps, report
    launch.py   `qa serve`'s background start (nice 19, one thread)
    cli.py      `qa adapt`

A side concern: it reads the corpus and writes builds like `qa ingest`; nothing in
the answering flow imports it (the service only reads its status file).
"""
