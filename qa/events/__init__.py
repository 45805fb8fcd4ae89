"""Events, beside the answering flow: what members asked and whether it helped.

Fed by the API, never read by the answering path.

    recorder.py  Recorder: a bounded queue and one writer thread (never blocks an answer)
    redact.py    personal data out of questions before anything is stored
    store.py     the event store: one schema and SQL dialect, versioned migrations; PostgreSQL
    sqlite.py    the SQLite store, hardened against what happens to its file while serving
    connect.py   open_store: PostgreSQL for a URL, else SQLite in the data folder
    insights.py  the overview: questions per day, answered rate, top and unanswered questions
    gaps.py      unanswered questions grouped, with the nearest articles and ready phrasings
    suggest.py   query suggestions: popular answered questions and the articles' phrasings
"""
