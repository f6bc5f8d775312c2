# An SSTable cut short: its size disagrees with the manifest's; the table
# is unreadable, fsck can not check further and deletes nothing.
mkstore
tool populate
tool flush
cut "$(newest sst)" 10
