-- The teacher's waiting room (docs/PROTOCOL-ADDITIONS.md, H): kept with the lesson, so that a
-- restart in the middle of a lesson does not open the door.
ALTER TABLE lessons ADD COLUMN waiting_room INTEGER NOT NULL DEFAULT 0;
