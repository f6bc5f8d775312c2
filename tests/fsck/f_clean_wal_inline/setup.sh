# A populated store as the daemon leaves it: the blocks of its small writes
# still inline in the WAL (closing does not flush the memtable), no value
# log yet.  Nothing to find, read-only or repairing with every block read.
mkstore
FSCK_TOOL_WAL_INLINE=1 tool populate
[ -z "$(newest vlog)" ] || { echo "f_clean_wal_inline: a value-log segment already" >&2; exit 1; }
FSCK_OPT=-n
FSCK_OPT2=-fy
