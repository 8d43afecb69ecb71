-- Lectern session log, schema 1.
-- Lessons are keyed by a small integer (what `lectern sessions show ID` takes); the room id is what the
-- protocol uses. Times are Unix milliseconds. Pointer-only changes, the bulk of a lesson (60 a second
-- while the teacher points), go to their own compact table: one 20-byte row per move instead of a JSON
-- patch. Acks are recorded only when they cross a "significant" change (anything but a pointer move),
-- which is all that follow times need.

CREATE TABLE lessons (
    id          INTEGER PRIMARY KEY,
    room        TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    code        TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    ended_ms    INTEGER,
    opening_doc TEXT,
    seq         INTEGER NOT NULL DEFAULT 0,
    state       TEXT
);

CREATE TABLE lesson_docs (
    lesson         INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    doc_id         TEXT NOT NULL,
    title          TEXT NOT NULL,
    pages          INTEGER NOT NULL,
    sha256         TEXT NOT NULL,
    first_shown_ms INTEGER NOT NULL,
    PRIMARY KEY (lesson, doc_id)
) WITHOUT ROWID;

CREATE TABLE participants (
    lesson     INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    id         TEXT NOT NULL,
    role       TEXT NOT NULL,
    name       TEXT NOT NULL,
    device     TEXT NOT NULL,
    remote     INTEGER NOT NULL,
    token_hash TEXT NOT NULL,
    revoked    INTEGER NOT NULL DEFAULT 0,
    first_ms   INTEGER NOT NULL,
    PRIMARY KEY (lesson, id)
) WITHOUT ROWID;

CREATE TABLE connections (
    id          INTEGER PRIMARY KEY,
    lesson      INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    joined_ms   INTEGER NOT NULL,
    left_ms     INTEGER,
    addr        TEXT
);
CREATE INDEX connections_by_lesson ON connections (lesson, participant);

CREATE TABLE patches (
    lesson  INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    patch   TEXT NOT NULL,
    PRIMARY KEY (lesson, seq)
) WITHOUT ROWID;

-- x and y in ten-thousandths of the page; NULL when the pointer was hidden.
CREATE TABLE pointer (
    lesson  INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    seq     INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    x       INTEGER,
    y       INTEGER,
    PRIMARY KEY (lesson, seq)
) WITHOUT ROWID;

CREATE TABLE acks (
    lesson      INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    time_ms     INTEGER NOT NULL,
    PRIMARY KEY (lesson, participant, seq)
) WITHOUT ROWID;

CREATE TABLE hands (
    lesson      INTEGER NOT NULL REFERENCES lessons(id) ON DELETE CASCADE,
    participant TEXT NOT NULL,
    time_ms     INTEGER NOT NULL,
    up          INTEGER NOT NULL
);
CREATE INDEX hands_by_lesson ON hands (lesson);
