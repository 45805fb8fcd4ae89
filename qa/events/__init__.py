"""Events, beside the answering flow: what members asked and whether it helped.

Fed by the API, never read by the answering path.

    recorder.py  Recorder: a bounded queue and one writer thread (never blocks an answer)
    redact.py    personal data out of questions before anything is stored
    store.py     SQLite or PostgreSQL, one schema, versioned migrations
    insights.py  the overview: questions per day, answered rate, top and unanswered questions
    gaps.py      unanswered questions grouped, with the nearest articles and ready phrasings
"""
