# A byte flipped in the manifest's first record, with another record after
# it (so damage, not a torn tail): the table list is lost; fsck can not go
# on, and deletes nothing.
mkstore
tool populate
tool mkdir-flush d
flip "$(manifest)" 30
