# Asked to repair interactively without a terminal: refused (exit 8).
mkstore
tool populate
FSCK_OPT=
FSCK_OPT2=-n
