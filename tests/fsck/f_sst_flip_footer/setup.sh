# A byte flipped in an SSTable's footer: the table is unreadable; fsck
# reports it, can not check further and deletes nothing.
mkstore
tool populate
tool flush
flip "$(newest sst)" -20
