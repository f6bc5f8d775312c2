# A populated store, cleanly unmounted: nothing to find.
mkstore
tool populate
FSCK_OPT=-n
