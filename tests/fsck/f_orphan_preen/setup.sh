# An orphan after a crash, with -p: reclaiming orphans is safe, preen does
# it alone (the store is not clean, so preen checks it all).
mkstore
tool populate
tool orphan /empty
FSCK_OPT=-p
FSCK_OPT2=-p
