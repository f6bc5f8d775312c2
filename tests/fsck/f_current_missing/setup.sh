# CURRENT deleted: the one manifest there is usable; CURRENT is rewritten.
mkstore
tool populate
rm "$STORE/CURRENT"
