# The manifest's last record (a flush) cut short: the engine takes it for a
# torn tail and forgets the table it added, whose WAL is gone.  fsck sees
# that the WAL the manifest still needs is missing and refuses to delete
# that table as an orphan: it holds the only copy of its writes.
mkstore
tool populate
tool mkdir-flush d
cut "$(manifest)" 3
