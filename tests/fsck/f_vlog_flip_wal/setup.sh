# The same damage while the pointer is still in the WAL: the engine refuses
# to replay past a logged write whose value is damaged, unless told to drop
# it and everything after it, which is the repair.
mkstore
tool populate
flip "$(newest vlog)" 40
