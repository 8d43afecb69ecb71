-- The marks (highlights and ink) of a lesson's snapshot, kept apart from the rest of its state, in a
-- table of their own: the state is rewritten every second while changes come, and SQLite rewrites a
-- whole row when one column changes; the marks (up to a few MB of ink) are written only when they
-- changed. No row: the state's own `marks` hold them (a snapshot written before this table).
CREATE TABLE lesson_marks (
    lesson INTEGER PRIMARY KEY REFERENCES lessons(id) ON DELETE CASCADE,
    marks  TEXT NOT NULL
);
