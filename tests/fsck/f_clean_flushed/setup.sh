# Tables, a WAL and the value log together, unmounted cleanly; -f verifies
# every block.  Nothing to find.
mkstore
tool populate
tool flush
tool many 50 10
FSCK_OPT=-fn
FSCK_OPT2=-fy
