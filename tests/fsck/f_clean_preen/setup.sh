# A clean store: -p stops after pass 1 ("clean"); -pf checks it all.
mkstore
tool populate
FSCK_OPT=-p
FSCK_OPT2=-pf
