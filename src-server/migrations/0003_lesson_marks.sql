-- The marks (highlights and ink) of a lesson's snapshot, kept apart from the rest of its state: the
-- state is rewritten every second while changes come, the marks (up to a few MB of ink) only when they
-- changed. NULL: the state's own `marks` hold them (a snapshot written before this column).
ALTER TABLE lessons ADD COLUMN marks TEXT;
