-- Who holds a conversation that is with a person: the agent's name when an
-- agent took it over (the assistant stays quiet in it), NULL while the flow
-- has it or when it was handed off and waits for a person. Was a prefix of
-- end_reason ("taken over by agent:NAME").
ALTER TABLE conversations ADD COLUMN held_by TEXT;
UPDATE conversations SET held_by = substr(end_reason, 21)
 WHERE status = 'handed_off' AND end_reason LIKE 'taken over by agent:%';
