# The value log cut short, as a power cut leaves it: the logged write whose
# value is gone was never synced, and neither was anything after it; the
# engine replays up to it (a note, not an error), and the segment, now
# holding nothing any key points to, goes.
mkstore
tool populate
cut "$(newest vlog)" 100
