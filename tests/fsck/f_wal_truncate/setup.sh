# The WAL's last record cut short, as a crash leaves it: not an error (the
# write it held was never acknowledged as synced).
mkstore
tool populate
cut "$(newest wal)" 5
FSCK_OPT="-n"
