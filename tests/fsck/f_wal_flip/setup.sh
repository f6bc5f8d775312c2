# A byte flipped in a record in the middle of the WAL: damage, not a torn
# tail.  -y drops the damaged record; the namespace fallout is repaired.
mkstore
tool populate
flip "$(newest wal)" 600
